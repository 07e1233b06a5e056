"""Loading: the directory's active AMAPs, farms, partnerships and live annonces as numpy arrays (a few queries)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from django.db import connection
from django.utils import timezone
from psycopg import sql

from directory.models import Amap, Farm, Partnership
from geo.sphere import unit_xyz

from .. import detours, engine
from ..models import Annonce, Match
from .distances import SPHERE_MARGIN, sphere_m


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


def compose(template: str, **fragments) -> sql.Composed:
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
    tour_days: np.ndarray  # the delivery point's weekday mask (0: not known)
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
    _legs: detours.Legs | None = None
    _loop_days: np.ndarray | None = None
    _loop_spread: np.ndarray | None = None

    @property
    def loop_spread(self) -> np.ndarray:
        """(farms, 7): per farm and weekday, an upper bound of d(farm, a) + d(farm, b) over its loop's
        legs (a, b) (0 without a loop). A place x from the farm adds at least 2·(x − that) to the loop."""
        if self._loop_spread is None:
            legs = self.legs
            owner = np.repeat(np.arange(len(self.farm_id)), legs.count.sum(axis=1))
            depot = unit_xyz(self.farm_lon[owner], self.farm_lat[owner])

            def from_farm(lon, lat, at_farm):
                end = unit_xyz(lon, lat)
                dot = depot[:, 0] * end[:, 0] + depot[:, 1] * end[:, 1] + depot[:, 2] * end[:, 2]
                return np.where(at_farm, 0.0, sphere_m(dot) * SPHERE_MARGIN + 1.0)

            spread = from_farm(legs.a_lon, legs.a_lat, legs.a_depot) + from_farm(legs.b_lon, legs.b_lat, legs.b_depot)
            table = np.zeros((len(self.farm_id), 7))
            day = np.log2(np.maximum(legs.day, 1)).astype(np.int64)
            np.maximum.at(table, (owner, day), spread)
            self._loop_spread = table
        return self._loop_spread

    @property
    def loop_days(self) -> np.ndarray:
        """Per farm, the weekday mask of the days it delivers somewhere (a loop of `legs`)."""
        if self._loop_days is None:
            days = np.zeros(len(self.farm_id), dtype=np.int64)
            np.bitwise_or.at(days, np.repeat(np.arange(len(self.farm_id)), self.tour_count), self.tour_days)
            self._loop_days = days
        return self._loop_days

    @property
    def legs(self) -> detours.Legs:
        """Every farm's estimated delivery loops (`matching.detours`), built on first use."""
        if self._legs is None:
            self._legs = detours.farm_legs(
                depot_lon=self.farm_lon,
                depot_lat=self.farm_lat,
                stop_farm=np.repeat(np.arange(len(self.farm_id)), self.tour_count),
                stop_id=self.tour_amap,
                stop_lon=self.tour_lon,
                stop_lat=self.tour_lat,
                stop_days=self.tour_days,
            )
        return self._legs


def load_directory(*, product_ids: list[int]) -> Directory:
    """The arrays; farms and annonces at their public points, as on the request path (selectors.Query.origin)."""
    listed = _mask("productcategory_id")
    partnered = _mask("product_id")
    amaps = _rows(
        compose(
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
        compose(
            """
            SELECT f.id, ST_X(f.public_location::geometry), ST_Y(f.public_location::geometry), f.delivery_radius_km,
                   f.capacity_shares, COALESCE(fp.mask, 0)
            FROM {farm} f
            LEFT JOIN (SELECT farm_id, {listed} AS mask
                       FROM {farm_products} GROUP BY farm_id) fp ON fp.farm_id = f.id
            WHERE f.is_active AND f.public_location IS NOT NULL
            ORDER BY f.id
            """,
            listed=listed,
        ),
        [product_ids],
    )
    # Grouped here rather than by a GROUP BY on the computed key: on a freshly loaded database
    # PostgreSQL misestimated the groups and its hash aggregate spilled for minutes.
    links = _rows(
        compose(
            """
            SELECT p.amap_id, p.farm_id, array_position(%s::bigint[], p.product_id::bigint) - 1
            FROM {partnership} p WHERE p.is_active
            """
        ),
        [product_ids],
    )
    pair_key, pair_mask = _group_pairs(links)
    tours = _rows(
        compose(
            """
            SELECT DISTINCT p.farm_id, p.amap_id, ST_X(a.location::geometry), ST_Y(a.location::geometry), {days}
            FROM {partnership} p JOIN {amap} a ON a.id = p.amap_id
            WHERE p.is_active AND a.status = %s
            ORDER BY p.farm_id, p.amap_id
            """,
            days=_weekdays("a.delivery_weekdays"),
        ),
        [Amap.Status.ACTIVE],
    )
    annonces = _rows(
        compose(
            """
            SELECT n.id, CASE WHEN n.kind = %s THEN 0 ELSE 1 END, COALESCE(n.farm_id, n.amap_id),
                   ST_X(n.public_location::geometry), ST_Y(n.public_location::geometry), n.radius_km,
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
    tour_farm_index = index_of(farm_id, tour_farm)
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
        tour_days=_column(tours, 4, np.int64)[keep],
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


def index_of(sorted_ids: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Positions of `ids` in `sorted_ids`, -1 where absent."""
    if len(sorted_ids) == 0:
        return np.full(len(ids), -1, dtype=np.int64)
    pos = np.searchsorted(sorted_ids, ids)
    pos_clipped = np.minimum(pos, len(sorted_ids) - 1)
    return np.where(sorted_ids[pos_clipped] == ids, pos_clipped, -1)


def pair_products(d: Directory, amap_ids: np.ndarray, farm_ids: np.ndarray) -> np.ndarray:
    if len(d.pair_key) == 0:
        return np.zeros(len(amap_ids), dtype=np.int64)
    keys = (amap_ids.astype(np.int64) << 32) | farm_ids.astype(np.int64)
    pos = index_of(d.pair_key, keys)
    return np.where(pos >= 0, d.pair_mask[np.maximum(pos, 0)], 0)


def need_for(d: Directory, kind: str, q_index: np.ndarray) -> engine.Need:
    days = d.ann_days[q_index]
    return engine.Need(
        kind=kind,
        products_mask=d.ann_products[q_index],
        weekdays_mask=np.where(days == 0, engine.ALL_DAYS, days),  # no day named: any day suits
        radius_m=d.ann_radius_m[q_index],
        shares=d.ann_shares[q_index],
    )
