"""Bulk matching: the k best counterparts of every open annonce, computed in memory, stored.

Per-row SQL (a LATERAL KNN per annonce) costs ~11 s for 100k farms; an in-memory KD-tree on
unit-sphere xyz answers the same nearest-neighbour question in ~0.2 s (QUALITY.md). So:

1. load the directory's active AMAPs, farms, partnerships and live annonces as numpy arrays
   (a few aggregate queries);
2. for each annonce, shortlist from `cKDTree`s the `shortlist` nearest candidate points within
   its radius (chord radius inflated by 1 %: the sphere is not the ellipsoid) — one tree per
   delivery day on the AMAP side, per product on the farm side, so that the shortlist holds
   points that can pass the weekday and product rules;
3. distances by an ellipsoidal local-plane formula (relative error < 2e-4 up to 300 km,
   measured against pyproj); pairs within 0.05 % of a radius are decided with the exact
   geodesic (pyproj), so who is within reach is exact;
4. score with `matching.engine.score_table` — the same rules and weights as the request path
   (tour synergy only for rows that could still reach the k best with it);
5. keep the k best per annonce, recompute their distances exactly, state the reasons, and
   replace the stored `Match` rows (first_seen_at and notified_at survive a recomputation).

Exactness: when fewer than `shortlist` points of a sub-index are within an annonce's reach,
its candidates are exactly those of the request path. Where more are (dense cities), only the
nearest are scored; `BulkReport.saturated` counts those annonces, and the benchmark reports
how often the stored top 10 equals the request path's (`matching.match_all_*_identical_top10_share`).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from json.encoder import encode_basestring  # C-accelerated, keeps non-ASCII as is

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
BOUNDARY_MARGIN = 0.0005  # pairs this close (relative) to a radius get the exact geodesic (approx error < 2e-4)
CHUNK = 20_000  # annonces per KD-tree query batch (bounds memory: CHUNK × shortlist pairs)
A_WGS84 = 6378137.0
E2_WGS84 = 0.00669437999014


def default_shortlist() -> int:
    return int(getattr(settings, "MATCH_BULK_SHORTLIST", 64))


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
    tour_xyz: np.ndarray
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
        tour_xyz=unit_xyz(_column(tours, 2, np.float64)[keep], _column(tours, 3, np.float64)[keep]),
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


TOUR_CHUNK = 4_000_000  # (point, delivery point) pairs per vectorised step


def _nearest_tour(d: Directory, farm_index: np.ndarray, lon: np.ndarray, lat: np.ndarray, *, exact: bool = False):
    """Distance from each (lon, lat) to the nearest delivery point of farm `farm_index`, and its AMAP id.

    Nearest by unit-sphere dot product; the distance is on the sphere, or the exact geodesic
    to that nearest point when `exact` (inf where the farm delivers nowhere yet).
    """
    n = len(farm_index)
    best = np.full(n, math.inf)
    best_amap = np.zeros(n, dtype=np.int64)
    if n == 0 or len(d.tour_amap) == 0:
        return best, best_amap
    counts = np.where(farm_index >= 0, d.tour_count[np.maximum(farm_index, 0)], 0)
    rows = np.flatnonzero(counts)
    if rows.size == 0:
        return best, best_amap
    xyz = unit_xyz(lon[rows], lat[rows])
    best_point = np.zeros(rows.size, dtype=np.int64)
    best_dot = np.zeros(rows.size)
    cumulative = np.cumsum(counts[rows])
    start_row = 0
    while start_row < rows.size:
        limit = (cumulative[start_row - 1] if start_row else 0) + TOUR_CHUNK
        end_row = max(start_row + 1, int(np.searchsorted(cumulative, limit, side="right")))
        part = np.arange(start_row, end_row)
        c = counts[rows[part]]
        total = int(c.sum())
        starts = np.cumsum(c) - c
        owner = np.repeat(part, c)
        point = d.tour_start[farm_index[rows[owner]]] + (np.arange(total) - np.repeat(starts, c))
        dot = np.einsum("ij,ij->i", xyz[owner], d.tour_xyz[point])
        top = np.maximum.reduceat(dot, starts)
        candidate = np.where(dot >= np.repeat(top, c), np.arange(total), total)
        chosen = np.minimum.reduceat(candidate, starts)
        best_dot[part] = top
        best_point[part] = point[chosen]
        start_row = end_row
    best_amap[rows] = d.tour_amap[best_point]
    if exact:
        best[rows] = geodesic_m(lon[rows], lat[rows], d.tour_lon[best_point], d.tour_lat[best_point])
    else:
        chord = np.sqrt(np.maximum(0.0, 2.0 - 2.0 * best_dot))
        best[rows] = 2.0 * EARTH_MEAN_RADIUS_M * np.arcsin(np.minimum(1.0, chord / 2.0))
    return best, best_amap


# --------------------------------------------------------------------------- candidate points


UNKNOWN_DAY_BIT = 7  # AMAP points whose delivery day is not known: searched by every farm annonce


@dataclass
class Points:
    """Candidate points of one side: directory entries followed by their owners' live annonces.

    Each point carries `keys`, a bit mask saying in which sub-index it is searched: its delivery
    days (AMAP side, UNKNOWN_DAY_BIT when not known) or its products (farm side). An annonce
    searches only the sub-indexes of its own days or products, so its shortlist holds points
    that can pass those rules instead of the nearest points of any kind.
    """

    org_id: np.ndarray
    org_index: np.ndarray  # index in the AMAP or farm arrays
    annonce_row: np.ndarray  # row in Directory.ann_* for an annonce point, -1 for a directory entry
    lon: np.ndarray
    lat: np.ndarray
    keys: np.ndarray
    xyz: np.ndarray
    subtrees: dict = field(default_factory=dict)

    def subtree(self, bit: int):
        """(member point indexes, KD-tree over them) for one key bit; built on first use."""
        if bit not in self.subtrees:
            members = np.flatnonzero((self.keys >> bit) & 1)
            self.subtrees[bit] = (members, cKDTree(self.xyz[members]) if members.size else None)
        return self.subtrees[bit]


def _points(d: Directory, *, side: str) -> Points:
    """AMAP points (for farm annonces) or farm points (for AMAP annonces), with the live annonces."""
    if side == "amap":
        ids, lon, lat, kind, keys = d.amap_id, d.amap_lon, d.amap_lat, 1, d.amap_days
    else:
        ids, lon, lat, kind, keys = d.farm_id, d.farm_lon, d.farm_lat, 0, d.farm_products
    rows = np.flatnonzero(d.ann_kind == kind)
    org_index = _index_of(ids, d.ann_org[rows])
    rows, org_index = rows[org_index >= 0], org_index[org_index >= 0]
    lon_all = np.concatenate((lon, d.ann_lon[rows]))
    lat_all = np.concatenate((lat, d.ann_lat[rows]))
    own_keys = d.ann_days[rows] if side == "amap" else d.ann_products[rows]
    keys_all = np.concatenate((keys, own_keys)).astype(np.int64)
    if side == "amap":
        keys_all = np.where(keys_all == 0, 1 << UNKNOWN_DAY_BIT, keys_all)
    return Points(
        org_id=np.concatenate((ids, d.ann_org[rows])).astype(np.int64),
        org_index=np.concatenate((np.arange(len(ids)), org_index)).astype(np.int64),
        annonce_row=np.concatenate((np.full(len(ids), -1), rows)).astype(np.int64),
        lon=lon_all,
        lat=lat_all,
        keys=keys_all,
        xyz=unit_xyz(lon_all, lat_all),
    )


def _query_keys(d: Directory, side: str, queries: np.ndarray) -> np.ndarray:
    """Which sub-indexes each annonce searches: its days (+ unknown days) or its products."""
    if side == "amap":
        days = d.ann_days[queries]
        return np.where(days == 0, engine.ALL_DAYS, days) | (1 << UNKNOWN_DAY_BIT)
    return d.ann_products[queries]


def _shortlist(points: Points, q_lon, q_lat, q_radius_m, q_keys, shortlist: int):
    """(query row, point index, approx distance, saturated count): per annonce and searched
    sub-index, the `shortlist` nearest points within the annonce's radius."""
    empty = np.zeros(0, dtype=np.int64)
    if len(points.lon) == 0 or len(q_lon) == 0:
        return empty, empty, np.zeros(0), 0
    xyz = unit_xyz(q_lon, q_lat)
    q_rows, p_rows = [empty], [empty]
    saturated = np.zeros(len(q_lon), dtype=bool)
    for bit in range(63):
        wanting = np.flatnonzero((q_keys >> bit) & 1)
        if wanting.size == 0:
            continue
        members, tree = points.subtree(bit)
        if tree is None:
            continue
        k = min(shortlist, tree.n)
        for radius in np.unique(q_radius_m[wanting]):
            group = wanting[q_radius_m[wanting] == radius]
            _dist, idx = tree.query(xyz[group], k=k, distance_upper_bound=chord_for_metres(float(radius)), workers=-1)
            idx = np.asarray(idx).reshape(len(group), k)
            found = idx < tree.n
            if k == shortlist:
                saturated[group[found[:, -1]]] = True
            r, c = np.nonzero(found)
            q_rows.append(group[r])
            p_rows.append(members[idx[r, c]])
    q_index = np.concatenate(q_rows).astype(np.int64)
    p_index = np.concatenate(p_rows).astype(np.int64)
    # A point in several searched sub-indexes (an AMAP delivering twice a week) counts once.
    _u, first = np.unique(q_index * len(points.lon) + p_index, return_index=True)
    q_index, p_index = q_index[first], p_index[first]
    distance = approx_distance_m(q_lon[q_index], q_lat[q_index], points.lon[p_index], points.lat[p_index])
    return q_index, p_index, distance, int(saturated.sum())


def _refine_boundary(distance, limits, q_lon, q_lat, p_lon, p_lat):
    """Exact geodesic where the approximate distance is too close to a limit to decide."""
    near = np.zeros(len(distance), dtype=bool)
    for limit in limits:
        limit = np.broadcast_to(np.asarray(limit, dtype=np.float64), distance.shape)
        finite = np.isfinite(limit)
        near[finite] |= np.abs(distance[finite] - limit[finite]) <= BOUNDARY_MARGIN * limit[finite]
    idx = np.flatnonzero(near)
    if idx.size:
        distance = distance.copy()
        distance[idx] = geodesic_m(q_lon[idx], q_lat[idx], p_lon[idx], p_lat[idx])
    return distance


def _first_k_per_query(q_index: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
    """`rows` (grouped by query, best first) cut to the first k of each query."""
    queries = q_index[rows]
    starts = np.r_[0, np.flatnonzero(np.diff(queries)) + 1]
    sizes = np.diff(np.r_[starts, len(rows)])
    position = np.arange(len(rows)) - np.repeat(starts, sizes)
    return rows[position < k]


def _top_k(q_index: np.ndarray, table: engine.CandidateTable, scored: engine.Scored, k: int) -> np.ndarray:
    """Row indexes: per query, the k best eligible rows, one per counterpart, best first.

    One float sort key (query block + score) instead of a five-key lexsort over millions of
    rows; the exact order (score, then distance, then id) is applied to the few rows kept.
    """
    rows = np.flatnonzero(scored.eligible)
    if rows.size == 0:
        return rows
    # Scores are in [0, 1]: query q's rows sort inside [2q - 1, 2q], best first.
    rows = rows[np.argsort(q_index[rows] * 2.0 - scored.score[rows])]
    # An organisation may appear twice (its directory entry and its own annonce): keep 2k per
    # query before removing duplicates, which leaves at least k distinct counterparts.
    rows = _first_k_per_query(q_index, rows, 2 * k)
    order = np.lexsort(
        (table.annonce_id[rows], table.org_id[rows], table.distance_m[rows], -scored.score[rows], q_index[rows])
    )
    rows = rows[order]
    key = q_index[rows] * (int(table.org_id.max()) + 1) + table.org_id[rows]
    _u, first = np.unique(key, return_index=True)
    rows = rows[np.sort(first)]
    return _first_k_per_query(q_index, rows, k)


def _kth_scores(q_index: np.ndarray, table, scored, k: int, n_queries: int) -> np.ndarray:
    """Per query, the k-th best score (one row per counterpart), -inf when fewer than k qualify."""
    kth = np.full(n_queries, -np.inf)
    top = _top_k(q_index, table, scored, k)
    if top.size == 0:
        return kth
    queries = q_index[top]
    ends = np.r_[np.flatnonzero(np.diff(queries)), len(top) - 1]
    starts = np.r_[0, ends[:-1] + 1]
    full = (ends - starts + 1) == k
    kth[queries[ends[full]]] = scored.score[top[ends[full]]]
    return kth


def _need_for(d: Directory, kind: str, q_index: np.ndarray) -> engine.Need:
    days = d.ann_days[q_index]
    return engine.Need(
        kind=kind,
        products_mask=d.ann_products[q_index],
        weekdays_mask=np.where(days == 0, engine.ALL_DAYS, days),  # no day named: any day suits
        radius_m=d.ann_radius_m[q_index],
        shares=d.ann_shares[q_index],
    )


def _candidate_table(
    d: Directory, kind: str, points: Points, q: np.ndarray, p: np.ndarray, distance
) -> engine.CandidateTable:
    """The engine's candidate table for (annonce row, point) pairs, tour synergy not yet filled in."""
    ann = points.annonce_row[p]
    own = ann >= 0
    own_row = np.maximum(ann, 0)
    own_days = d.ann_days[own_row]
    own_shares = d.ann_shares[own_row]
    org = points.org_index[p]
    n = len(p)
    if kind == engine.FARM_SEEKS_AMAP:
        return engine.CandidateTable(
            org_id=points.org_id[p],
            annonce_id=np.where(own, d.ann_id[own_row], 0),
            distance_m=distance,
            reach_m=np.where(own, d.ann_radius_m[own_row], math.inf),
            weekdays=np.where(own, own_days, d.amap_days[org]),
            product_mask=d.amap_listed[org],
            partnered_mask=d.amap_partnered[org],
            declared_mask=np.where(own, d.ann_products[own_row], 0),
            size=np.where(own, own_shares, d.amap_members[org]),
            openness=np.where(own, 1.0, d.amap_openness[org]),
            synergy_m=np.full(n, math.inf),
            synergy_amap=np.zeros(n, dtype=np.int64),
        )
    offered = np.where(own, d.ann_products[own_row], d.farm_products[org])
    return engine.CandidateTable(
        org_id=points.org_id[p],
        annonce_id=np.where(own, d.ann_id[own_row], 0),
        distance_m=distance,
        reach_m=np.where(own, d.ann_radius_m[own_row], d.farm_radius_m[org]),
        weekdays=np.where(own, np.where(own_days == 0, engine.ALL_DAYS, own_days), 0),
        product_mask=offered,
        partnered_mask=_pair_products(d, d.ann_org[q], points.org_id[p]),
        declared_mask=np.where(own, offered, 0),
        size=np.where(own & ~np.isnan(own_shares), own_shares, d.farm_capacity[org]),
        openness=np.full(n, math.nan),
        synergy_m=np.full(n, math.inf),
        synergy_amap=np.zeros(n, dtype=np.int64),
    )


def _fill_synergy(d: Directory, kind: str, points: Points, q, p, table, *, exact: bool) -> None:
    if kind == engine.FARM_SEEKS_AMAP:
        # From the candidate AMAP to the annonce's farm's delivery points.
        farm_index = _index_of(d.farm_id, d.ann_org[q])
        table.synergy_m, table.synergy_amap = _nearest_tour(d, farm_index, points.lon[p], points.lat[p], exact=exact)
    else:
        # From the asking AMAP's place to the candidate farm's delivery points.
        farm_index = points.org_index[p]
        table.synergy_m, table.synergy_amap = _nearest_tour(d, farm_index, d.ann_lon[q], d.ann_lat[q], exact=exact)


@dataclass
class BulkReport:
    annonces: int = 0
    matches: int = 0
    pairs: int = 0  # (annonce, point) pairs scored
    saturated: int = 0  # annonces whose shortlist was full (more points within reach than scored)
    load_s: float = 0.0
    compute_s: float = 0.0
    store_s: float = 0.0
    store_timings: dict = field(default_factory=dict)

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
    components: dict[str, np.ndarray]  # component name → values (rounded)
    reasons: list[str]  # JSON arrays of French sentences


def _select(d: Directory, kind: str, points: Points, queries: np.ndarray, k: int, shortlist: int, report):
    """(q, p, table) of the k best pairs of these annonces, scored with exact distances."""
    side = "amap" if kind == engine.FARM_SEEKS_AMAP else "farm"
    local_q, p, distance, saturated = _shortlist(
        points,
        d.ann_lon[queries],
        d.ann_lat[queries],
        d.ann_radius_m[queries],
        _query_keys(d, side, queries),
        shortlist,
    )
    report.saturated += saturated
    report.pairs += len(p)
    q = queries[local_q]
    if len(q) == 0:
        return None
    reach = np.where(
        points.annonce_row[p] >= 0,
        d.ann_radius_m[np.maximum(points.annonce_row[p], 0)],
        d.farm_radius_m[points.org_index[p]] if kind == engine.AMAP_SEEKS_FARM else math.inf,
    )
    distance = _refine_boundary(
        distance, (d.ann_radius_m[q], reach), d.ann_lon[q], d.ann_lat[q], points.lon[p], points.lat[p]
    )
    table = _candidate_table(d, kind, points, q, p, distance)
    scored = engine.score_table(_need_for(d, kind, q), table)
    # Tour synergy adds at most its weight: only rows that could still reach a query's k best
    # (counting synergy as full) need it computed.
    kth = _kth_scores(local_q, table, scored, k, len(queries))
    keep = np.flatnonzero(scored.eligible & (scored.score + engine.WEIGHTS["tour_synergy"] >= kth[local_q]))
    q, p, local_q, table = q[keep], p[keep], local_q[keep], table.take(keep)
    _fill_synergy(d, kind, points, q, p, table, exact=False)
    scored = engine.score_table(_need_for(d, kind, q), table)
    top = _top_k(local_q, table, scored, k)
    if top.size == 0:
        return None
    q, p, table = q[top], p[top], table.take(top)
    # Exact distances for the rows kept, then the same score again on them.
    table.distance_m = geodesic_m(d.ann_lon[q], d.ann_lat[q], points.lon[p], points.lat[p])
    _fill_synergy(d, kind, points, q, p, table, exact=True)
    return q, p, table


def _finish(d: Directory, kind: str, q, table, bits, tour_names, cache: dict) -> BulkResult | None:
    need = _need_for(d, kind, q)
    scored = engine.score_table(need, table)
    keep = np.flatnonzero(scored.eligible)
    order = keep[np.lexsort((table.org_id[keep], table.distance_m[keep], -scored.score[keep], q[keep]))]
    if order.size == 0:
        return None
    q = q[order]
    table = table.take(order)
    score = scored.score[order]
    components = {name: values[order] for name, values in scored.components.items()}
    starts = np.r_[0, np.flatnonzero(np.diff(q)) + 1]
    sizes = np.diff(np.r_[starts, len(q)])
    rank = np.arange(len(q)) - np.repeat(starts, sizes) + 1

    is_farm = kind == engine.AMAP_SEEKS_FARM
    # A farm's exact point is private: distances to farms are kept to 100 m.
    distance = np.round(table.distance_m, -2) if is_farm else np.round(table.distance_m, 1)
    circuity = float(getattr(settings, "ROUTING_CIRCUITY_FACTOR", 1.3))
    speed = float(getattr(settings, "ROUTING_SPEED_KMH", 60.0))
    drive = np.round(distance / 1000.0 * circuity / speed * 60.0, 1)

    need = _need_for(d, kind, q)
    ctx = engine.ReasonContext(product_names=bits.name_of_bit, amap_names=tour_names, cache=cache)
    rows = zip(
        need.products_mask.tolist(),
        need.weekdays_mask.tolist(),
        table.distance_m.tolist(),
        table.org_id.tolist(),
        table.annonce_id.tolist(),
        table.weekdays.tolist(),
        table.product_mask.tolist(),
        table.partnered_mask.tolist(),
        table.declared_mask.tolist(),
        table.size.tolist(),
        table.openness.tolist(),
        table.synergy_m.tolist(),
        table.synergy_amap.tolist(),
        d.ann_org[q].tolist(),
        drive.tolist(),
        strict=True,
    )
    reasons = []
    for (
        products,
        need_days,
        dist,
        org,
        ann,
        days,
        listed,
        partnered,
        declared,
        size,
        openness,
        syn,
        syn_amap,
        owner,
        minutes,
    ) in rows:
        ctx.annonce_amap_id = owner if is_farm else None
        row_reasons = engine.reasons_from_values(
            kind=kind,
            products=products,
            need_days=need_days,
            distance_m=dist,
            org_id=org,
            annonce_id=ann,
            weekdays=days,
            listed=listed,
            partnered=partnered,
            declared=declared,
            size=size,
            openness=openness,
            synergy_m=syn,
            synergy_amap=syn_amap,
            ctx=ctx,
        )
        drive_text = routing.describe(routing.DriveTime(minutes, routing.SOURCE_ESTIMATE), cache)
        row_reasons[0] = f"{row_reasons[0]}, {drive_text}"
        reasons.append("[" + ", ".join(map(encode_basestring, row_reasons)) + "]")
    return BulkResult(
        annonce_id=d.ann_id[q],
        counterpart_is_farm=np.full(len(q), is_farm),
        counterpart_id=table.org_id,
        counterpart_annonce_id=table.annonce_id,
        rank=rank,
        score=np.round(score, 4),
        distance_m=distance,
        drive_minutes=drive,
        components={name: np.round(values, 4) for name, values in components.items()},
        reasons=reasons,
    )


def compute_iter(*, report: BulkReport, k: int = 10, shortlist: int | None = None, annonce_ids=None):
    """Read the directory now, then return a generator of BulkResults (one per chunk); fills `report`.

    Every query happens here, before the first result: a caller may stream the results into
    a COPY on the same connection while the next chunk is computed.
    """
    started = time.perf_counter()
    bits = product_bits()
    d = load_directory(product_ids=sorted(bits.bit_of))
    tour_names = {}
    if len(d.tour_amap):
        tour_names = dict(Amap.objects.filter(pk__in=np.unique(d.tour_amap).tolist()).values_list("pk", "name"))
    report.load_s = time.perf_counter() - started
    shortlist = shortlist or default_shortlist()
    selected = np.arange(len(d.ann_id))
    if annonce_ids is not None:
        selected = selected[np.isin(d.ann_id, np.asarray(annonce_ids, dtype=np.int64))]
    report.annonces = len(selected)

    def chunks():
        cache: dict = {}
        for kind, code, side in ((engine.FARM_SEEKS_AMAP, 0, "amap"), (engine.AMAP_SEEKS_FARM, 1, "farm")):
            queries = selected[d.ann_kind[selected] == code]
            if queries.size == 0:
                continue
            started = time.perf_counter()
            points = _points(d, side=side)
            report.compute_s += time.perf_counter() - started
            for start in range(0, len(queries), CHUNK):
                started = time.perf_counter()
                chosen = _select(d, kind, points, queries[start : start + CHUNK], k, shortlist, report)
                result = None
                if chosen is not None:
                    q, _p, table = chosen
                    result = _finish(d, kind, q, table, bits, tour_names, cache)
                report.compute_s += time.perf_counter() - started
                if result is not None:
                    report.matches += len(result.annonce_id)
                    yield result

    return chunks()


def compute(*, k: int = 10, shortlist: int | None = None, annonce_ids: list[int] | None = None):
    """(BulkReport, [BulkResult]) for every live annonce (or those listed), nothing stored."""
    report = BulkReport()
    results = list(compute_iter(report=report, k=k, shortlist=shortlist, annonce_ids=annonce_ids))
    return report, results


# --------------------------------------------------------------------------- storing

_COMPONENTS = tuple(engine.WEIGHTS)
# Each match goes through COPY's binary format: its numbers as fixed-width fields built by
# numpy in one piece, then its reasons (jsonb, version byte 1 + JSON text) as the last field.
_NUMBER_COLUMNS = (
    ("annonce_id", "bigint", ">i8"),
    ("counterpart_id", "bigint", ">i8"),
    ("is_farm", "bigint", ">i8"),
    ("counterpart_annonce_id", "bigint", ">i8"),
    ("rank", "bigint", ">i8"),
    ("score", "double precision", ">f8"),
    *((f"c_{name}", "double precision", ">f8") for name in _COMPONENTS),
    ("distance_m", "double precision", ">f8"),
    ("drive_minutes", "double precision", ">f8"),
)
_PGCOPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + np.array([0, 0], dtype=">i4").tobytes()
_PGCOPY_TRAILER = np.array([-1], dtype=">i2").tobytes()


def _binary_rows(result: BulkResult) -> bytes:
    """The rows as COPY binary tuples: numbers (fixed width, no NULLs), then the reasons."""
    n = len(result.annonce_id)
    fields = [("count", ">i2")]
    for name, _sql_type, dtype in _NUMBER_COLUMNS:
        fields += [(f"{name}_len", ">i4"), (name, dtype)]
    fields.append(("reasons_len", ">i4"))
    rows = np.zeros(n, dtype=fields)
    rows["count"] = len(_NUMBER_COLUMNS) + 1
    values = {
        "annonce_id": result.annonce_id,
        "counterpart_id": result.counterpart_id,
        "is_farm": result.counterpart_is_farm.astype(np.int64),
        "counterpart_annonce_id": result.counterpart_annonce_id,
        "rank": result.rank,
        "score": result.score,
        **{f"c_{name}": result.components[name] for name in _COMPONENTS},
        "distance_m": result.distance_m,
        "drive_minutes": result.drive_minutes,
    }
    for name, _sql_type, _dtype in _NUMBER_COLUMNS:
        rows[f"{name}_len"] = 8
        rows[name] = values[name]
    reasons = [b"\x01" + text.encode() for text in result.reasons]  # jsonb binary = version 1 + text
    rows["reasons_len"] = [len(r) for r in reasons]
    width = rows.dtype.itemsize
    fixed = rows.tobytes()
    return b"".join(piece for i, text in enumerate(reasons) for piece in (fixed[i * width : (i + 1) * width], text))


def store(results, *, annonce_ids: list[int], now=None, timings: dict | None = None) -> int:
    """Replace the stored matches of these annonces; pairs already known keep first_seen_at and notified_at.

    `results` may be a generator (`compute_iter`): rows are streamed into one COPY while the
    next chunk is computed, so PostgreSQL parses them on the other core in the meantime.
    """
    now = now or timezone.now()
    timings = {} if timings is None else timings
    clock = [time.perf_counter()]

    def lap(name: str) -> None:
        timings[name] = time.perf_counter() - clock[0]
        clock[0] = time.perf_counter()

    components = sql.SQL(", ").join(
        sql.SQL("{}, {}").format(sql.Literal(name), sql.Identifier(f"c_{name}")) for name in _COMPONENTS
    )
    columns = sql.SQL(", ").join(
        [sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(sql_type)) for name, sql_type, _dtype in _NUMBER_COLUMNS]
        + [sql.SQL("reasons jsonb")]
    )
    with transaction.atomic(), connection.cursor() as cursor:
        # The joins below hash ~1M rows: in memory rather than in batches spilled to disk, and
        # without JIT-compiling expressions (compiling costs more than it saves here).
        cursor.execute("SET LOCAL work_mem = '64MB'")
        cursor.execute("SET LOCAL jit = off")
        # ON COMMIT DROP is not enough inside an outer transaction (tests): dropped explicitly too.
        cursor.execute("DROP TABLE IF EXISTS tmp_match, tmp_annonce, tmp_seen")
        cursor.execute(sql.SQL("CREATE TEMP TABLE tmp_match ({}) ON COMMIT DROP").format(columns))
        cursor.execute("CREATE TEMP TABLE tmp_annonce (id bigint PRIMARY KEY) ON COMMIT DROP")
        raw = cursor.cursor
        with raw.copy("COPY tmp_annonce (id) FROM STDIN") as copy:
            copy.write("".join(f"{pk}\n" for pk in annonce_ids))
        lap("prepare")
        with raw.copy("COPY tmp_match FROM STDIN WITH (FORMAT BINARY)") as copy:
            copy.write(_PGCOPY_HEADER)
            for result in results:
                copy.write(_binary_rows(result))
            copy.write(_PGCOPY_TRAILER)
        lap("compute_and_copy")
        for table in ("tmp_match", "tmp_annonce"):
            cursor.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table)))
        # What was already announced stays announced: carry first_seen_at and notified_at over,
        # then replace every stored match of these annonces in one go.
        cursor.execute(
            _compose(
                """
                CREATE TEMP TABLE tmp_seen ON COMMIT DROP AS
                SELECT m.annonce_id, COALESCE(m.amap_id, m.farm_id) AS counterpart_id,
                       m.farm_id IS NOT NULL AS is_farm, m.first_seen_at, m.notified_at
                FROM {match} m JOIN tmp_annonce t ON t.id = m.annonce_id
                """
            )
        )
        cursor.execute("ANALYZE tmp_seen")
        lap("seen")
        cursor.execute(_compose("DELETE FROM {match} m USING tmp_annonce t WHERE m.annonce_id = t.id"))
        lap("delete")
        cursor.execute(
            _compose(
                """
                INSERT INTO {match} (annonce_id, amap_id, farm_id, counterpart_annonce_id, rank, score,
                    components, reasons, distance_m, drive_minutes, computed_at, first_seen_at, notified_at)
                SELECT n.annonce_id, a.id, f.id, NULLIF(n.counterpart_annonce_id, 0), n.rank, n.score,
                    jsonb_build_object({components}), n.reasons, n.distance_m, n.drive_minutes, %s,
                    COALESCE(s.first_seen_at, %s), s.notified_at
                FROM tmp_match n
                -- No foreign keys on this derived table: never store a row whose objects are gone.
                JOIN {annonce} x ON x.id = n.annonce_id
                LEFT JOIN {amap} a ON n.is_farm = 0 AND a.id = n.counterpart_id
                LEFT JOIN {farm} f ON n.is_farm = 1 AND f.id = n.counterpart_id
                LEFT JOIN tmp_seen s ON s.annonce_id = n.annonce_id AND s.counterpart_id = n.counterpart_id
                    AND s.is_farm = (n.is_farm = 1)
                WHERE a.id IS NOT NULL OR f.id IS NOT NULL
                """,
                components=components,
            ),
            [now, now],
        )
        stored = cursor.rowcount
        lap("insert")
        cursor.execute("DROP TABLE tmp_match, tmp_annonce, tmp_seen")
    lap("commit")
    return stored


def match_all(*, k: int = 10, shortlist: int | None = None, annonce_ids: list[int] | None = None) -> BulkReport:
    """Compute and store the k best matches of every live annonce (or of those listed).

    Stored matches of annonces no longer live are removed. `report.compute_s` is the time
    spent computing; `report.store_s` the rest of the writing (the COPY overlaps the compute).
    """
    report = BulkReport()
    started = time.perf_counter()
    live = list(Annonce.objects.live().values_list("pk", flat=True))
    targets = live if annonce_ids is None else [pk for pk in live if pk in set(annonce_ids)]
    results = compute_iter(report=report, k=k, shortlist=shortlist, annonce_ids=annonce_ids)
    store(results, annonce_ids=targets, timings=report.store_timings)
    if annonce_ids is None:
        Match.objects.exclude(annonce_id__in=Annonce.objects.live().values("pk")).delete()
    report.store_s = time.perf_counter() - started - report.load_s - report.compute_s
    return report
