"""The units of a coverage question: a territory's communes (Paris, Lyon and Marseille by arrondissement)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from django.db import connection


@dataclass
class Units:
    """The communes of a territory as parallel arrays (one row per commune or arrondissement)."""

    code: np.ndarray  # str
    name: np.ndarray  # str
    population: np.ndarray  # int64
    lon: np.ndarray  # float64, reference point
    lat: np.ndarray
    department: np.ndarray  # str
    region: np.ndarray  # str
    # Communes of the territory that have neither reference point nor outline (new in 2025):
    # (code, name, population), counted nowhere and listed so that nobody is silently lost.
    unlocated: list[tuple[str, str, int]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.code)

    @property
    def total_population(self) -> int:
        return int(self.population.sum())

    def index_of(self) -> dict[str, int]:
        return {code: i for i, code in enumerate(self.code)}

    def subset(self, mask: np.ndarray) -> Units:
        return Units(
            code=self.code[mask],
            name=self.name[mask],
            population=self.population[mask],
            lon=self.lon[mask],
            lat=self.lat[mask],
            department=self.department[mask],
            region=self.region[mask],
            unlocated=list(self.unlocated),
        )


_UNITS_SQL = """
WITH split AS (SELECT DISTINCT parent_id AS code FROM geo_commune WHERE parent_id IS NOT NULL),
located AS (
    SELECT c.code, c.name, c.population, c.department_id, c.region_id,
           COALESCE(c.point::geometry, ST_PointOnSurface(c.geom)) AS loc
    FROM geo_commune c
    WHERE c.code NOT IN (SELECT code FROM split)
)
SELECT code, name, population, department_id, region_id, ST_X(loc), ST_Y(loc)
FROM located
WHERE {where}
ORDER BY code
"""


def _territory_where(
    *, department_codes: Sequence[str], region_codes: Sequence[str], polygon_ewkb: bytes | None, everywhere: bool
) -> tuple[str, list]:
    if everywhere:
        return "TRUE", []
    clauses, params = [], []
    if department_codes:
        clauses.append("department_id = ANY(%s)")
        params.append(list(department_codes))
    if region_codes:
        clauses.append("region_id = ANY(%s)")
        params.append(list(region_codes))
    if polygon_ewkb is not None:
        # A drawn territory holds the communes whose reference point lies inside it.
        clauses.append("(loc IS NOT NULL AND ST_Intersects(ST_GeomFromEWKB(%s), loc))")
        params.append(polygon_ewkb)
    if not clauses:
        return "FALSE", []
    return "(" + " OR ".join(clauses) + ")", params


def load_units(
    *,
    department_codes: Sequence[str] = (),
    region_codes: Sequence[str] = (),
    polygon=None,
    everywhere: bool = False,
) -> Units:
    """The communes of a territory: union of départements, régions and a WGS84 polygon (GEOS)."""
    polygon_ewkb = bytes(polygon.ewkb) if polygon is not None else None
    where, params = _territory_where(
        department_codes=department_codes, region_codes=region_codes, polygon_ewkb=polygon_ewkb, everywhere=everywhere
    )
    with connection.cursor() as cursor:
        cursor.execute(_UNITS_SQL.format(where=f"loc IS NOT NULL AND {where}"), params)
        rows = cursor.fetchall()
        cursor.execute(_UNITS_SQL.format(where=f"loc IS NULL AND {where}"), params)
        unlocated = [(code, name, int(pop)) for code, name, pop, *_rest in cursor.fetchall()]
    return units_from_rows(rows, unlocated=unlocated)


def units_from_rows(rows: Sequence[tuple], *, unlocated: list | None = None) -> Units:
    """Units from (code, name, population, department, region, lon, lat) rows."""
    if rows:
        code, name, population, department, region, lon, lat = zip(*rows, strict=True)
    else:
        code = name = population = department = region = lon = lat = ()
    return Units(
        code=np.array(code, dtype=object),
        name=np.array(name, dtype=object),
        population=np.array(population, dtype=np.int64),
        lon=np.array(lon, dtype=np.float64),
        lat=np.array(lat, dtype=np.float64),
        department=np.array(department, dtype=object),
        region=np.array(region, dtype=object),
        unlocated=unlocated or [],
    )
