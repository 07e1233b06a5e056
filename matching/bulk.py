"""Bulk matching: the k best counterparts of every open annonce, computed in memory, stored.

Per-row SQL (a LATERAL KNN per annonce) costs ~11 s for 100k farms; an in-memory KD-tree on
unit-sphere xyz answers the same nearest-neighbour question in ~0.2 s (QUALITY.md). So:

1. load the directory's active AMAPs, farms, partnerships and live annonces as numpy arrays
   (a few aggregate queries);
2. for each annonce, shortlist the `shortlist` nearest candidate points within its radius
   from a `cKDTree` (chord radius inflated by 1 %: the sphere is not the ellipsoid);
3. distances by an ellipsoidal local-plane formula (relative error < 2e-4 up to 300 km,
   measured against pyproj); pairs within 0.2 % of a radius are decided with the exact
   geodesic (pyproj), so who is within reach is exact;
4. score with `matching.engine.score_table` — the same rules and weights as the request path;
5. keep the k best per annonce, recompute their distances exactly, state the reasons, and
   upsert them into `Match` (first_seen_at and notified_at survive a recomputation).

Exactness: when fewer than `shortlist` points are within an annonce's reach (the common
case outside dense cities), the candidates are exactly those of the request path. Where more
are within reach, only the nearest `shortlist` are scored; `BulkReport.saturated` counts those
annonces.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from psycopg import sql
from pyproj import Geod
from scipy.spatial import cKDTree

from directory.models import Amap, Farm, Partnership

from . import engine, routing
from .models import Annonce, Match
from .selectors import product_bits

logger = logging.getLogger(__name__)

_GEOD = Geod(ellps="WGS84")
EARTH_MEAN_RADIUS_M = 6_371_008.8
SPHERE_MARGIN = 1.01  # chord radius inflation: sphere vs ellipsoid differ by < 0.6 %
BOUNDARY_MARGIN = 0.002  # pairs this close (relative) to a radius get the exact geodesic
CHUNK = 20_000  # annonces per KD-tree query batch (bounds memory: CHUNK × shortlist pairs)
A_WGS84 = 6378137.0
E2_WGS84 = 0.00669437999014


def default_shortlist() -> int:
    return int(getattr(settings, "MATCH_BULK_SHORTLIST", 128))


# --------------------------------------------------------------------------- geometry helpers


def unit_xyz(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    lon_r = np.radians(lon)
    lat_r = np.radians(lat)
    cos_lat = np.cos(lat_r)
    return np.column_stack((cos_lat * np.cos(lon_r), cos_lat * np.sin(lon_r), np.sin(lat_r)))


def chord_for_metres(metres: float) -> float:
    angle = min(math.pi, metres * SPHERE_MARGIN / EARTH_MEAN_RADIUS_M)
    return 2.0 * math.sin(angle / 2.0)


def approx_distance_m(lon1, lat1, lon2, lat2) -> np.ndarray:
    """Ellipsoidal local-plane distance (radii of curvature at the mid-latitude); short range only."""
    phi = np.radians((lat1 + lat2) / 2.0)
    sin_phi = np.sin(phi)
    w = 1.0 - E2_WGS84 * sin_phi * sin_phi
    n_radius = A_WGS84 / np.sqrt(w)
    m_radius = A_WGS84 * (1.0 - E2_WGS84) / (w * np.sqrt(w))
    dlon = (lon2 - lon1 + 180.0) % 360.0 - 180.0
    return np.hypot(n_radius * np.cos(phi) * np.radians(dlon), m_radius * np.radians(lat2 - lat1))


def geodesic_m(lon1, lat1, lon2, lat2) -> np.ndarray:
    if len(lon1) == 0:
        return np.zeros(0)
    _f, _b, dist = _GEOD.inv(lon1, lat1, lon2, lat2)
    return np.asarray(dist, dtype=np.float64)


# --------------------------------------------------------------------------- loading


def _rows(sql: str, params=None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        return cursor.fetchall()


def _column(rows: list[tuple], index: int, dtype, default=None) -> np.ndarray:
    if default is None:
        return np.array([row[index] for row in rows], dtype=dtype)
    return np.array([default if row[index] is None else row[index] for row in rows], dtype=dtype)


# One bit per product category, from its position in the ordered id array (a parameter).
_MASK = "bit_or((1::bigint) << (array_position(%s::bigint[], {column}::bigint) - 1))"
_WEEKDAYS = "COALESCE((SELECT bit_or(1 << (d - 1)) FROM unnest({column}) AS d WHERE d BETWEEN 1 AND 7), 0)"


def _tables() -> dict[str, sql.Identifier]:
    """Table names from the models, quoted as identifiers (queries are composed, never formatted)."""
    return {
        "amap": sql.Identifier(Amap._meta.db_table),
        "farm": sql.Identifier(Farm._meta.db_table),
        "partnership": sql.Identifier(Partnership._meta.db_table),
        "annonce": sql.Identifier(Annonce._meta.db_table),
        "amap_products": sql.Identifier(Amap.products.through._meta.db_table),
        "farm_products": sql.Identifier(Farm.products.through._meta.db_table),
        "annonce_products": sql.Identifier(Annonce.products.through._meta.db_table),
        "match": sql.Identifier(Match._meta.db_table),
    }


def _compose(template: str, **fragments) -> sql.Composed:
    """`template` with {table} names and the constant {mask:column}/{weekdays:column} fragments."""
    fragments = {**_tables(), **fragments}
    return sql.SQL(template).format(**fragments)


def _mask(column: str) -> sql.Composed:
    return sql.SQL(_MASK).format(column=sql.SQL(column))


def _weekdays(column: str) -> sql.Composed:
    return sql.SQL(_WEEKDAYS).format(column=sql.SQL(column))


@dataclass
class Directory:
    """The directory as arrays (ids sorted ascending)."""

    amap_id: np.ndarray
    amap_lon: np.ndarray
    amap_lat: np.ndarray
    amap_days: np.ndarray
    amap_members: np.ndarray
    amap_openness: np.ndarray
    amap_listed: np.ndarray
    amap_partnered: np.ndarray
    farm_id: np.ndarray
    farm_lon: np.ndarray
    farm_lat: np.ndarray
    farm_radius_m: np.ndarray
    farm_capacity: np.ndarray
    farm_products: np.ndarray
    # active partnerships (amap, farm) → product mask, keys amap_id << 32 | farm_id sorted
    pair_key: np.ndarray
    pair_mask: np.ndarray
    # each farm's delivery points (active partner AMAPs), grouped by farm index
    tour_start: np.ndarray
    tour_count: np.ndarray
    tour_amap: np.ndarray
    tour_lon: np.ndarray
    tour_lat: np.ndarray
    # live annonces
    ann_id: np.ndarray
    ann_kind: np.ndarray  # 0 farm seeks AMAP, 1 AMAP seeks farm
    ann_org: np.ndarray  # farm id or AMAP id
    ann_lon: np.ndarray
    ann_lat: np.ndarray
    ann_radius_m: np.ndarray
    ann_days: np.ndarray
    ann_shares: np.ndarray
    ann_products: np.ndarray


def load_directory(*, product_ids: list[int]) -> Directory:
    listed = _mask("productcategory_id")
    partnered = _mask("product_id")
    amaps = _rows(
        _compose(
            """
            SELECT a.id, ST_X(a.location::geometry), ST_Y(a.location::geometry),
                   {days}, a.member_count, a.accepting_members,
                   COALESCE(lp.mask, 0), COALESCE(pp.mask, 0)
            FROM {amap} a
            LEFT JOIN (SELECT amap_id, {listed} AS mask
                       FROM {amap_products} GROUP BY amap_id) lp ON lp.amap_id = a.id
            LEFT JOIN (SELECT amap_id, {partnered} AS mask
                       FROM {partnership} WHERE is_active GROUP BY amap_id) pp ON pp.amap_id = a.id
            WHERE a.status = %s
            ORDER BY a.id
            """,
            days=_weekdays("a.delivery_weekdays"),
            listed=listed,
            partnered=partnered,
        ),
        [product_ids, product_ids, Amap.Status.ACTIVE],
    )
    farms = _rows(
        _compose(
            """
            SELECT f.id, ST_X(f.location::geometry), ST_Y(f.location::geometry), f.delivery_radius_km,
                   f.capacity_shares, COALESCE(fp.mask, 0)
            FROM {farm} f
            LEFT JOIN (SELECT farm_id, {listed} AS mask
                       FROM {farm_products} GROUP BY farm_id) fp ON fp.farm_id = f.id
            WHERE f.is_active AND f.location IS NOT NULL
            ORDER BY f.id
            """,
            listed=listed,
        ),
        [product_ids],
    )
    pairs = _rows(
        _compose(
            """
            SELECT (p.amap_id::bigint << 32) | p.farm_id::bigint AS key, {partnered}
            FROM {partnership} p WHERE p.is_active GROUP BY key ORDER BY key
            """,
            partnered=partnered,
        ),
        [product_ids],
    )
    tours = _rows(
        _compose(
            """
            SELECT DISTINCT p.farm_id, p.amap_id, ST_X(a.location::geometry), ST_Y(a.location::geometry)
            FROM {partnership} p JOIN {amap} a ON a.id = p.amap_id
            WHERE p.is_active AND a.status = %s
            ORDER BY p.farm_id, p.amap_id
            """
        ),
        [Amap.Status.ACTIVE],
    )
    annonces = _rows(
        _compose(
            """
            SELECT n.id, CASE WHEN n.kind = %s THEN 0 ELSE 1 END, COALESCE(n.farm_id, n.amap_id),
                   ST_X(n.location::geometry), ST_Y(n.location::geometry), n.radius_km,
                   {days}, n.shares, COALESCE(np.mask, 0)
            FROM {annonce} n
            LEFT JOIN (SELECT annonce_id, {listed} AS mask
                       FROM {annonce_products} GROUP BY annonce_id) np ON np.annonce_id = n.id
            LEFT JOIN {farm} f ON f.id = n.farm_id
            LEFT JOIN {amap} a ON a.id = n.amap_id
            WHERE n.status = %s AND n.expires_on >= %s
              AND (f.is_active OR a.status = %s)
            ORDER BY n.id
            """,
            days=_weekdays("n.delivery_weekdays"),
            listed=listed,
        ),
        [engine.FARM_SEEKS_AMAP, product_ids, Annonce.Status.OPEN, timezone.localdate(), Amap.Status.ACTIVE],
    )

    farm_id = _column(farms, 0, np.int64)
    tour_farm = _column(tours, 0, np.int64)
    tour_farm_index = _index_of(farm_id, tour_farm)
    keep = np.flatnonzero(tour_farm_index >= 0)
    tour_farm_index = tour_farm_index[keep]
    tour_count = np.bincount(tour_farm_index, minlength=len(farm_id)).astype(np.int64)
    tour_start = np.concatenate(([0], np.cumsum(tour_count)[:-1])) if len(farm_id) else np.zeros(0, np.int64)

    return Directory(
        amap_id=_column(amaps, 0, np.int64),
        amap_lon=_column(amaps, 1, np.float64),
        amap_lat=_column(amaps, 2, np.float64),
        amap_days=_column(amaps, 3, np.int64),
        amap_members=_column(amaps, 4, np.float64, math.nan),
        amap_openness=np.array([engine.OPENNESS.get(row[5], 0.5) for row in amaps], dtype=np.float64),
        amap_listed=_column(amaps, 6, np.int64),
        amap_partnered=_column(amaps, 7, np.int64),
        farm_id=farm_id,
        farm_lon=_column(farms, 1, np.float64),
        farm_lat=_column(farms, 2, np.float64),
        farm_radius_m=_column(farms, 3, np.float64) * 1000.0,
        farm_capacity=_column(farms, 4, np.float64, math.nan),
        farm_products=_column(farms, 5, np.int64),
        pair_key=_column(pairs, 0, np.int64),
        pair_mask=_column(pairs, 1, np.int64),
        tour_start=tour_start,
        tour_count=tour_count,
        tour_amap=_column(tours, 1, np.int64)[keep],
        tour_lon=_column(tours, 2, np.float64)[keep],
        tour_lat=_column(tours, 3, np.float64)[keep],
        ann_id=_column(annonces, 0, np.int64),
        ann_kind=_column(annonces, 1, np.int64),
        ann_org=_column(annonces, 2, np.int64),
        ann_lon=_column(annonces, 3, np.float64),
        ann_lat=_column(annonces, 4, np.float64),
        ann_radius_m=_column(annonces, 5, np.float64) * 1000.0,
        ann_days=_column(annonces, 6, np.int64),
        ann_shares=_column(annonces, 7, np.float64, math.nan),
        ann_products=_column(annonces, 8, np.int64),
    )


def _index_of(sorted_ids: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Positions of `ids` in `sorted_ids`, -1 where absent."""
    if len(sorted_ids) == 0:
        return np.full(len(ids), -1, dtype=np.int64)
    pos = np.searchsorted(sorted_ids, ids)
    pos_clipped = np.minimum(pos, len(sorted_ids) - 1)
    return np.where(sorted_ids[pos_clipped] == ids, pos_clipped, -1)


def _pair_products(d: Directory, amap_ids: np.ndarray, farm_ids: np.ndarray) -> np.ndarray:
    if len(d.pair_key) == 0:
        return np.zeros(len(amap_ids), dtype=np.int64)
    keys = (amap_ids.astype(np.int64) << 32) | farm_ids.astype(np.int64)
    pos = _index_of(d.pair_key, keys)
    return np.where(pos >= 0, d.pair_mask[np.maximum(pos, 0)], 0)


def _nearest_tour(d: Directory, farm_index: np.ndarray, lon: np.ndarray, lat: np.ndarray, exact: bool = False):
    """Distance from each (lon, lat) to the nearest delivery point of farm `farm_index` (inf: none)."""
    n = len(farm_index)
    best = np.full(n, math.inf)
    best_amap = np.zeros(n, dtype=np.int64)
    valid = farm_index >= 0
    counts = np.where(valid, d.tour_count[np.maximum(farm_index, 0)] if len(d.tour_count) else 0, 0)
    total = int(counts.sum())
    if total == 0:
        return best, best_amap
    pair = np.repeat(np.arange(n), counts)
    offsets = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    point = d.tour_start[farm_index[pair]] + offsets
    if exact:
        dist = geodesic_m(lon[pair], lat[pair], d.tour_lon[point], d.tour_lat[point])
    else:
        dist = approx_distance_m(lon[pair], lat[pair], d.tour_lon[point], d.tour_lat[point])
    order = np.lexsort((dist, pair))
    _u, first = np.unique(pair[order], return_index=True)
    chosen = order[first]
    best[pair[chosen]] = dist[chosen]
    best_amap[pair[chosen]] = d.tour_amap[point[chosen]]
    return best, best_amap


# --------------------------------------------------------------------------- candidate points


@dataclass
class Points:
    """Candidate points of one side: directory entries followed by their owners' live annonces."""

    org_id: np.ndarray
    org_index: np.ndarray  # index in the AMAP or farm arrays
    annonce_id: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    tree: cKDTree | None


def _points(org_ids, org_index, lon, lat, ann_ids, ann_org_index, ann_org_ids, ann_lon, ann_lat) -> Points:
    lon_all = np.concatenate((lon, ann_lon))
    lat_all = np.concatenate((lat, ann_lat))
    tree = cKDTree(unit_xyz(lon_all, lat_all)) if len(lon_all) else None
    return Points(
        org_id=np.concatenate((org_ids, ann_org_ids)).astype(np.int64),
        org_index=np.concatenate((org_index, ann_org_index)).astype(np.int64),
        annonce_id=np.concatenate((np.zeros(len(org_ids), np.int64), ann_ids)).astype(np.int64),
        lon=lon_all,
        lat=lat_all,
        tree=tree,
    )


@dataclass
class TopRows:
    query: np.ndarray  # annonce index in Directory.ann_*
    point: np.ndarray  # candidate point index
    table: engine.CandidateTable
    scored: engine.Scored


def _shortlist(points: Points, q_lon, q_lat, q_radius_m, shortlist: int):
    """(query row, point index, approx distance) for the nearest points within each radius."""
    q_rows, p_rows = [], []
    saturated = 0
    if points.tree is None or len(q_lon) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0), 0
    k = min(shortlist, points.tree.n)
    xyz = unit_xyz(q_lon, q_lat)
    for radius in np.unique(q_radius_m):
        group = np.flatnonzero(q_radius_m == radius)
        bound = chord_for_metres(float(radius))
        for start in range(0, len(group), CHUNK):
            rows = group[start : start + CHUNK]
            _dist, idx = points.tree.query(xyz[rows], k=k, distance_upper_bound=bound, workers=-1)
            idx = np.asarray(idx).reshape(len(rows), k)
            found = idx < points.tree.n
            saturated += int(found[:, -1].sum()) if k == shortlist else 0
            r, c = np.nonzero(found)
            q_rows.append(rows[r])
            p_rows.append(idx[r, c])
    q_index = np.concatenate(q_rows).astype(np.int64)
    p_index = np.concatenate(p_rows).astype(np.int64)
    distance = approx_distance_m(q_lon[q_index], q_lat[q_index], points.lon[p_index], points.lat[p_index])
    return q_index, p_index, distance, saturated


def _refine_boundary(distance, limits, q_lon, q_lat, p_lon, p_lat):
    """Exact geodesic where the approximate distance is too close to a limit to decide."""
    near = np.zeros(len(distance), dtype=bool)
    for limit in limits:
        with np.errstate(invalid="ignore"):
            near |= np.abs(distance - limit) <= BOUNDARY_MARGIN * limit
    idx = np.flatnonzero(near)
    if idx.size:
        distance = distance.copy()
        distance[idx] = geodesic_m(q_lon[idx], q_lat[idx], p_lon[idx], p_lat[idx])
    return distance


def _top_k(q_index: np.ndarray, table: engine.CandidateTable, scored: engine.Scored, k: int) -> np.ndarray:
    """Row indexes: per query, the k best eligible rows, one per counterpart, best first."""
    rows = np.flatnonzero(scored.eligible)
    if rows.size == 0:
        return rows
    order = np.lexsort(
        (table.annonce_id[rows], table.org_id[rows], table.distance_m[rows], -scored.score[rows], q_index[rows])
    )
    rows = rows[order]
    key = q_index[rows] * (int(table.org_id.max()) + 1) + table.org_id[rows]
    _u, first = np.unique(key, return_index=True)
    rows = rows[np.sort(first)]
    queries = q_index[rows]
    starts = np.r_[0, np.flatnonzero(np.diff(queries)) + 1]
    sizes = np.diff(np.r_[starts, len(rows)])
    position = np.arange(len(rows)) - np.repeat(starts, sizes)
    return rows[position < k]


def _need_for(d: Directory, kind: str, q_index: np.ndarray) -> engine.Need:
    days = d.ann_days[q_index]
    days = np.where(days == 0, engine.ALL_DAYS, days)  # no day named: any day suits
    return engine.Need(
        kind=kind,
        products_mask=d.ann_products[q_index],
        weekdays_mask=days,
        radius_m=d.ann_radius_m[q_index],
        shares=d.ann_shares[q_index],
    )


def _farm_annonces(d: Directory, queries: np.ndarray, k: int, shortlist: int):
    """Farm seeks AMAP: candidates are active AMAPs and the live 'AMAP cherche paysan' annonces."""
    ann_amap = np.flatnonzero(d.ann_kind == 1)
    ann_amap_index = _index_of(d.amap_id, d.ann_org[ann_amap])
    ann_amap = ann_amap[ann_amap_index >= 0]
    ann_amap_index = ann_amap_index[ann_amap_index >= 0]
    points = _points(
        d.amap_id,
        np.arange(len(d.amap_id)),
        d.amap_lon,
        d.amap_lat,
        d.ann_id[ann_amap],
        ann_amap_index,
        d.ann_org[ann_amap],
        d.ann_lon[ann_amap],
        d.ann_lat[ann_amap],
    )
    is_annonce_point = np.concatenate((np.zeros(len(d.amap_id), bool), np.ones(len(ann_amap), bool)))
    point_annonce_row = np.concatenate((np.full(len(d.amap_id), -1), ann_amap))
    q_lon, q_lat = d.ann_lon[queries], d.ann_lat[queries]
    local_q, p, distance, saturated = _shortlist(points, q_lon, q_lat, d.ann_radius_m[queries], shortlist)
    q = queries[local_q]
    amap_index = points.org_index[p]
    ann_row = point_annonce_row[p]
    own = is_annonce_point[p]
    reach = np.where(own, d.ann_radius_m[np.maximum(ann_row, 0)], math.inf)
    distance = _refine_boundary(
        distance, (d.ann_radius_m[q], reach), d.ann_lon[q], d.ann_lat[q], points.lon[p], points.lat[p]
    )
    farm_index = _index_of(d.farm_id, d.ann_org[q])
    synergy_m, synergy_amap = _nearest_tour(d, farm_index, points.lon[p], points.lat[p])
    table = engine.CandidateTable(
        org_id=points.org_id[p],
        annonce_id=points.annonce_id[p],
        distance_m=distance,
        reach_m=reach,
        weekdays=np.where(own, d.ann_days[np.maximum(ann_row, 0)], d.amap_days[amap_index]),
        product_mask=d.amap_listed[amap_index],
        partnered_mask=d.amap_partnered[amap_index],
        declared_mask=np.where(own, d.ann_products[np.maximum(ann_row, 0)], 0),
        size=np.where(own, d.ann_shares[np.maximum(ann_row, 0)], d.amap_members[amap_index]),
        openness=np.where(own, 1.0, d.amap_openness[amap_index]),
        synergy_m=synergy_m,
        synergy_amap=synergy_amap,
    )
    return q, p, points, table, saturated


def _amap_annonces(d: Directory, queries: np.ndarray, k: int, shortlist: int):
    """AMAP seeks farm: candidates are active farms and the live 'Paysan cherche AMAP' annonces."""
    ann_farm = np.flatnonzero(d.ann_kind == 0)
    ann_farm_index = _index_of(d.farm_id, d.ann_org[ann_farm])
    ann_farm = ann_farm[ann_farm_index >= 0]
    ann_farm_index = ann_farm_index[ann_farm_index >= 0]
    points = _points(
        d.farm_id,
        np.arange(len(d.farm_id)),
        d.farm_lon,
        d.farm_lat,
        d.ann_id[ann_farm],
        ann_farm_index,
        d.ann_org[ann_farm],
        d.ann_lon[ann_farm],
        d.ann_lat[ann_farm],
    )
    is_annonce_point = np.concatenate((np.zeros(len(d.farm_id), bool), np.ones(len(ann_farm), bool)))
    point_annonce_row = np.concatenate((np.full(len(d.farm_id), -1), ann_farm))
    q_lon, q_lat = d.ann_lon[queries], d.ann_lat[queries]
    local_q, p, distance, saturated = _shortlist(points, q_lon, q_lat, d.ann_radius_m[queries], shortlist)
    q = queries[local_q]
    farm_index = points.org_index[p]
    ann_row = point_annonce_row[p]
    own = is_annonce_point[p]
    reach = np.where(own, d.ann_radius_m[np.maximum(ann_row, 0)], d.farm_radius_m[farm_index])
    distance = _refine_boundary(
        distance, (d.ann_radius_m[q], reach), d.ann_lon[q], d.ann_lat[q], points.lon[p], points.lat[p]
    )
    synergy_m, synergy_amap = _nearest_tour(d, farm_index, d.ann_lon[q], d.ann_lat[q])
    own_shares = d.ann_shares[np.maximum(ann_row, 0)]
    size = np.where(own & ~np.isnan(own_shares), own_shares, d.farm_capacity[farm_index])
    offered = np.where(own, d.ann_products[np.maximum(ann_row, 0)], d.farm_products[farm_index])
    own_days = d.ann_days[np.maximum(ann_row, 0)]
    table = engine.CandidateTable(
        org_id=points.org_id[p],
        annonce_id=points.annonce_id[p],
        distance_m=distance,
        reach_m=reach,
        weekdays=np.where(own, np.where(own_days == 0, engine.ALL_DAYS, own_days), 0),
        product_mask=offered,
        partnered_mask=_pair_products(d, d.ann_org[q], points.org_id[p]),
        declared_mask=np.where(own, offered, 0),
        size=size,
        openness=np.full(len(p), math.nan),
        synergy_m=synergy_m,
        synergy_amap=synergy_amap,
    )
    return q, p, points, table, saturated


@dataclass
class BulkReport:
    annonces: int = 0
    matches: int = 0
    saturated: int = 0  # annonces whose shortlist was full (more points within reach than scored)
    load_s: float = 0.0
    compute_s: float = 0.0
    store_s: float = 0.0

    @property
    def total_s(self) -> float:
        return self.load_s + self.compute_s + self.store_s


@dataclass
class BulkResult:
    """Stored-ready rows: one per (annonce, counterpart), ranked."""

    annonce_id: np.ndarray
    counterpart_is_farm: np.ndarray
    counterpart_id: np.ndarray
    counterpart_annonce_id: np.ndarray
    rank: np.ndarray
    score: np.ndarray
    distance_m: np.ndarray
    drive_minutes: np.ndarray
    components: list[str]  # JSON text
    reasons: list[list[str]]


def _finish(d: Directory, kind: str, q, p, points: Points, table, k: int, bits, tour_names) -> BulkResult | None:
    need = _need_for(d, kind, q)
    scored = engine.score_table(need, table)
    top = _top_k(q, table, scored, k)
    if top.size == 0:
        return None
    q, p = q[top], p[top]
    table = table.take(top)
    # Exact distances for the rows kept, then the same score again on them.
    table.distance_m = geodesic_m(d.ann_lon[q], d.ann_lat[q], points.lon[p], points.lat[p])
    if kind == engine.FARM_SEEKS_AMAP:
        farm_index = _index_of(d.farm_id, d.ann_org[q])
        table.synergy_m, table.synergy_amap = _nearest_tour(d, farm_index, points.lon[p], points.lat[p], exact=True)
    else:
        farm_index = points.org_index[p]
        table.synergy_m, table.synergy_amap = _nearest_tour(d, farm_index, d.ann_lon[q], d.ann_lat[q], exact=True)
    need = _need_for(d, kind, q)
    scored = engine.score_table(need, table)
    keep = np.flatnonzero(scored.eligible)
    order = keep[np.lexsort((table.org_id[keep], table.distance_m[keep], -scored.score[keep], q[keep]))]
    q, p = q[order], p[order]
    table = table.take(order)
    scored = engine.Scored(
        eligible=scored.eligible[order],
        components={name: values[order] for name, values in scored.components.items()},
        score=scored.score[order],
    )
    starts = np.r_[0, np.flatnonzero(np.diff(q)) + 1]
    sizes = np.diff(np.r_[starts, len(q)])
    rank = np.arange(len(q)) - np.repeat(starts, sizes) + 1

    is_farm = kind == engine.AMAP_SEEKS_FARM
    distance = np.round(table.distance_m, -2) if is_farm else np.round(table.distance_m, 1)
    drive = np.round(
        distance
        / 1000.0
        * float(getattr(settings, "ROUTING_CIRCUITY_FACTOR", 1.3))
        / float(getattr(settings, "ROUTING_SPEED_KMH", 60.0))
        * 60.0,
        1,
    )

    ctx = engine.ReasonContext(product_names=bits.name_of_bit, amap_names=tour_names)
    names = list(scored.components)
    comp_cols = [np.round(scored.components[name], 4).tolist() for name in names]
    components = [
        "{" + ", ".join(f'"{name}": {values[i]}' for name, values in zip(names, comp_cols, strict=True)) + "}"
        for i in range(len(q))
    ]
    need = _need_for(d, kind, q)
    cols = {
        "products": need.products_mask.tolist(),
        "need_days": need.weekdays_mask.tolist(),
        "distance_m": table.distance_m.tolist(),
        "org_id": table.org_id.tolist(),
        "annonce_id": table.annonce_id.tolist(),
        "weekdays": table.weekdays.tolist(),
        "listed": table.product_mask.tolist(),
        "partnered": table.partnered_mask.tolist(),
        "declared": table.declared_mask.tolist(),
        "size": table.size.tolist(),
        "openness": table.openness.tolist(),
        "synergy_m": table.synergy_m.tolist(),
        "synergy_amap": table.synergy_amap.tolist(),
    }
    owner = d.ann_org[q].tolist()
    drive_list = drive.tolist()
    reasons = []
    for i in range(len(q)):
        ctx.annonce_amap_id = owner[i] if is_farm else None
        row_reasons = engine.reasons_from_values(
            kind=kind,
            products=cols["products"][i],
            need_days=cols["need_days"][i],
            distance_m=cols["distance_m"][i],
            org_id=cols["org_id"][i],
            annonce_id=cols["annonce_id"][i],
            weekdays=cols["weekdays"][i],
            listed=cols["listed"][i],
            partnered=cols["partnered"][i],
            declared=cols["declared"][i],
            size=cols["size"][i],
            openness=cols["openness"][i],
            synergy_m=cols["synergy_m"][i],
            synergy_amap=cols["synergy_amap"][i],
            ctx=ctx,
        )
        row_reasons[0] = (
            f"{row_reasons[0]}, {routing.describe(routing.DriveTime(drive_list[i], routing.SOURCE_ESTIMATE))}"
        )
        reasons.append(row_reasons)
    return BulkResult(
        annonce_id=d.ann_id[q],
        counterpart_is_farm=np.full(len(q), is_farm),
        counterpart_id=table.org_id,
        counterpart_annonce_id=table.annonce_id,
        rank=rank,
        score=np.round(scored.score, 4),
        distance_m=distance,
        drive_minutes=drive,
        components=components,
        reasons=reasons,
    )


def compute(*, k: int = 10, shortlist: int | None = None, annonce_ids: list[int] | None = None):
    """(BulkReport, [BulkResult]) for every live annonce (or those listed), nothing stored."""
    report = BulkReport()
    started = time.perf_counter()
    bits = product_bits()
    d = load_directory(product_ids=sorted(bits.bit_of))
    report.load_s = time.perf_counter() - started
    started = time.perf_counter()
    shortlist = shortlist or default_shortlist()
    selected = np.arange(len(d.ann_id))
    if annonce_ids is not None:
        selected = selected[np.isin(d.ann_id, np.asarray(annonce_ids, dtype=np.int64))]
    report.annonces = len(selected)
    tour_names = {}
    if len(d.tour_amap):
        tour_names = dict(Amap.objects.filter(pk__in=np.unique(d.tour_amap).tolist()).values_list("pk", "name"))
    results = []
    for kind, code, builder in (
        (engine.FARM_SEEKS_AMAP, 0, _farm_annonces),
        (engine.AMAP_SEEKS_FARM, 1, _amap_annonces),
    ):
        queries = selected[d.ann_kind[selected] == code]
        if queries.size == 0:
            continue
        q, p, points, table, saturated = builder(d, queries, k, shortlist)
        report.saturated += saturated
        if len(q) == 0:
            continue
        result = _finish(d, kind, q, p, points, table, k, bits, tour_names)
        if result is not None:
            results.append(result)
            report.matches += len(result.annonce_id)
    report.compute_s = time.perf_counter() - started
    return report, results


# --------------------------------------------------------------------------- storing

_COLUMNS = (
    "annonce_id",
    "amap_id",
    "farm_id",
    "counterpart_annonce_id",
    "rank",
    "score",
    "components",
    "reasons",
    "distance_m",
    "drive_minutes",
)


def store(results: list[BulkResult], *, annonce_ids: list[int], now=None) -> int:
    """Replace the stored matches of these annonces; keeps first_seen_at/notified_at of known pairs."""
    import json

    now = now or timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        # ON COMMIT DROP is not enough inside an outer transaction (tests): drop explicitly too.
        cursor.execute("DROP TABLE IF EXISTS tmp_match, tmp_annonce")
        cursor.execute(
            "CREATE TEMP TABLE tmp_match (annonce_id bigint, amap_id bigint, farm_id bigint, "
            "counterpart_annonce_id bigint, rank integer, score double precision, components jsonb, "
            "reasons jsonb, distance_m double precision, drive_minutes double precision) ON COMMIT DROP"
        )
        raw = cursor.cursor
        columns = sql.SQL(", ").join(sql.Identifier(name) for name in _COLUMNS)
        with raw.copy(sql.SQL("COPY tmp_match ({}) FROM STDIN").format(columns)) as copy:
            for result in results:
                rows = zip(
                    result.annonce_id.tolist(),
                    result.counterpart_is_farm.tolist(),
                    result.counterpart_id.tolist(),
                    result.counterpart_annonce_id.tolist(),
                    result.rank.tolist(),
                    result.score.tolist(),
                    result.components,
                    result.reasons,
                    result.distance_m.tolist(),
                    result.drive_minutes.tolist(),
                    strict=True,
                )
                for annonce_id, is_farm, org_id, other, rank, score, comps, reasons, dist, drive in rows:
                    copy.write_row(
                        (
                            annonce_id,
                            None if is_farm else org_id,
                            org_id if is_farm else None,
                            other or None,
                            rank,
                            score,
                            comps,
                            json.dumps(reasons, ensure_ascii=False),
                            dist,
                            drive,
                        )
                    )
        cursor.execute("CREATE TEMP TABLE tmp_annonce (id bigint PRIMARY KEY) ON COMMIT DROP")
        with raw.copy("COPY tmp_annonce (id) FROM STDIN") as copy:
            for annonce_id in annonce_ids:
                copy.write_row((annonce_id,))
        # Drop the pairs that are no longer matches, then upsert the others.
        cursor.execute(
            _compose(
                """
            DELETE FROM {match} m USING tmp_annonce t
            WHERE m.annonce_id = t.id AND NOT EXISTS (
                SELECT 1 FROM tmp_match n WHERE n.annonce_id = m.annonce_id
                AND n.amap_id IS NOT DISTINCT FROM m.amap_id AND n.farm_id IS NOT DISTINCT FROM m.farm_id)
            """
            )
        )
        for column in ("amap_id", "farm_id"):
            cursor.execute(
                _compose(
                    """
                INSERT INTO {match} ({columns}, computed_at, first_seen_at)
                SELECT {columns}, %s, %s FROM tmp_match WHERE {column} IS NOT NULL
                ON CONFLICT (annonce_id, {column}) WHERE {column} IS NOT NULL DO UPDATE SET
                    counterpart_annonce_id = EXCLUDED.counterpart_annonce_id, rank = EXCLUDED.rank,
                    score = EXCLUDED.score, components = EXCLUDED.components, reasons = EXCLUDED.reasons,
                    distance_m = EXCLUDED.distance_m, drive_minutes = EXCLUDED.drive_minutes,
                    computed_at = EXCLUDED.computed_at
                """,
                    columns=columns,
                    column=sql.Identifier(column),
                ),
                [now, now],
            )
        cursor.execute(_compose("SELECT count(*) FROM {match} m JOIN tmp_annonce t ON t.id = m.annonce_id"))
        stored = int(cursor.fetchone()[0])
        cursor.execute("DROP TABLE tmp_match, tmp_annonce")
        return stored


def match_all(*, k: int = 10, shortlist: int | None = None, annonce_ids: list[int] | None = None) -> BulkReport:
    """Compute and store the k best matches of every live annonce (or of those listed).

    Stored matches of annonces no longer live are removed.
    """
    report, results = compute(k=k, shortlist=shortlist, annonce_ids=annonce_ids)
    started = time.perf_counter()
    live = list(Annonce.objects.live().values_list("pk", flat=True))
    targets = live if annonce_ids is None else [pk for pk in live if pk in set(annonce_ids)]
    store(results, annonce_ids=targets)
    if annonce_ids is None:
        Match.objects.exclude(annonce_id__in=Annonce.objects.live().values("pk")).delete()
    report.store_s = time.perf_counter() - started
    return report
