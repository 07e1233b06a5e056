"""Where demo rows go: real communes weighted by population (or by countryside for farms), points around them."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import numpy as np
from django.db import connection

from geo.coordinates import FRANCE_BOXES
from geo.models import Commune
from geo.sphere import metres_from_chord


@dataclass
class Places:
    """Where demo rows can go: communes, and Paris/Lyon/Marseille by arrondissement."""

    commune_code: np.ndarray  # the COM a row belongs to (the city for an arrondissement)
    name: np.ndarray  # name shown (the city's, for an arrondissement)
    postal_code: np.ndarray
    department: np.ndarray
    region: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    radius_m: np.ndarray  # radius of a disc with the place's area
    population: np.ndarray
    is_arrondissement: np.ndarray


def load_places() -> Places:
    """Every commune with a reference point and an outline, in code order (deterministic)."""
    sql = f"""
        SELECT c.code, c.kind, c.parent_id, COALESCE(p.name, c.name), c.postal_codes[1], c.department_id,
               c.region_id, ST_X(c.point::geometry), ST_Y(c.point::geometry),
               sqrt(ST_Area(c.geom) * cos(radians(ST_Y(c.point::geometry))) / pi()) * 111320, c.population
        FROM {Commune._meta.db_table} c
        LEFT JOIN {Commune._meta.db_table} p ON p.code = c.parent_id
        WHERE c.point IS NOT NULL AND c.geom IS NOT NULL
        ORDER BY c.code
    """  # noqa: S608 (table names from the model)
    with connection.cursor() as cursor:
        cursor.execute(sql)
        rows = cursor.fetchall()
    if not rows:
        raise RuntimeError("Aucune commune : lancez d'abord `manage.py load_territories`.")
    columns = list(zip(*rows, strict=True))
    codes, kinds, parents = columns[0], columns[1], columns[2]
    is_arm = np.array([kind == Commune.Kind.ARRONDISSEMENT for kind in kinds])
    return Places(
        commune_code=np.array([parent if parent else code for code, parent in zip(codes, parents, strict=True)]),
        name=np.array(columns[3], dtype=object),
        postal_code=np.array([p or "" for p in columns[4]], dtype=object),
        department=np.array(columns[5], dtype=object),
        region=np.array(columns[6], dtype=object),
        lon=np.array(columns[7], dtype=float),
        lat=np.array(columns[8], dtype=float),
        radius_m=np.array(columns[9], dtype=float),
        population=np.array(columns[10], dtype=float),
        is_arrondissement=is_arm,
    )


def amap_weights(places: Places) -> np.ndarray:
    """Population, counting Paris, Lyon and Marseille through their arrondissements."""
    has_arrondissements = np.isin(places.commune_code, places.commune_code[places.is_arrondissement])
    weights = places.population.copy()
    weights[has_arrondissements & ~places.is_arrondissement] = 0.0
    return weights / weights.sum()


def farm_weights(places: Places) -> np.ndarray:
    """Farms are in the countryside: square root of population, fading out in big towns."""
    pop = np.maximum(places.population, 1.0)
    weights = np.sqrt(np.minimum(pop, 15000.0)) * np.minimum(1.0, 15000.0 / pop) ** 2
    weights[places.is_arrondissement] = 0.0
    return weights / weights.sum()


def _inside_france(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    inside = np.zeros(lon.shape, dtype=bool)
    for min_lon, min_lat, max_lon, max_lat in FRANCE_BOXES.values():
        inside |= (lon >= min_lon) & (lon <= max_lon) & (lat >= min_lat) & (lat <= max_lat)
    return inside


def jitter(
    rng: np.random.Generator, places: Places, index: np.ndarray, *, share: float, cap_m: float
) -> tuple[np.ndarray, np.ndarray]:
    """Points around each place's reference point: up to `share` of its radius, at most `cap_m`."""
    lon0, lat0 = places.lon[index], places.lat[index]
    reach = np.minimum(places.radius_m[index] * share, cap_m)
    distance = reach * np.sqrt(rng.random(index.size))
    bearing = rng.random(index.size) * 2 * np.pi
    dlat = distance * np.cos(bearing) / 111_320.0
    dlon = distance * np.sin(bearing) / (111_320.0 * np.cos(np.radians(lat0)))
    lon, lat = np.round(lon0 + dlon, 6), np.round(lat0 + dlat, 6)
    outside = ~_inside_france(lon, lat)
    lon[outside], lat[outside] = lon0[outside], lat0[outside]
    return lon, lat


def chord_to_km(chord: np.ndarray) -> np.ndarray:
    return metres_from_chord(chord) / 1000.0


def _starts_with_vowel(text: str) -> bool:
    first = unicodedata.normalize("NFD", text[:1])[:1].lower()
    return first in "aeiouyh"


def of(name: str) -> str:
    """French "de" before a place name: de Lyon, d'Angers, du Mans, des Abymes, de La Rochelle."""
    if name.startswith("Le "):
        return "du " + name[3:]
    if name.startswith("Les "):
        return "des " + name[4:]
    if _starts_with_vowel(name):
        return "d'" + name
    return "de " + name


def pick(rng: np.random.Generator, shares: dict[str, float], size: int) -> np.ndarray:
    keys = list(shares)
    p = np.array([shares[k] for k in keys], float)
    return np.array(keys, dtype=object)[rng.choice(len(keys), size=size, p=p / p.sum())]
