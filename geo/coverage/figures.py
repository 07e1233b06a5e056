"""Coverage figures over units: population within a radius, curves, densities, white zones, history."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from django.db import connection
from django.utils.translation import gettext_lazy as _
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from .nearest import PointSet
from .units import Units

REFERENCE_POINT = "reference_point"
AREA_WEIGHTED = "area_weighted"
METHOD_LABELS = {
    REFERENCE_POINT: _("point de référence de la commune"),
    AREA_WEIGHTED: _("surface pondérée"),
}

# ---------------------------------------------------------------------------------------------
# Population figures


@dataclass(frozen=True)
class CoverageFigure:
    radius_km: float
    population: int
    covered_population: float
    communes: int
    covered_communes: int
    method: str = REFERENCE_POINT

    @property
    def share(self) -> float:
        return self.covered_population / self.population if self.population else 0.0

    def as_dict(self) -> dict:
        return {
            "radius_km": self.radius_km,
            "method": self.method,
            "method_label": str(METHOD_LABELS[self.method]),
            "population": self.population,
            "covered_population": round(self.covered_population),
            "share": round(self.share, 6),
            "communes": self.communes,
            "covered_communes": self.covered_communes,
        }


def population_coverage(*, units: Units, distances_m: np.ndarray, radius_km: float) -> CoverageFigure:
    """Reference-point method: population of the communes whose point is within radius_km."""
    covered = distances_m <= radius_km * 1000.0
    return CoverageFigure(
        radius_km=radius_km,
        population=units.total_population,
        covered_population=float(units.population[covered].sum()),
        communes=len(units),
        covered_communes=int(covered.sum()),
    )


def coverage_curve(
    *, units: Units, distances_m: np.ndarray, radii_km: Iterable[float] = range(1, 31)
) -> list[CoverageFigure]:
    """Reference-point coverage at each radius (default 1 to 30 km)."""
    order = np.argsort(distances_m, kind="stable")
    sorted_distances = distances_m[order]
    cumulative = np.concatenate(([0], np.cumsum(units.population[order])))
    total = units.total_population
    figures = []
    for radius in radii_km:
        n = int(np.searchsorted(sorted_distances, radius * 1000.0, side="right"))
        figures.append(
            CoverageFigure(
                radius_km=float(radius),
                population=total,
                covered_population=float(cumulative[n]),
                communes=len(units),
                covered_communes=n,
            )
        )
    return figures


def covered_population_by_group(
    *, units: Units, distances_m: np.ndarray, radius_km: float, level: str
) -> dict[str, tuple[int, int]]:
    """{department or region code: (population, covered population)} by the reference-point method."""
    keys = _level_keys(units, level)
    covered = distances_m <= radius_km * 1000.0
    result: dict[str, list[int]] = {}
    for key, population, is_covered in zip(keys, units.population, covered, strict=True):
        entry = result.setdefault(key, [0, 0])
        entry[0] += int(population)
        if is_covered:
            entry[1] += int(population)
    return {key: (pop, cov) for key, (pop, cov) in result.items()}


# ---------------------------------------------------------------------------------------------
# Densities


def _level_keys(units: Units, level: str) -> np.ndarray:
    if level == "commune":
        return units.code
    if level == "department":
        return units.department
    if level == "region":
        return units.region
    raise ValueError(f"unknown level {level!r}")


@dataclass(frozen=True)
class Density:
    key: str
    population: int
    count: int

    @property
    def per_100k(self) -> float | None:
        return self.count * 100_000 / self.population if self.population else None


def density_per_100k(*, units: Units, item_unit_codes: Iterable[str], level: str) -> dict[str, Density]:
    """Items (e.g. AMAPs) per 100,000 inhabitants by commune, department or region.

    `item_unit_codes` gives the unit (commune code) of each item; items outside the units are
    ignored (they belong to another territory).
    """
    keys = _level_keys(units, level)
    unit_key = dict(zip(units.code, keys, strict=True))
    population: dict[str, int] = {}
    for key, pop in zip(keys, units.population, strict=True):
        population[key] = population.get(key, 0) + int(pop)
    counts: dict[str, int] = dict.fromkeys(population, 0)
    for code in item_unit_codes:
        key = unit_key.get(code)
        if key is not None:
            counts[key] += 1
    return {key: Density(key=key, population=population[key], count=counts[key]) for key in population}


# ---------------------------------------------------------------------------------------------
# White zones


@dataclass(frozen=True)
class WhiteZone:
    """Communes farther than the radius from any point: one commune, or a group of neighbours."""

    codes: tuple[str, ...]
    names: tuple[str, ...]  # by decreasing population
    population: int
    nearest_m: float  # from the closest member's reference point to the nearest point (inf: none)
    departments: tuple[str, ...]

    @property
    def is_group(self) -> bool:
        return len(self.codes) > 1

    def as_dict(self) -> dict:
        return {
            "codes": list(self.codes),
            "names": list(self.names),
            "communes": len(self.codes),
            "population": self.population,
            "nearest_km": round(self.nearest_m / 1000.0, 2) if math.isfinite(self.nearest_m) else None,
            "departments": list(self.departments),
        }


def unit_adjacency(codes: Sequence[str]) -> list[tuple[str, str]]:
    """Pairs of communes (among `codes`) whose outlines touch or overlap (PostGIS)."""
    if len(codes) < 2:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT a.code, b.code
            FROM geo_commune a
            JOIN geo_commune b ON a.code < b.code AND a.geom && b.geom AND ST_Intersects(a.geom, b.geom)
            WHERE a.code = ANY(%s) AND b.code = ANY(%s)
            """,
            [list(codes), list(codes)],
        )
        return cursor.fetchall()


def white_zones(
    *,
    units: Units,
    distances_m: np.ndarray,
    radius_km: float,
    min_population: int,
    adjacency: Iterable[tuple[str, str]] | None = None,
) -> tuple[list[WhiteZone], list[WhiteZone]]:
    """(communes, groups): uncovered communes with at least `min_population` inhabitants, and
    groups of two or more adjacent uncovered communes totalling at least `min_population`;
    both ranked by population. `adjacency` defaults to the touching outlines in PostGIS.
    """
    uncovered = np.nonzero(distances_m > radius_km * 1000.0)[0]
    communes = [_zone(units, distances_m, np.array([i])) for i in uncovered if units.population[i] >= min_population]
    communes.sort(key=lambda z: (-z.population, z.codes))
    groups: list[WhiteZone] = []
    if len(uncovered) >= 2:
        codes = units.code[uncovered]
        if adjacency is None:
            adjacency = unit_adjacency(list(codes))
        position = {code: k for k, code in enumerate(codes)}
        pairs = [(position[a], position[b]) for a, b in adjacency if a in position and b in position]
        if pairs:
            rows, cols = zip(*pairs, strict=True)
            graph = coo_matrix((np.ones(len(pairs)), (rows, cols)), shape=(len(codes), len(codes)))
            _n, labels = connected_components(graph, directed=False)
            for label in np.unique(labels):
                members = uncovered[labels == label]
                if len(members) >= 2 and units.population[members].sum() >= min_population:
                    groups.append(_zone(units, distances_m, members))
    groups.sort(key=lambda z: (-z.population, z.codes))
    return communes, groups


def _zone(units: Units, distances_m: np.ndarray, members: np.ndarray) -> WhiteZone:
    members = members[np.argsort(-units.population[members], kind="stable")]
    return WhiteZone(
        codes=tuple(units.code[members]),
        names=tuple(units.name[members]),
        population=int(units.population[members].sum()),
        nearest_m=float(distances_m[members].min()),
        departments=tuple(sorted(set(units.department[members]))),
    )


# ---------------------------------------------------------------------------------------------
# History


@dataclass(frozen=True)
class HistoryPoint:
    date: dt.date
    points: int
    covered_population: int
    population: int

    @property
    def share(self) -> float:
        return self.covered_population / self.population if self.population else 0.0


def coverage_history(
    *,
    units: Units,
    lon: np.ndarray,
    lat: np.ndarray,
    opened: Sequence[dt.date],
    closed: Sequence[dt.date | None],
    dates: Sequence[dt.date],
    radius_km: float,
) -> list[HistoryPoint]:
    """Reference-point coverage at each date, counting the points open on that date
    (opened <= date and not closed on or before it)."""
    lon = np.asarray(lon, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    opened_arr = np.array([d.toordinal() for d in opened], dtype=np.int64)
    closed_arr = np.array([d.toordinal() if d else 10**9 for d in closed], dtype=np.int64)
    history = []
    previous_mask = None
    previous_point = None
    for date in dates:
        day = date.toordinal()
        mask = (opened_arr <= day) & (closed_arr > day)
        if previous_mask is not None and np.array_equal(mask, previous_mask):
            history.append(
                HistoryPoint(date, previous_point.points, previous_point.covered_population, previous_point.population)
            )
            continue
        covered = PointSet(lon[mask], lat[mask]).covered(units.lon, units.lat, radius_km * 1000.0)
        point = HistoryPoint(date, int(mask.sum()), int(units.population[covered].sum()), units.total_population)
        history.append(point)
        previous_mask, previous_point = mask, point
    return history
