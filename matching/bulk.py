"""Bulk matching: the k best counterparts of every open annonce, computed in memory, stored.

Per-row SQL (a LATERAL KNN per annonce) costs ~11 s for 100k farms; an in-memory KD-tree on
unit-sphere xyz answers the same nearest-neighbour question in ~0.2 s (QUALITY.md). So:

1. load the directory's active AMAPs, farms, partnerships and live annonces as numpy arrays
   (a few queries);
2. candidate points live in sub-indexes (`cKDTree`s): on the AMAP side one per delivery day
   and product the AMAP lacks a partner for, on the farm side one per product, so that an
   annonce only meets points that pass its weekday and product rules;
3. first pass: per annonce and searched sub-index, the `shortlist` nearest points within its
   radius (chord radius inflated by 1 %: the sphere is not the ellipsoid), scored with
   `matching.engine.score_table` — the same rules, weights and score as the request path.
   Its k-th best score is a lower bound of the annonce's true k-th score;
4. widening, only where a sub-index held more points: a point's score is at most its distance
   part plus `engine.bound_without_distance` plus tour synergy, and synergy is non-zero only
   near the farm's delivery points. Every point that could still reach the bound — within
   the distance that bound allows around the annonce, or near a delivery point — is added
   (KD-tree ball queries); none of the others can enter the k best. So the candidates that
   matter are exactly those of the request path;
5. distances by an ellipsoidal local-plane formula (relative error < 2e-4 up to 300 km,
   measured against pyproj), pairs within 0.05 % of a radius decided with the exact geodesic;
   the rows within SCORE_MARGIN of the k-th score get exact geodesic distances and synergy,
   are scored again, and the k best are kept: the stored top k is the request path's top k
   (same counterparts, same order, same reasons; `tests/matching/test_reference.py`);
6. the reasons are worded once per distinct sentence, and the stored `Match` rows replaced
   (first_seen_at and notified_at survive a recomputation).

`shortlist` only trades the first pass against the widening: the result does not depend on it.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from dataclasses import dataclass, field
from json.encoder import encode_basestring  # C-accelerated, keeps non-ASCII as is

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef
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
CHUNK = 20_000  # annonces per KD-tree query batch (bounds memory)
# Approximate distances (local-plane formula, relative error < 2e-4 up to 300 km) and sphere
# synergy distances (< 0.6 % off, within the 15 km radius) move a score by less than
# 0.3 × 2e-4 × 300 km × ln 2 / 20 km + 0.15 × 0.006 ≈ 1.5e-3: every comparison of an
# approximate score with a k-th score keeps this margin, twice that error.
SCORE_MARGIN = 0.005
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


def chords_for_metres(metres: np.ndarray) -> np.ndarray:
    """`chord_for_metres` on an array."""
    angle = np.minimum(math.pi, np.asarray(metres, dtype=np.float64) * SPHERE_MARGIN / EARTH_MEAN_RADIUS_M)
    return 2.0 * np.sin(angle / 2.0)


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
    tour_trees: dict = field(default_factory=dict)  # farm index → KD-tree of its delivery points (built on use)


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
    # Grouped here rather than by a GROUP BY on the computed key: on a freshly loaded database
    # PostgreSQL misestimated the groups and its hash aggregate spilled for minutes.
    links = _rows(
        _compose(
            """
            SELECT p.amap_id, p.farm_id, array_position(%s::bigint[], p.product_id::bigint) - 1
            FROM {partnership} p WHERE p.is_active
            """
        ),
        [product_ids],
    )
    pair_key, pair_mask = _group_pairs(links)
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
        farm_radius_m=_column(farms, 3, np.float64, math.nan) * 1000.0,  # nan: never stated
        farm_capacity=_column(farms, 4, np.float64, math.nan),
        farm_products=_column(farms, 5, np.int64),
        pair_key=pair_key,
        pair_mask=pair_mask,
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


def _group_pairs(links: list[tuple]) -> tuple[np.ndarray, np.ndarray]:
    """(amap_id << 32 | farm_id) keys, sorted, and the product mask of each pair's active links."""
    if not links:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    rows = np.array([(a, f, -1 if b is None else b) for a, f, b in links], dtype=np.int64)
    keys = (rows[:, 0] << 32) | rows[:, 1]
    bits = np.where(rows[:, 2] >= 0, np.left_shift(1, np.maximum(rows[:, 2], 0)), 0)
    order = np.argsort(keys, kind="stable")
    keys, bits = keys[order], bits[order]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    return keys[starts], np.bitwise_or.reduceat(bits, starts)


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
TOUR_RINGS = np.linspace(0.0, 1.0, 9)  # rings around a delivery point, as fractions of the synergy radius
HEAVY_TOUR = 32  # delivery points from which a farm's nearest one is found with a KD-tree
TOUR_TIE = 0.015  # sphere distances this close (relative) may swap order on the ellipsoid (< 2 × 0.6 %)


def _tour_chunks(d: Directory, farm_index: np.ndarray, rows: np.ndarray, counts: np.ndarray):
    """Expand rows × their farm's delivery points in chunks: (part, owner, point, starts, sizes)."""
    cumulative = np.cumsum(counts[rows])
    start_row = 0
    while start_row < rows.size:
        limit = (cumulative[start_row - 1] if start_row else 0) + TOUR_CHUNK
        end_row = max(start_row + 1, int(np.searchsorted(cumulative, limit, side="right")))
        part = np.arange(start_row, end_row)
        sizes = counts[rows[part]]
        total = int(sizes.sum())
        starts = np.cumsum(sizes) - sizes
        owner = np.repeat(part, sizes)
        point = d.tour_start[farm_index[rows[owner]]] + (np.arange(total) - np.repeat(starts, sizes))
        yield part, owner, point, starts, sizes
        start_row = end_row


def _sphere_m(dot: np.ndarray) -> np.ndarray:
    chord = np.sqrt(np.maximum(0.0, 2.0 - 2.0 * dot))
    return 2.0 * EARTH_MEAN_RADIUS_M * np.arcsin(np.minimum(1.0, chord / 2.0))


def _nearest_tour(d: Directory, farm_index: np.ndarray, lon: np.ndarray, lat: np.ndarray, *, exact: bool = False):
    """Distance from each (lon, lat) to the nearest delivery point of farm `farm_index`, and its AMAP id.

    Nearest on the sphere (unit-vector dot product), distances on the sphere; with `exact`, the
    geodesic minimum like the request path: every delivery point whose sphere distance is within
    TOUR_TIE of the nearest is measured exactly, ties going to the lowest AMAP id (inf where the
    farm delivers nowhere yet; beyond the synergy radius, where synergy is 0, the sphere distance).
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
    # Farms delivering to many AMAPs: a KD-tree of their delivery points, not every pair.
    heavy = counts[rows] >= HEAVY_TOUR
    light = np.flatnonzero(~heavy)
    # The others by their number of delivery points c: an (n, c) block of dot products at a time.
    light_counts = counts[rows[light]]
    for c in np.unique(light_counts).tolist():
        same = light[light_counts == c]
        for start in range(0, len(same), max(1, TOUR_CHUNK // c)):
            part = same[start : start + max(1, TOUR_CHUNK // c)]
            first = d.tour_start[farm_index[rows[part]]]
            dots = np.einsum("nj,ncj->nc", xyz[part], d.tour_xyz[first[:, None] + np.arange(c)])
            nearest = np.argmax(dots, axis=1)  # the first of equals: the lowest index, as before
            best_dot[part] = dots[np.arange(len(part)), nearest]
            best_point[part] = first + nearest
    heavy = np.flatnonzero(heavy)
    heavy = heavy[np.argsort(farm_index[rows[heavy]], kind="stable")]
    farms, starts = np.unique(farm_index[rows[heavy]], return_index=True)
    for farm, part in zip(farms.tolist(), np.split(heavy, starts[1:]) if heavy.size else [], strict=True):
        tree = d.tour_trees.get(farm)
        if tree is None:
            first = d.tour_start[farm]
            tree = d.tour_trees[farm] = cKDTree(d.tour_xyz[first : first + d.tour_count[farm]])
        chord, index = tree.query(xyz[part], k=1)
        best_dot[part] = 1.0 - chord * chord / 2.0
        best_point[part] = d.tour_start[farm] + index
    best[rows] = _sphere_m(best_dot)
    best_amap[rows] = d.tour_amap[best_point]
    if not exact:
        return best, best_amap
    near = np.flatnonzero(best[rows] <= synergy_limit_m())
    if near.size == 0:
        return best, best_amap
    sub_rows = rows[near]
    pair_row, pair_point = [], []
    for _part, owner, point, _starts, _sizes in _tour_chunks(d, farm_index, sub_rows, counts):
        dot = np.einsum("ij,ij->i", xyz[near[owner]], d.tour_xyz[point])
        close = _sphere_m(dot) <= best[sub_rows[owner]] * (1.0 + TOUR_TIE) + 1.0
        pair_row.append(owner[close])
        pair_point.append(point[close])
    owner = np.concatenate(pair_row)
    point = np.concatenate(pair_point)
    dist = geodesic_m(lon[sub_rows[owner]], lat[sub_rows[owner]], d.tour_lon[point], d.tour_lat[point])
    order = np.lexsort((d.tour_amap[point], dist, owner))
    owner, point, dist = owner[order], point[order], dist[order]
    first = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
    best[sub_rows[owner[first]]] = dist[first]
    best_amap[sub_rows[owner[first]]] = d.tour_amap[point[first]]
    return best, best_amap


def synergy_limit_m() -> float:
    """Beyond this sphere distance a delivery point is surely outside the synergy radius."""
    return engine.synergy_radius_m() * SPHERE_MARGIN * 1.01


# --------------------------------------------------------------------------- candidate points


UNKNOWN_DAY_BIT = 7  # AMAP points whose delivery day is not known: searched by every farm annonce
NO_KEY = 63  # second-level key of a sub-index that has none (farm side)


@dataclass
class Points:
    """Candidate points of one side: directory entries followed by their owners' live annonces.

    Sub-indexes: on the AMAP side one per (delivery day, product the AMAP lacks a partner for
    — or, for its annonce, asks for); on the farm side one per product. `keys` and `keys2` are
    the bit masks of a point's days (UNKNOWN_DAY_BIT when not known) and products (AMAP side),
    or of its products (farm side, `keys2` None). An annonce searches only the sub-indexes of
    its own days and products, so what it examines passes the weekday and product rules.
    Each point also carries `bound`: the most its score can be without the distance part
    (`engine.bound_without_distance`), which proves when unexamined points cannot matter.
    """

    org_id: np.ndarray
    org_index: np.ndarray  # index in the AMAP or farm arrays
    annonce_row: np.ndarray  # row in Directory.ann_* for an annonce point, -1 for a directory entry
    lon: np.ndarray
    lat: np.ndarray
    keys: np.ndarray
    keys2: np.ndarray | None
    xyz: np.ndarray
    bound: np.ndarray
    subtrees: dict = field(default_factory=dict)
    tiers: dict = field(default_factory=dict)

    def subtree(self, key: int):
        """(member point indexes, KD-tree over them) for one sub-index (see `_searches`); built on first use."""
        if key not in self.subtrees:
            bit, bit2 = divmod(key, 64)
            inside = (self.keys >> bit) & 1
            if bit2 != NO_KEY:
                inside &= (self.keys2 >> bit2) & 1
            members = np.flatnonzero(inside)
            self.subtrees[key] = (members, cKDTree(self.xyz[members]) if members.size else None)
        return self.subtrees[key]

    def subtree_tiers(self, key: int) -> list[tuple[float, np.ndarray, cKDTree]]:
        """One sub-index split by `bound` (a few distinct values): [(bound, members, KD-tree)], highest first.

        Widening searches each tier only as far as its own bound requires.
        """
        if key not in self.tiers:
            members, _tree = self.subtree(key)
            levels = np.round(self.bound[members], 9)
            tiers = []
            for level in np.unique(levels)[::-1]:
                part = members[levels == level]
                tiers.append((float(self.bound[part].max()), part, cKDTree(self.xyz[part])))
            self.tiers[key] = tiers
        return self.tiers[key]


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
    is_annonce = np.concatenate((np.zeros(len(ids), dtype=bool), np.ones(len(rows), dtype=bool)))
    all_index = np.concatenate((np.arange(len(ids)), org_index)).astype(np.int64)
    # The same columns `_candidate_table` gives the engine, for the bound.
    if side == "amap":
        bound = engine.bound_without_distance(
            engine.FARM_SEEKS_AMAP,
            is_annonce=is_annonce,
            weekdays=keys_all,
            size=np.concatenate((d.amap_members, d.ann_shares[rows])),
            openness=np.concatenate((d.amap_openness, np.ones(len(rows)))),
            synergy=0.0,  # points near the annonce's farm's delivery points are searched apart
        )
        keys_all = np.where(keys_all == 0, 1 << UNKNOWN_DAY_BIT, keys_all)
    else:
        shares = d.ann_shares[rows]
        bound = engine.bound_without_distance(
            engine.AMAP_SEEKS_FARM,
            is_annonce=is_annonce,
            weekdays=is_annonce.astype(np.int64),  # a farm annonce always has days (any day when none named)
            size=np.concatenate((d.farm_capacity, np.where(np.isnan(shares), d.farm_capacity[org_index], shares))),
            openness=np.full(len(is_annonce), math.nan),
            synergy=d.tour_count[all_index] > 0,  # a farm delivering nowhere yet has no tour synergy
        )
    return Points(
        org_id=np.concatenate((ids, d.ann_org[rows])).astype(np.int64),
        org_index=all_index,
        annonce_row=np.concatenate((np.full(len(ids), -1), rows)).astype(np.int64),
        lon=lon_all,
        lat=lat_all,
        keys=keys_all,
        # AMAP side: the products it lacks a partner for (its annonce: the products it asks for).
        keys2=np.concatenate((~d.amap_partnered, d.ann_products[rows])) if side == "amap" else None,
        xyz=unit_xyz(lon_all, lat_all),
        bound=bound,
    )


def _query_keys(d: Directory, side: str, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Which sub-indexes each annonce searches: its days (+ unknown days) × its products, or its products."""
    if side == "amap":
        days = d.ann_days[queries]
        return np.where(days == 0, engine.ALL_DAYS, days) | (1 << UNKNOWN_DAY_BIT), d.ann_products[queries]
    return d.ann_products[queries], None


def _searches(q_keys: tuple[np.ndarray, np.ndarray | None]):
    """(sub-index key, query rows searching it) for every sub-index some query searches."""
    first, second = q_keys
    for bit in range(63):
        on = ((first >> bit) & 1).astype(bool)
        if not on.any():
            continue
        if second is None:
            yield bit * 64 + NO_KEY, np.flatnonzero(on)
            continue
        for bit2 in range(63):
            wanting = np.flatnonzero(on & ((second >> bit2) & 1).astype(bool))
            if wanting.size:
                yield bit * 64 + bit2, wanting


def _arc_lower_m(chord: np.ndarray) -> np.ndarray:
    """A lower bound of the geodesic metres between points this chord apart on the unit sphere."""
    angle = 2.0 * np.arcsin(np.minimum(1.0, chord / 2.0))
    return angle * EARTH_MEAN_RADIUS_M / SPHERE_MARGIN


@dataclass
class Open:
    """(annonce, sub-index) searches whose first pass was full: points beyond it were not examined."""

    q: np.ndarray  # local query row
    key: np.ndarray  # sub-index
    beyond_m: np.ndarray  # every unexamined point of that sub-index is at least this far (geodesic)


def _nearest_pass(points: Points, xyz, q_radius_m, q_keys, first: int):
    """(query row, point index, Open): per annonce and searched sub-index, the `first` nearest
    points within the annonce's radius."""
    empty = np.zeros(0, dtype=np.int64)
    q_rows, p_rows = [empty], [empty]
    open_q, open_key, open_beyond = [empty], [empty], [np.zeros(0)]
    for key, wanting in _searches(q_keys):
        members, tree = points.subtree(key)
        if tree is None:
            continue
        k = min(first, tree.n)
        # One query for all radii: the points beyond an annonce's own radius are dropped after.
        own_chord = chords_for_metres(q_radius_m[wanting])
        dist, idx = tree.query(xyz[wanting], k=k, distance_upper_bound=float(own_chord.max()), workers=-1)
        dist, idx = np.asarray(dist).reshape(len(wanting), k), np.asarray(idx).reshape(len(wanting), k)
        found = dist <= own_chord[:, None]
        # Full: the k-th nearest is still within the radius, so more points may be.
        full = found[:, -1] & (k < tree.n)
        open_q.append(wanting[full])
        open_key.append(np.full(int(full.sum()), key, dtype=np.int64))
        open_beyond.append(_arc_lower_m(dist[full, -1]))
        r, c = np.nonzero(found)
        q_rows.append(wanting[r])
        p_rows.append(members[idx[r, c]])
    opened = Open(np.concatenate(open_q), np.concatenate(open_key), np.concatenate(open_beyond))
    return np.concatenate(q_rows).astype(np.int64), np.concatenate(p_rows).astype(np.int64), opened


def _ball(tree: cKDTree, members: np.ndarray, centres: np.ndarray, radii_m: np.ndarray, owners: np.ndarray):
    """(owner, point index) for every member within radii_m (geodesic, chord inflated) of each centre."""
    found = tree.query_ball_point(centres, r=chords_for_metres(radii_m), workers=-1, return_sorted=False)
    lengths = np.fromiter(map(len, found), dtype=np.int64, count=len(found))
    if lengths.sum() == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.repeat(owners, lengths), members[np.concatenate([np.asarray(f, dtype=np.int64) for f in found if f])]


def _widening_pass(d: Directory, kind: str, points: Points, queries, xyz, opened: Open, kth):
    """(query row, point index): for each open search, every unexamined point that could still
    reach the annonce's k-th score (`kth`, a lower bound of it, less SCORE_MARGIN).

    A point's score is at most WEIGHTS["distance"] × distance_score(d) + its tier's bound +
    WEIGHTS["tour_synergy"] × synergy, where synergy > 0 only within the synergy radius s₀ of
    one of the farm's delivery points. So, tier by tier:
    - points at distance d with distance part + bound ≥ kth (a ball around the annonce);
    - for a farm annonce, points within σ of one of its farm's delivery points T (t from the
      annonce): their distance is at least max(c, t − σ) (c: the distance already covered)
      and their synergy at most 1 − σ / s₀ (a ball around T).
    On the farm side (AMAP annonces) a farm's bound already counts full synergy when it
    delivers anywhere: farms delivering near an AMAP are too many to enumerate apart.
    """
    empty = np.zeros(0, dtype=np.int64)
    q_rows, p_rows = [empty], [empty]
    w_d, w_s = engine.WEIGHTS["distance"], engine.WEIGHTS["tour_synergy"]
    s0 = engine.synergy_radius_m()
    radius = d.ann_radius_m[queries]
    tours = None
    if kind == engine.FARM_SEEKS_AMAP and len(d.tour_amap):
        farm_index = _index_of(d.farm_id, d.ann_org[queries])
        tours = np.where(farm_index >= 0, d.tour_count[np.maximum(farm_index, 0)], 0), farm_index
    for key in np.unique(opened.key):
        mine = opened.key == key
        q, beyond = opened.q[mine], opened.beyond_m[mine]
        tiers = points.subtree_tiers(int(key))
        owner = point = t = None
        if tours is not None:
            # The farm's delivery points that could lift any tier's point to the k-th score.
            counts, farm_index = tours
            c = counts[q]
            owner = np.repeat(np.arange(len(q)), c)
            starts = np.cumsum(c) - c
            point = d.tour_start[farm_index[q[owner]]] + (np.arange(int(c.sum())) - np.repeat(starts, c))
            chord = np.sqrt(((xyz[q[owner]] - d.tour_xyz[point]) ** 2).sum(axis=1))
            t = _arc_lower_m(chord) / SPHERE_MARGIN  # a lower bound of the annonce–T distance
            t_upper = t * SPHERE_MARGIN**3
            best = w_d * engine.distance_score(np.maximum(beyond[owner], t - s0)) + tiers[0][0] + w_s
            useful = np.flatnonzero(best >= kth[q[owner]] - SCORE_MARGIN)
            owner, point, t, t_upper = owner[useful], point[useful], t[useful], t_upper[useful]
        for bound, members, tree in tiers:
            need = kth[q] - SCORE_MARGIN - bound
            reach = np.minimum(engine.distance_for_score(need / w_d), radius[q])
            go = np.flatnonzero(reach >= beyond)
            if go.size:
                found_q, found_p = _ball(tree, members, xyz[q[go]], reach[go], q[go])
                q_rows.append(found_q)
                p_rows.append(found_p)
            if owner is None or owner.size == 0:
                continue
            covered = np.maximum(beyond[owner], np.where(reach[owner] >= beyond[owner], reach[owner], 0.0))
            # A point σ from T is at least max(c, t − σ) from the annonce, with synergy ≤ 1 − σ / s₀:
            # bounded on each ring [σ_j, σ_j+1] of T, the ball around T reaches the last ring that
            # could still hold a point reaching the k-th score.
            inner, outer = TOUR_RINGS[:-1] * s0, TOUR_RINGS[1:] * s0
            ring_bound = w_d * engine.distance_score(
                np.maximum(covered[:, None], t[:, None] - outer[None, :])
            ) + w_s * (1.0 - inner[None, :] / s0)
            possible = ring_bound >= need[owner][:, None]
            last = len(outer) - 1 - np.argmax(possible[:, ::-1], axis=1)
            s = np.where(possible.any(axis=1), outer[last], -1.0)
            go = np.flatnonzero(
                (s >= 0)
                & (t_upper + s > covered)  # else inside what is covered
                & (t - s <= radius[q[owner]])  # else beyond the annonce's radius
            )
            if go.size:
                found_q, found_p = _ball(tree, members, d.tour_xyz[point[go]], s[go], q[owner[go]])
                q_rows.append(found_q)
                p_rows.append(found_p)
    return np.concatenate(q_rows).astype(np.int64), np.concatenate(p_rows).astype(np.int64)


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
    """Per query, the k-th best score (one row per counterpart), -inf when fewer than k qualify
    among its 2k best rows (then a lower bound: enough for what it is used for)."""
    kth = np.full(n_queries, -np.inf)
    top = np.flatnonzero(scored.eligible)
    if top.size == 0:
        return kth
    top = top[np.argsort(q_index[top] * 2.0 - scored.score[top])]  # scores in [0, 1]: best first per query
    top = _first_k_per_query(q_index, top, 2 * k)
    # A counterpart's first row is its best: unique keeps first occurrences, in this order.
    _u, first = np.unique(q_index[top] * (int(table.org_id.max()) + 1) + table.org_id[top], return_index=True)
    top = _first_k_per_query(q_index, top[np.sort(first)], k)
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
    widened: int = 0  # annonces whose first pass could not prove its k best: searched further
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


def _pairs_table(d: Directory, kind: str, points: Points, q: np.ndarray, p: np.ndarray) -> engine.CandidateTable:
    """The engine's table for (annonce row, point) pairs: approximate distances, exact at the limits."""
    distance = approx_distance_m(d.ann_lon[q], d.ann_lat[q], points.lon[p], points.lat[p])
    own = points.annonce_row[p]
    if kind == engine.AMAP_SEEKS_FARM:
        reach = np.where(own >= 0, d.ann_radius_m[np.maximum(own, 0)], d.farm_radius_m[points.org_index[p]])
    else:
        reach = np.where(own >= 0, d.ann_radius_m[np.maximum(own, 0)], math.inf)
    distance = _refine_boundary(
        distance, (d.ann_radius_m[q], reach), d.ann_lon[q], d.ann_lat[q], points.lon[p], points.lat[p]
    )
    return _candidate_table(d, kind, points, q, p, distance)


def _contenders(d: Directory, kind: str, points: Points, queries, local_q, p, *, k: int, kth=None):
    """Score the pairs; keep the eligible ones that tour synergy could still lift to the k-th score
    (`kth`, or the k-th found among these pairs without synergy), and fill in their synergy."""
    q = queries[local_q]
    table = _pairs_table(d, kind, points, q, p)
    scored = engine.score_table(_need_for(d, kind, q), table)
    if kth is None:
        kth = _kth_scores(local_q, table, scored, k, len(queries))
    keep = np.flatnonzero(
        scored.eligible & (scored.score + engine.WEIGHTS["tour_synergy"] >= kth[local_q] - SCORE_MARGIN)
    )
    local_q, p, table = local_q[keep], p[keep], table.take(keep)
    _fill_synergy(d, kind, points, queries[local_q], p, table, exact=False)
    return local_q, p, table, engine.score_table(_need_for(d, kind, queries[local_q]), table)


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    """np.unique by sorting (numpy's hash-based unique is many times slower on millions of int64)."""
    values = np.sort(values)
    return values[np.r_[True, values[1:] != values[:-1]]] if values.size else values


def _concat(tables: list[engine.CandidateTable]) -> engine.CandidateTable:
    names = engine.CandidateTable.__dataclass_fields__
    return engine.CandidateTable(**{name: np.concatenate([getattr(t, name) for t in tables]) for name in names})


def _select(d: Directory, kind: str, points: Points, queries: np.ndarray, k: int, first: int, report):
    """(q, p, table): the k best pairs of these annonces, exactly those of the request path.

    1. the `first` nearest points of each searched sub-index are scored: the k-th best score
       found is a lower bound of the annonce's true k-th score;
    2. where a sub-index held more points, every point that could still reach that bound is
       added (its distance part decreases with distance, the rest is at most `Points.bound`
       plus tour synergy), tier by tier, with a KD-tree ball query; nothing else can enter the k best;
    3. rows within SCORE_MARGIN of the k-th score get exact geodesic distances and synergy,
       are scored again, and the k best are kept.
    """
    side = "amap" if kind == engine.FARM_SEEKS_AMAP else "farm"
    xyz = unit_xyz(d.ann_lon[queries], d.ann_lat[queries])
    radius = d.ann_radius_m[queries]
    local_q, p, opened = _nearest_pass(points, xyz, radius, _query_keys(d, side, queries), first)
    # A point in several searched sub-indexes (an AMAP delivering twice a week) counts once.
    seen = _sorted_unique(local_q * len(points.lon) + p)
    local_q, p = seen // len(points.lon), seen % len(points.lon)
    report.pairs += len(p)
    q1, p1, t1, s1 = _contenders(d, kind, points, queries, local_q, p, k=k)
    kth = _kth_scores(q1, t1, s1, k, len(queries))

    extra_q, extra_p = _widening_pass(d, kind, points, queries, xyz, opened, kth)
    if extra_q.size:
        key = _sorted_unique(extra_q * len(points.lon) + extra_p)
        key = key[~np.isin(key, seen, assume_unique=True, kind="sort")]
        extra_q, extra_p = key // len(points.lon), key % len(points.lon)
        report.widened += len(_sorted_unique(extra_q))
        report.pairs += len(extra_p)
    if extra_q.size:
        q2, p2, t2, _s2 = _contenders(d, kind, points, queries, extra_q, extra_p, k=k, kth=kth)
        local_q, p, table = np.concatenate((q1, q2)), np.concatenate((p1, p2)), _concat([t1, t2])
        scored = engine.score_table(_need_for(d, kind, queries[local_q]), table)
    else:
        local_q, p, table, scored = q1, p1, t1, s1
    if local_q.size == 0:
        return None

    # Approximate distances move a score by less than SCORE_MARGIN / 2 (see SCORE_MARGIN): every
    # row that may be in the exact k best is within the margin of the approximate k-th score.
    kth = _kth_scores(local_q, table, scored, k, len(queries))
    keep = np.flatnonzero(scored.eligible & (scored.score >= kth[local_q] - SCORE_MARGIN))
    local_q, p, table = local_q[keep], p[keep], table.take(keep)
    q = queries[local_q]
    table.distance_m = geodesic_m(d.ann_lon[q], d.ann_lat[q], points.lon[p], points.lat[p])
    _fill_synergy(d, kind, points, q, p, table, exact=True)
    scored = engine.score_table(_need_for(d, kind, q), table)
    top = _top_k(local_q, table, scored, k)
    if top.size == 0:
        return None
    return queries[local_q[top]], p[top], table.take(top)


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

    reasons = _reasons_json(d, kind, q, table, drive, bits, tour_names, cache)
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


def _groups(*columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first row of each group, group of each row) for rows equal on all these integer columns."""
    key = np.zeros(len(columns[0]), dtype=np.int64)
    span = 1
    for column in columns:
        column = np.asarray(column, dtype=np.int64)
        low = int(column.min(initial=0))
        width = int(column.max(initial=0)) - low + 1
        if span * width >= 1 << 62:  # would overflow: number the groups so far, then go on
            key = _groups(key)[1]
            span = int(key.max(initial=0)) + 1
            if span * width >= 1 << 62:
                column = _groups(column)[1]
                low, width = 0, int(column.max(initial=0)) + 1
        key = key * width + (column - low)
        span *= width
    order = np.argsort(key, kind="stable")
    ordered = key[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]]) if len(key) else np.zeros(0, np.int64)
    group = np.empty(len(key), dtype=np.int64)
    group[order] = np.cumsum(np.r_[True, ordered[1:] != ordered[:-1]]) - 1 if len(key) else group
    return order[starts], group


def _encoded(texts) -> str:
    return "".join(", " + encode_basestring(text) for text in texts)


def _reasons_json(d: Directory, kind: str, q, table, drive, bits, tour_names, cache: dict) -> list[str]:
    """Each row's reasons as a JSON array: the sentences of `engine.reasons_from_values`.

    Sentence by sentence (in `engine.reasons_after_distance`'s order), rows are grouped by what
    that sentence says; each group's sentence is worded and encoded once, then each row is
    a join of cached strings (a million rows: words once per distinct value, not per row).
    """
    need = _need_for(d, kind, q)
    ctx = engine.ReasonContext(product_names=bits.name_of_bit, amap_names=tour_names, cache=cache)
    products = need.products_mask
    is_annonce = table.annonce_id != 0
    near = table.synergy_m <= engine.synergy_radius_m()
    synergy_code = np.where(near, engine.km_codes(np.where(near, table.synergy_m, 0.0)), -2)
    owner = d.ann_org[q] if kind == engine.AMAP_SEEKS_FARM else np.full(len(q), -1)
    size_code = np.where(np.isnan(table.size), -1, np.nan_to_num(table.size)).astype(np.int64)
    openness_code = np.where(np.isnan(table.openness), -1, np.rint(np.nan_to_num(table.openness) * 100))

    def worded(columns, word) -> tuple[list[str], np.ndarray]:
        first, group = _groups(*columns)
        return [_encoded(word(int(i))) for i in first.tolist()], group

    def synergy_worded(columns, _word) -> tuple[list[str], np.ndarray]:
        first, group = _groups(*columns)
        return synergy_texts(first), group

    def product_words(i):
        declared, listed, partnered = table.declared_mask[i], table.product_mask[i], table.partnered_mask[i]
        return engine._product_phrases(kind, int(products[i]), int(partnered), int(listed), int(declared), ctx)

    def synergy_words(i):
        where = engine.format_km_code(int(synergy_code[i]), cache) if near[i] else None
        amap = int(table.synergy_amap[i])
        return engine.synergy_phrases(
            kind,
            where=where,
            synergy_amap=amap,
            is_candidate=amap == table.org_id[i],
            is_annonce_amap=amap == owner[i],
            ctx=ctx,
        )

    # The tour sentence names an AMAP and a distance: hundreds of thousands of distinct ones.
    # Worded once with markers for the name and the distance, then filled in per group.
    marked_ctx = engine.ReasonContext(product_names={}, amap_names={-1: "\x00"}, cache=cache)
    (marked,) = engine.synergy_phrases(
        kind, where="\x01", synergy_amap=-1, is_candidate=False, is_annonce_amap=False, ctx=marked_ctx
    )
    pieces = marked.replace("\x01", "\x00").split("\x00")
    name_first = marked.index("\x00") < marked.index("\x01")

    def synergy_texts(first: np.ndarray) -> list[str]:
        texts = []
        names, wheres = ctx.amap_names, {}
        special = near & ((table.synergy_amap == table.org_id) | (table.synergy_amap == owner))
        for i, is_near, is_special, amap, code in zip(
            first.tolist(),
            near[first].tolist(),
            special[first].tolist(),
            table.synergy_amap[first].tolist(),
            synergy_code[first].tolist(),
            strict=True,
        ):
            if not is_near or is_special:
                texts.append(_encoded(synergy_words(i)))
                continue
            where = wheres.get(code)
            if where is None:
                where = wheres[code] = engine.format_km_code(code, cache)
            name = names.get(amap, "")
            first_part, second_part = (name, where) if name_first else (where, name)
            texts.append(", " + encode_basestring(pieces[0] + first_part + pieces[1] + second_part + pieces[2]))
        return texts

    parts = [
        worded([np.isnan(table.reach_m)], lambda i: engine.radius_phrases(float(table.reach_m[i]), cache)),
        worded(
            [products, table.partnered_mask & products, table.product_mask & products, table.declared_mask & products],
            product_words,
        ),
        worded(
            [table.weekdays, need.weekdays_mask],
            lambda i: (engine._weekday_phrase(int(table.weekdays[i]), int(need.weekdays_mask[i]), ctx),),
        ),
        synergy_worded(
            [
                synergy_code,
                np.where(near, table.synergy_amap, 0),
                near & (table.synergy_amap == table.org_id),
                near & (table.synergy_amap == owner),
            ],
            synergy_words,
        ),
        worded(
            [size_code, is_annonce],
            lambda i: engine.size_phrases(kind, size=float(table.size[i]), is_annonce=bool(is_annonce[i]), cache=cache),
        ),
        worded(
            [openness_code, is_annonce],
            lambda i: engine.openness_phrases(
                kind, openness=float(table.openness[i]), is_annonce=bool(is_annonce[i]), cache=cache
            ),
        ),
        worded([is_annonce], lambda i: engine.published_phrases(kind, is_annonce=bool(is_annonce[i]), cache=cache)),
    ]
    minutes = np.maximum(1, np.rint(drive)).astype(np.int64)  # as `routing.describe` rounds
    distance_code = engine.km_codes(table.distance_m)

    def head_words(i):
        drive_text = routing.describe(routing.DriveTime(int(minutes[i]), routing.SOURCE_ESTIMATE), cache)
        return f"{engine.format_km_code(int(distance_code[i]), cache)}, {drive_text}"

    first, head_of = _groups(distance_code, minutes)
    heads = ["[" + encode_basestring(head_words(int(i))) for i in first.tolist()]
    (r, r_of), (p, p_of), (w, w_of), (s, s_of), (z, z_of), (o, o_of), (u, u_of) = parts
    return [
        heads[a] + r[b] + p[c] + w[e] + s[f] + z[g] + o[h] + u[i] + "]"
        for a, b, c, e, f, g, h, i in zip(
            head_of.tolist(),
            r_of.tolist(),
            p_of.tolist(),
            w_of.tolist(),
            s_of.tolist(),
            z_of.tolist(),
            o_of.tolist(),
            u_of.tolist(),
            strict=True,
        )
    ]


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
        # The delivery points' names: active AMAPs with an active partnership (no list of ids to send).
        delivered = Partnership.objects.filter(amap=OuterRef("pk"), is_active=True)
        amaps = Amap.objects.filter(status=Amap.Status.ACTIVE).filter(Exists(delivered)).order_by()
        tour_names = dict(amaps.values_list("pk", "name"))
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

    `results` may be a generator (`compute_iter`): each chunk of rows is copied and inserted by
    a writer thread on the same connection and transaction while the next chunk is computed,
    so PostgreSQL works on the other core in the meantime.
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
    insert = _compose(
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
    )
    with transaction.atomic(), connection.cursor() as cursor:
        # The joins below hash many rows: in memory rather than in batches spilled to disk, and
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
        cursor.execute("ANALYZE tmp_annonce")
        lap("prepare")
        # What was already announced stays announced: carry first_seen_at and notified_at over,
        # then replace every stored match of these annonces.
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
        writer = _ChunkWriter(connection.connection, insert=insert, params=[now, now])
        try:
            for result in results:
                writer.put(_binary_rows(result))
        finally:
            stored = writer.close()
        lap("compute_copy_insert")
        cursor.execute("DROP TABLE tmp_match, tmp_annonce, tmp_seen")
    lap("commit")
    return stored


class _ChunkWriter:
    """A thread that copies each chunk of rows into tmp_match and inserts it into the match table.

    It uses the very psycopg connection (same session and transaction) of the caller, which
    must not use it meanwhile; most of its time is spent waiting for PostgreSQL, without the GIL.
    """

    def __init__(self, raw_connection, *, insert, params):
        self.raw = raw_connection
        self.insert = insert
        self.params = params
        self.queue: queue.Queue = queue.Queue(maxsize=2)
        self.stored = 0
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="match-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            with self.raw.cursor() as cursor:
                while (rows := self.queue.get()) is not None:
                    cursor.execute("TRUNCATE tmp_match")
                    with cursor.copy("COPY tmp_match FROM STDIN WITH (FORMAT BINARY)") as copy:
                        copy.write(_PGCOPY_HEADER)
                        copy.write(rows)
                        copy.write(_PGCOPY_TRAILER)
                    cursor.execute("ANALYZE tmp_match")
                    cursor.execute(self.insert, self.params)
                    self.stored += cursor.rowcount
        except BaseException as error:  # noqa: BLE001 - handed over to the caller's thread
            self.error = error
            while self.queue.get() is not None:  # let the producer finish; nothing more is written
                pass

    def put(self, rows: bytes) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put(rows)

    def close(self) -> int:
        self.queue.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error
        return self.stored


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
