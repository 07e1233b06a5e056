"""Coverage of a territory's population by a set of points (generic: knows nothing of AMAPs).

Two methods, always named next to their figures:
- **point de référence de la commune** (`reference_point`): a commune counts as covered at X km
  when its reference point (town hall, else a point inside it) lies within X km, geodesic on
  WGS84, of one of the points. Exact, and cheap for all of France.
- **surface pondérée** (`area_weighted`): the share of each commune's surface lying within X km
  of a point (union of geodesic circles intersected with the commune outlines in a metric
  projection: Lambert-93 for mainland France and Corsica, the official UTM projection of each
  overseas territory); population is assumed evenly spread over the commune. Computed only
  where it is cheap enough (see `AREA_WEIGHTED_MAX_UNITS`, `AREA_WEIGHTED_MAX_POINTS`).

The units are the communes, with Paris, Lyon and Marseille split into their arrondissements
(a single point for two million Parisians would say little).

Nearest distances use an in-memory KD-tree on unit-sphere xyz coordinates (chord length is
monotonic in great-circle distance) to shortlist, then the exact WGS84 geodesic (pyproj) to
decide: all of France (35k communes x 100k points) takes well under a second.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from django.db import connection
from django.utils.translation import gettext_lazy as _
from pyproj import Geod, Transformer
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

REFERENCE_POINT = "reference_point"
AREA_WEIGHTED = "area_weighted"
METHOD_LABELS = {
    REFERENCE_POINT: _("point de référence de la commune"),
    AREA_WEIGHTED: _("surface pondérée"),
}

EARTH_MEAN_RADIUS_M = 6_371_008.8
# On WGS84 a geodesic is between 0.9944 and 1.0045 times the great-circle distance on the
# mean sphere (meridian radius of curvature at the equator / at the poles): 1 % is a safe bound.
SPHERE_TOLERANCE = 0.01
# Beyond this distance the nearest point is only guaranteed to within 1 %: nobody walks
# 200 km to a delivery, and it keeps overseas communes far from any point cheap.
EXACT_NEAREST_MAX_M = 200_000.0
CANDIDATES = 8
MAX_SHORTLIST = 2048

AREA_WEIGHTED_MAX_UNITS = 6_000  # a large région (Grand Est: 5,100 communes)
AREA_WEIGHTED_MAX_POINTS = 5_000
CIRCLE_VERTICES = 72

# Metric projection per département for surface computations.
_OVERSEAS_SRID = {"971": 5490, "972": 5490, "973": 2972, "974": 2975, "976": 4471}
_MAINLAND_SRID = 2154  # RGF93 / Lambert-93

_GEOD = Geod(ellps="WGS84")


# ---------------------------------------------------------------------------------------------
# Units (communes)


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


# ---------------------------------------------------------------------------------------------
# Nearest distances


def _xyz(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    lon_r = np.radians(lon)
    lat_r = np.radians(lat)
    cos_lat = np.cos(lat_r)
    return np.column_stack((cos_lat * np.cos(lon_r), cos_lat * np.sin(lon_r), np.sin(lat_r)))


def chord_from_metres(metres):
    """Straight-line distance on the unit sphere for a great-circle distance in metres."""
    return 2.0 * np.sin(
        np.minimum(np.asarray(metres, dtype=np.float64), math.pi * EARTH_MEAN_RADIUS_M) / (2.0 * EARTH_MEAN_RADIUS_M)
    )


def metres_from_chord(chord):
    """Great-circle distance in metres on the mean sphere for a unit-sphere chord."""
    return 2.0 * EARTH_MEAN_RADIUS_M * np.arcsin(np.clip(np.asarray(chord, dtype=np.float64) / 2.0, 0.0, 1.0))


class PointSet:
    """Points (WGS84 lon/lat) indexed for nearest-distance and radius questions."""

    def __init__(self, lon: Iterable[float], lat: Iterable[float]):
        self.lon = np.asarray(list(lon) if not isinstance(lon, np.ndarray) else lon, dtype=np.float64)
        self.lat = np.asarray(list(lat) if not isinstance(lat, np.ndarray) else lat, dtype=np.float64)
        self.tree = cKDTree(_xyz(self.lon, self.lat)) if len(self.lon) else None

    def __len__(self) -> int:
        return len(self.lon)

    def nearest(self, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Geodesic distance (m) from each target to its nearest point, and that point's index.

        No point at all: distance +inf and index -1. Exact (WGS84 geodesic) up to
        EXACT_NEAREST_MAX_M; farther, within 1 %.
        """
        lon = np.asarray(lon, dtype=np.float64)
        lat = np.asarray(lat, dtype=np.float64)
        count = len(lon)
        if self.tree is None or count == 0:
            return np.full(count, np.inf), np.full(count, -1, dtype=np.int64)
        xyz = _xyz(lon, lat)
        best = np.empty(count)
        best_idx = np.empty(count, dtype=np.int64)
        todo = np.arange(count)
        k = CANDIDATES
        while len(todo):
            if k > MAX_SHORTLIST:
                # Thousands of points within 1 % of each other: take every point in reach.
                reach_m = best[todo] / (1.0 - SPHERE_TOLERANCE)
                for i, found in zip(todo, self.within(lon[todo], lat[todo], reach_m), strict=True):
                    if len(found):
                        _a, _b, d = _GEOD.inv(
                            np.full(len(found), lon[i]), np.full(len(found), lat[i]), self.lon[found], self.lat[found]
                        )
                        best[i], best_idx[i] = d.min(), found[int(np.argmin(d))]
                break
            k = min(k, len(self))
            chords, idx = self.tree.query(xyz[todo], k=k, workers=-1)
            chords, idx = chords.reshape(len(todo), k), idx.reshape(len(todo), k)
            # Exact geodesics to the shortlisted candidates.
            _az1, _az2, geodesic = _GEOD.inv(
                np.repeat(lon[todo], k), np.repeat(lat[todo], k), self.lon[idx.ravel()], self.lat[idx.ravel()]
            )
            geodesic = geodesic.reshape(len(todo), k)
            column = np.argmin(geodesic, axis=1)
            rows = np.arange(len(todo))
            best[todo] = geodesic[rows, column]
            best_idx[todo] = idx[rows, column]
            if k == len(self):
                break
            # A point outside the shortlist is at least (1 - tol) x the k-th great-circle distance
            # away; where that bound does not beat the best geodesic (dense clusters of points),
            # look again with a longer shortlist.
            bound = metres_from_chord(chords[:, -1]) * (1.0 - SPHERE_TOLERANCE)
            unsure = (best[todo] > bound) & (best[todo] <= EXACT_NEAREST_MAX_M)
            todo = todo[unsure]
            k *= 4
        return best, best_idx.astype(np.int64)

    def covered(self, lon: np.ndarray, lat: np.ndarray, radius_m: float) -> np.ndarray:
        """Whether each target lies within `radius_m` (geodesic) of a point: one nearest-neighbour
        query on the sphere decides all but the targets near the threshold, checked exactly."""
        lon = np.asarray(lon, dtype=np.float64)
        lat = np.asarray(lat, dtype=np.float64)
        result = np.zeros(len(lon), dtype=bool)
        if self.tree is None or len(lon) == 0:
            return result
        upper = float(chord_from_metres(radius_m / (1.0 - SPHERE_TOLERANCE)))
        chords, _idx = self.tree.query(_xyz(lon, lat), k=1, distance_upper_bound=upper, workers=-1)
        sphere = metres_from_chord(np.where(np.isfinite(chords), chords, 2.0))
        result[sphere * (1.0 + SPHERE_TOLERANCE) <= radius_m] = True
        unsure = np.nonzero(np.isfinite(chords) & ~result)[0]
        if len(unsure):
            distances, _ = self.nearest(lon[unsure], lat[unsure])
            result[unsure] = distances <= radius_m
        return result

    def within(self, lon: np.ndarray, lat: np.ndarray, radius_m) -> list[np.ndarray]:
        """Indices of the points within `radius_m` (geodesic; one radius or one per target) of each target."""
        lon = np.asarray(lon, dtype=np.float64)
        lat = np.asarray(lat, dtype=np.float64)
        radius_m = np.broadcast_to(np.asarray(radius_m, dtype=np.float64), lon.shape)
        if self.tree is None or len(lon) == 0:
            return [np.empty(0, dtype=np.int64) for _ in range(len(lon))]
        reach = chord_from_metres(radius_m / (1.0 - SPHERE_TOLERANCE))
        found = self.tree.query_ball_point(_xyz(lon, lat), reach, workers=-1)
        sizes = np.array([len(f) for f in found], dtype=np.int64)
        if not sizes.sum():
            return [np.empty(0, dtype=np.int64) for _ in range(len(lon))]
        owner = np.repeat(np.arange(len(lon)), sizes)
        candidates = np.concatenate([np.asarray(f, dtype=np.int64) for f in found if len(f)])
        # One vectorised geodesic for every (target, candidate) pair, then split back per target.
        _a, _b, d = _GEOD.inv(lon[owner], lat[owner], self.lon[candidates], self.lat[candidates])
        keep = d <= radius_m[owner]
        kept_owner, kept = owner[keep], candidates[keep]
        bounds = np.searchsorted(kept_owner, np.arange(len(lon) + 1))
        return [kept[bounds[i] : bounds[i + 1]] for i in range(len(lon))]

    def count_within(self, lon: np.ndarray, lat: np.ndarray, radius_m) -> np.ndarray:
        """How many points lie within `radius_m` (geodesic) of each target."""
        return np.array([len(found) for found in self.within(lon, lat, radius_m)], dtype=np.int64)


def nearest_distances(*, units: Units, points: PointSet) -> np.ndarray:
    """Geodesic distance (m) from each unit's reference point to the nearest point (+inf if none)."""
    distances, _idx = points.nearest(units.lon, units.lat)
    return distances


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


# ---------------------------------------------------------------------------------------------
# Area-weighted variant


def area_weighted_too_costly(*, units: Units, points: int) -> str | None:
    """Why the area-weighted variant is not computed here, or None when it is cheap enough."""
    if len(units) > AREA_WEIGHTED_MAX_UNITS:
        return str(
            _("plus de %(n)s communes : seule la méthode du point de référence est calculée")
            % {"n": f"{AREA_WEIGHTED_MAX_UNITS:,}".replace(",", "\u202f")}
        )
    if points > AREA_WEIGHTED_MAX_POINTS:
        return str(
            _("plus de %(n)s points : seule la méthode du point de référence est calculée")
            % {"n": f"{AREA_WEIGHTED_MAX_POINTS:,}".replace(",", "\u202f")}
        )
    return None


def _unit_geometries(codes: Sequence[str]) -> dict[str, bytes]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT code, ST_AsBinary(geom) FROM geo_commune WHERE code = ANY(%s) AND geom IS NOT NULL", [list(codes)]
        )
        return {code: bytes(wkb) for code, wkb in cursor.fetchall()}


def geodesic_circles(lon: np.ndarray, lat: np.ndarray, radius_m: float, *, vertices: int = CIRCLE_VERTICES):
    """Lon/lat rings (n, vertices, 2) of the geodesic circles of `radius_m` around each point."""
    n = len(lon)
    azimuths = np.linspace(0.0, 360.0, vertices, endpoint=False)
    out_lon, out_lat, _back = _GEOD.fwd(
        np.repeat(lon, vertices), np.repeat(lat, vertices), np.tile(azimuths, n), np.full(n * vertices, radius_m)
    )
    return np.stack((out_lon.reshape(n, vertices), out_lat.reshape(n, vertices)), axis=-1)


def area_weighted_shares(
    *, units: Units, lon: np.ndarray, lat: np.ndarray, radius_km: float, geometries: dict[str, bytes] | None = None
) -> np.ndarray:
    """Share (0–1) of each unit's surface within radius_km of a point; NaN for units without outline."""
    import shapely

    lon = np.asarray(lon, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    radius_m = radius_km * 1000.0
    shares = np.full(len(units), np.nan)
    if geometries is None:
        geometries = _unit_geometries(list(units.code))
    have = np.array([code in geometries for code in units.code], dtype=bool)
    shares[have] = 0.0
    if not len(lon) or not have.any():
        return shares
    points = PointSet(lon, lat)
    srids = np.array([_OVERSEAS_SRID.get(d, _MAINLAND_SRID) for d in units.department])
    for srid in np.unique(srids[have]):
        rows = np.nonzero(have & (srids == srid))[0]
        to_metric = Transformer.from_crs(4326, int(srid), always_xy=True)
        polygons = shapely.from_wkb([geometries[code] for code in units.code[rows]])
        polygons = shapely.transform(polygons, lambda xy, t=to_metric: np.column_stack(t.transform(xy[:, 0], xy[:, 1])))
        # Only the points that can reach these communes: within radius + the commune's extent.
        bounds = shapely.bounds(polygons)
        half_diagonal = np.hypot(bounds[:, 2] - bounds[:, 0], bounds[:, 3] - bounds[:, 1]) / 2.0
        reach_m = radius_m + float(half_diagonal.max()) * 1.01 + 1000.0
        nearby = set()
        for found in points.tree.query_ball_point(
            _xyz(units.lon[rows], units.lat[rows]), chord_from_metres(reach_m / (1 - SPHERE_TOLERANCE))
        ):
            nearby.update(found)
        if not nearby:
            continue
        nearby = np.fromiter(nearby, dtype=np.int64)
        rings = geodesic_circles(lon[nearby], lat[nearby], radius_m)
        x, y = to_metric.transform(rings[..., 0].ravel(), rings[..., 1].ravel())
        rings_xy = np.stack((np.asarray(x).reshape(rings.shape[:2]), np.asarray(y).reshape(rings.shape[:2])), axis=-1)
        circles = shapely.polygons(rings_xy)
        reach = shapely.union_all(circles)
        parts = shapely.get_parts(reach)
        tree = shapely.STRtree(parts)
        left, right = tree.query(polygons, predicate="intersects")
        covered_area = np.zeros(len(rows))
        if len(left):
            np.add.at(covered_area, left, shapely.area(shapely.intersection(polygons[left], parts[right])))
        areas = shapely.area(polygons)
        with np.errstate(invalid="ignore", divide="ignore"):
            shares[rows] = np.clip(np.where(areas > 0, covered_area / areas, 0.0), 0.0, 1.0)
    return shares


def area_weighted_coverage(*, units: Units, shares: np.ndarray, radius_km: float) -> CoverageFigure:
    """Population within radius_km assuming each commune's inhabitants are evenly spread."""
    known = ~np.isnan(shares)
    return CoverageFigure(
        radius_km=radius_km,
        population=units.total_population,
        covered_population=float((units.population[known] * shares[known]).sum()),
        communes=len(units),
        covered_communes=int((shares[known] >= 0.5).sum()),
        method=AREA_WEIGHTED,
    )
