"""The area-weighted variant: the share of each commune's surface within X km of a point
(union of geodesic circles intersected with the commune outlines in a metric projection)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from django.db import connection
from django.utils.translation import gettext_lazy as _
from pyproj import Transformer

from geo.sphere import GEOD, chord_from_metres, unit_xyz

from .figures import AREA_WEIGHTED, CoverageFigure
from .nearest import SPHERE_TOLERANCE, PointSet
from .units import Units

AREA_WEIGHTED_MAX_UNITS = 6_000  # a large région (Grand Est: 5,100 communes)
AREA_WEIGHTED_MAX_POINTS = 5_000
CIRCLE_VERTICES = 72

# Metric projection per département for surface computations.
_OVERSEAS_SRID = {"971": 5490, "972": 5490, "973": 2972, "974": 2975, "976": 4471}
_MAINLAND_SRID = 2154  # RGF93 / Lambert-93

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
    out_lon, out_lat, _back = GEOD.fwd(
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
            unit_xyz(units.lon[rows], units.lat[rows]), chord_from_metres(reach_m / (1 - SPHERE_TOLERANCE))
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
