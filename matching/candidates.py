"""The request path's candidates: every counterpart the database holds within an annonce's reach,
as the engine's candidate table (one row per candidate point, `matching.engine.CandidateTable`).

Candidates come from PostGIS: `ST_DWithin` on geography walks the GiST index and keeps only
points within true metres of the annonce; `ST_Distance` on geography gives the spheroid
distance. The farms' delivery points, their rings and the marginal detour of each row
(`matching.detours`) are measured here with the same geodesic as the bulk path.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
from django.contrib.gis.db.models import GeometryField
from django.contrib.gis.db.models.functions import Distance
from django.contrib.gis.geos import Point
from django.contrib.gis.measure import D
from django.db import connection, transaction
from django.db.models import Exists, FloatField, Func, OuterRef, Q
from django.db.models.functions import Cast

from directory.models import Amap, Farm, Partnership, ProductCategory
from geo.sphere import GEOD

from . import detours, engine
from .learning.features import RINGS_KM
from .models import Annonce

# --------------------------------------------------------------------------- products as bits


@dataclass(frozen=True)
class ProductBits:
    bit_of: dict[int, int]  # ProductCategory pk → bit
    name_of_bit: dict[int, str]

    def mask(self, product_ids) -> int:
        mask = 0
        for pk in product_ids:
            bit = self.bit_of.get(pk)
            if bit is not None:
                mask |= 1 << bit
        return mask

    def ids(self, mask: int) -> list[int]:
        return [pk for pk, bit in self.bit_of.items() if mask & (1 << bit)]


def product_bits() -> ProductBits:
    """One bit per product category (the taxonomy is small: 25 categories; 63 at most)."""
    rows = list(ProductCategory.objects.order_by("pk").values_list("pk", "name"))
    if len(rows) > 63:
        raise RuntimeError("more than 63 product categories: the bit masks need widening")
    return ProductBits(
        bit_of={pk: bit for bit, (pk, _name) in enumerate(rows)},
        name_of_bit={bit: name for bit, (_pk, name) in enumerate(rows)},
    )


# --------------------------------------------------------------------------- one question


@dataclass
class Query:
    """One "who matches?" question: an annonce, or the same fields unsaved (evaluation, previews)."""

    kind: str
    # The point distances are measured from: always a public one (a farm's masked point). Every
    # geometry matching uses about a farm is its public point, even in the farm's own view: the
    # 500–1,500 m mask is small beside 15–100 km radii, and then no distance, order, drive time
    # or sentence shown to anyone can be traced back to a farmhouse (issue 12's trilateration).
    origin: Point
    product_ids: list[int]
    weekdays: list[int]
    radius_km: float
    shares: int | None = None
    farm: Farm | None = None  # FARM_SEEKS_AMAP: the farm offering
    amap: Amap | None = None  # AMAP_SEEKS_FARM: the AMAP asking
    hidden_partnership_ids: set[int] = field(default_factory=set)  # leave-one-out evaluation

    @classmethod
    def for_annonce(cls, annonce: Annonce) -> Query:
        return cls(
            kind=annonce.kind,
            origin=annonce.public_location,
            product_ids=[p.pk for p in annonce.products.all()],
            weekdays=list(annonce.delivery_weekdays or []),
            radius_km=float(annonce.radius_km),
            shares=annonce.shares,
            farm=annonce.farm,
            amap=annonce.amap,
        )


def need_of(query: Query, bits: ProductBits) -> engine.Need:
    weekdays = engine.weekdays_to_mask(query.weekdays) or engine.ALL_DAYS  # no day named: any day suits
    return engine.Need(
        kind=query.kind,
        products_mask=bits.mask(query.product_ids),
        weekdays_mask=weekdays,
        radius_m=float(query.radius_km) * 1000.0,
        shares=query.shares,
    )


def _geodesic_m(lon0, lat0, lons, lats) -> np.ndarray:
    lons = np.asarray(lons, dtype=float)
    lats = np.asarray(lats, dtype=float)
    if lons.size == 0:
        return np.zeros(0)
    _a, _b, dist = GEOD.inv(np.full(lons.shape, lon0), np.full(lats.shape, lat0), lons, lats)
    return np.asarray(dist, dtype=float)


def _nearest_delivery_point(points: list[tuple[int, float, float]], lons, lats):
    """For each (lon, lat): distance to the nearest of `points` (amap_id, lon, lat), its id (lowest on a
    tie), and how many of them lie within each of the learned ranking's rings (rows × rings)."""
    n = len(lons)
    best = np.full(n, math.inf)
    best_id = np.zeros(n, dtype=np.int64)
    within = np.zeros((n, len(RINGS_KM)))
    if n == 0:
        return best, best_id, within
    rings_m = np.asarray(RINGS_KM) * 1000.0
    for amap_id, lon, lat in sorted(points):
        dist = _geodesic_m(lon, lat, lons, lats)
        closer = dist < best
        best = np.where(closer, dist, best)
        best_id = np.where(closer, amap_id, best_id)
        within += dist[:, None] <= rings_m[None, :]
    return best, best_id, within


def _detours(stops, *, depots: dict, row_farm, lons, lats, days, need_days: int) -> np.ndarray:
    """The marginal detour (`matching.detours`) of each row's place for its farm.

    `stops`: (farm id, AMAP id, lon, lat, delivery weekdays) of the farms' delivery points;
    `depots`: farm id → its public point; `row_farm`: each row's farm id; `days` each row's days,
    among the annonce's `need_days` (the only loops drawn).
    """
    farm_ids = sorted(depots)
    index = {farm_id: i for i, farm_id in enumerate(farm_ids)}
    depot = np.array([depots[f] for f in farm_ids], dtype=np.float64).reshape(len(farm_ids), 2)
    known = [stop for stop in stops if stop[0] in index]
    legs = detours.farm_legs(
        depot_lon=depot[:, 0],
        depot_lat=depot[:, 1],
        stop_farm=np.array([index[s[0]] for s in known], dtype=np.int64),
        stop_id=np.array([s[1] for s in known], dtype=np.int64),
        stop_lon=np.array([s[2] for s in known], dtype=np.float64),
        stop_lat=np.array([s[3] for s in known], dtype=np.float64),
        stop_days=np.array([engine.weekdays_to_mask(s[4]) for s in known], dtype=np.int64),
        days=need_days,
    )
    farm = np.array([index[f] for f in row_farm], dtype=np.int64)
    detour, _error = detours.detour_m(legs, farm, lons, lats, days, depot[farm, 0], depot[farm, 1])
    return detour


def _lon_lat(field: str, *, alias: str | None = None) -> dict:
    """Annotations giving a geography point's longitude and latitude as floats (no GEOS object per row)."""
    geometry = Cast(field, GeometryField(srid=4326))
    alias = alias or field
    return {
        f"{alias}_lon": Func(geometry, function="ST_X", output_field=FloatField()),
        f"{alias}_lat": Func(geometry, function="ST_Y", output_field=FloatField()),
    }


def _offering(model, product_ids: list[int], owner: str):
    """EXISTS on the product link table: no join, no DISTINCT over geography columns."""
    through = model.products.through
    return Exists(through.objects.filter(**{owner: OuterRef("pk"), "productcategory_id__in": product_ids}))


def _masks(rows, bits: ProductBits) -> dict[int, int]:
    masks: dict[int, int] = defaultdict(int)
    for owner_id, product_id in rows:
        bit = bits.bit_of.get(product_id)
        if bit is not None:
            masks[owner_id] |= 1 << bit
    return masks


def _amap_candidates(query: Query, need: engine.Need, bits: ProductBits) -> tuple[engine.CandidateTable, dict]:
    """Candidate table for a farm offering products: active AMAPs and their open annonces in reach."""
    origin = query.origin
    within = D(m=need.radius_m)
    product_ids = query.product_ids
    amaps = Amap.objects.active().filter(location__dwithin=(origin, within))  # geography: true metres
    if not need.any_day:
        days = engine.mask_to_weekdays(need.weekdays_mask)
        amaps = amaps.filter(Q(delivery_weekdays=[]) | Q(delivery_weekdays__overlap=days))
    amap_rows = list(
        amaps.order_by()  # no sort: the engine ranks
        .annotate(distance=Distance("location", origin), **_lon_lat("location"))
        .values_list(
            "pk", "distance", "delivery_weekdays", "member_count", "accepting_members", "location_lon", "location_lat"
        )
    )
    annonce_rows = list(
        Annonce.objects.live()
        .filter(kind=engine.AMAP_SEEKS_FARM, amap__status=Amap.Status.ACTIVE, public_location__dwithin=(origin, within))
        .filter(_offering(Annonce, product_ids, "annonce_id"))
        .order_by()
        .annotate(distance=Distance("public_location", origin), **_lon_lat("public_location"))
        .values_list(
            "pk",
            "amap_id",
            "distance",
            "radius_km",
            "delivery_weekdays",
            "shares",
            "public_location_lon",
            "public_location_lat",
        )
    )
    amap_ids = [row[0] for row in amap_rows] + [row[1] for row in annonce_rows]
    listed = _masks(
        Amap.products.through.objects.filter(amap_id__in=amap_ids, productcategory_id__in=product_ids).values_list(
            "amap_id", "productcategory_id"
        ),
        bits,
    )
    partnerships = Partnership.objects.active().filter(amap_id__in=amap_ids, product_id__in=product_ids)
    if query.hidden_partnership_ids:
        partnerships = partnerships.exclude(pk__in=query.hidden_partnership_ids)
    partnered = _masks(partnerships.values_list("amap_id", "product_id"), bits)
    declared = _masks(
        Annonce.products.through.objects.filter(annonce_id__in=[row[0] for row in annonce_rows]).values_list(
            "annonce_id", "productcategory_id"
        ),
        bits,
    )

    # The farm's existing delivery points: the AMAPs it supplies now (with their delivery days).
    stops: list[tuple[int, float, float, list]] = []
    if query.farm is not None and query.farm.pk:
        supplies = Partnership.objects.active().filter(farm=query.farm, amap__status=Amap.Status.ACTIVE)
        if query.hidden_partnership_ids:
            supplies = supplies.exclude(pk__in=query.hidden_partnership_ids)
        stops = list(
            supplies.order_by()  # DISTINCT on these columns only, not on the model's ordering
            .annotate(**_lon_lat("amap__location"))
            .values_list("amap_id", "amap__location_lon", "amap__location_lat", "amap__delivery_weekdays")
            .distinct()
        )
    delivery_points = [stop[:3] for stop in stops]

    columns: dict[str, list] = defaultdict(list)
    lons, lats = [], []
    for pk, distance, weekdays, members, accepting, lon, lat in amap_rows:
        columns["org_id"].append(pk)
        columns["annonce_id"].append(0)
        columns["distance_m"].append(distance.m)
        columns["reach_m"].append(math.inf)
        columns["weekdays"].append(engine.weekdays_to_mask(weekdays))
        columns["product_mask"].append(listed[pk])
        columns["partnered_mask"].append(partnered[pk])
        columns["declared_mask"].append(0)
        columns["size"].append(math.nan if members is None else members)
        columns["openness"].append(engine.OPENNESS.get(accepting, 0.5))
        lons.append(lon)
        lats.append(lat)
    for pk, amap_id, distance, radius_km, weekdays, shares, lon, lat in annonce_rows:
        columns["org_id"].append(amap_id)
        columns["annonce_id"].append(pk)
        columns["distance_m"].append(distance.m)
        columns["reach_m"].append(radius_km * 1000.0)
        columns["weekdays"].append(engine.weekdays_to_mask(weekdays))
        columns["product_mask"].append(listed[amap_id])
        columns["partnered_mask"].append(partnered[amap_id])
        columns["declared_mask"].append(declared[pk])
        columns["size"].append(math.nan if shares is None else shares)
        columns["openness"].append(1.0)
        lons.append(lon)
        lats.append(lat)
    synergy_m, synergy_amap, within = _nearest_delivery_point(delivery_points, lons, lats)
    columns["synergy_m"], columns["synergy_amap"] = synergy_m, synergy_amap
    columns["partners"] = np.full(len(lons), float(len({p[0] for p in delivery_points})))
    for j, km in enumerate(RINGS_KM):
        columns[f"within_{int(km)}"] = within[:, j]
    # From the farm's public point (the annonce's place if the farm has none).
    depot = query.farm.public_location if query.farm is not None and query.farm.public_location else query.origin
    columns["detour_m"] = _detours(
        [(0, *stop) for stop in stops],
        depots={0: (depot.x, depot.y)},
        row_farm=[0] * len(lons),
        lons=lons,
        lats=lats,
        days=detours.candidate_days(np.asarray(columns["weekdays"], dtype=np.int64), need.weekdays_mask),
        need_days=need.weekdays_mask,
    )
    names = dict(Amap.objects.filter(pk__in={p[0] for p in delivery_points}).values_list("pk", "name"))
    return engine.CandidateTable.from_columns(columns), {"amap_names": names, "lons": lons, "lats": lats}


def _learning_columns(columns: dict, partners: int, rings) -> None:
    columns["partners"].append(float(partners))
    for j, km in enumerate(RINGS_KM):
        columns[f"within_{int(km)}"].append(0.0 if rings is None else float(rings[j]))


def _farm_candidates(query: Query, need: engine.Need, bits: ProductBits) -> tuple[engine.CandidateTable, dict]:
    """Candidate table for an AMAP asking for products: producing farms and their open annonces in reach."""
    origin = query.origin
    within = D(m=need.radius_m)
    product_ids = query.product_ids
    farm_rows = list(
        Farm.objects.active()
        .exclude(capacity_shares=0)
        # The public (masked) point, never `location`: see Query.origin.
        .filter(public_location__dwithin=(origin, within))  # geography: true metres
        .filter(_offering(Farm, product_ids, "farm_id"))
        .order_by()  # no sort: the engine ranks
        .annotate(distance=Distance("public_location", origin), **_lon_lat("public_location"))
        .values_list(
            "pk", "distance", "delivery_radius_km", "capacity_shares", "public_location_lon", "public_location_lat"
        )
    )
    annonce_rows = list(
        Annonce.objects.live()
        .filter(kind=engine.FARM_SEEKS_AMAP, farm__is_active=True, public_location__dwithin=(origin, within))
        .filter(_offering(Annonce, product_ids, "annonce_id"))
        .order_by()
        .annotate(
            distance=Distance("public_location", origin),
            **_lon_lat("public_location"),
            **_lon_lat("farm__public_location", alias="depot"),
        )
        .values_list(
            "pk",
            "farm_id",
            "distance",
            "radius_km",
            "delivery_weekdays",
            "shares",
            "farm__capacity_shares",
            "public_location_lon",
            "public_location_lat",
            "depot_lon",
            "depot_lat",
        )
    )
    farm_ids = [row[0] for row in farm_rows] + [row[1] for row in annonce_rows]
    produced = _masks(
        Farm.products.through.objects.filter(
            farm_id__in=[row[0] for row in farm_rows], productcategory_id__in=product_ids
        ).values_list("farm_id", "productcategory_id"),
        bits,
    )
    offered = _masks(
        Annonce.products.through.objects.filter(
            annonce_id__in=[row[0] for row in annonce_rows], productcategory_id__in=product_ids
        ).values_list("annonce_id", "productcategory_id"),
        bits,
    )
    already: dict[int, int] = defaultdict(int)
    if query.amap is not None and query.amap.pk:
        supplies = Partnership.objects.active().filter(
            amap=query.amap, farm_id__in=farm_ids, product_id__in=product_ids
        )
        if query.hidden_partnership_ids:
            supplies = supplies.exclude(pk__in=query.hidden_partnership_ids)
        already = _masks(supplies.values_list("farm_id", "product_id"), bits)

    # Each farm's existing delivery points, measured from the AMAP's place: for the nearest and the
    # rings, only those within the synergy radius or the learned ranking's widest ring count (beyond,
    # synergy is 0, no sentence names them, the ring counts are 0).
    reach_m = max(engine.synergy_radius_m(), RINGS_KM[-1] * 1000.0)
    supplying = Partnership.objects.active().filter(farm_id__in=farm_ids, amap__status=Amap.Status.ACTIVE)
    if query.hidden_partnership_ids:
        supplying = supplying.exclude(pk__in=query.hidden_partnership_ids)
    # Every delivery point of these farms, with its delivery days (their loops give the detour).
    stops = list(
        supplying.order_by()  # DISTINCT on these columns only, not on the model's ordering
        .annotate(**_lon_lat("amap__location"))
        .values_list("farm_id", "amap_id", "amap__location_lon", "amap__location_lat", "amap__delivery_weekdays")
        .distinct()
    )
    partners: dict[int, int] = defaultdict(int)
    nearest_tour: dict[int, tuple[float, int]] = {}
    rings: dict[int, np.ndarray] = {}
    if stops:
        farm_of = np.array([stop[0] for stop in stops], dtype=np.int64)
        amap_of = np.array([stop[1] for stop in stops], dtype=np.int64)
        partners.update(zip(*(a.tolist() for a in np.unique(farm_of, return_counts=True)), strict=True))
        dists = _geodesic_m(origin.x, origin.y, [p[2] for p in stops], [p[3] for p in stops])
        near = np.flatnonzero(dists <= reach_m * 1.001)
        # Per farm, its nearest delivery point (the lowest AMAP id on a tie) and its ring counts.
        near = near[np.lexsort((amap_of[near], dists[near], farm_of[near]))]
        farms, first = np.unique(farm_of[near], return_index=True)
        counts = [
            np.bincount(np.searchsorted(farms, farm_of[near][dists[near] <= km * 1000.0]), minlength=len(farms))
            for km in RINGS_KM
        ]
        for i, farm_id in enumerate(farms.tolist()):
            nearest_tour[farm_id] = (float(dists[near[first[i]]]), int(amap_of[near[first[i]]]))
            rings[farm_id] = np.array([float(c[i]) for c in counts])

    columns: dict[str, list] = defaultdict(list)
    lons, lats = [], []
    no_tour = (math.inf, 0)
    depots: dict[int, tuple[float, float]] = {}
    for pk, distance, radius_km, capacity, lon, lat in farm_rows:
        depots[pk] = (lon, lat)
        tour = nearest_tour.get(pk, no_tour)
        columns["org_id"].append(pk)
        columns["annonce_id"].append(0)
        columns["distance_m"].append(distance.m)
        columns["reach_m"].append(math.nan if radius_km is None else radius_km * 1000.0)  # nan: never stated
        columns["weekdays"].append(0)
        columns["product_mask"].append(produced[pk])
        columns["partnered_mask"].append(already[pk])
        columns["declared_mask"].append(0)
        columns["size"].append(math.nan if capacity is None else capacity)
        columns["openness"].append(math.nan)
        columns["synergy_m"].append(tour[0])
        columns["synergy_amap"].append(tour[1])
        _learning_columns(columns, partners[pk], rings.get(pk))
        lons.append(lon)
        lats.append(lat)
    for pk, farm_id, distance, radius_km, weekdays, shares, capacity, lon, lat, depot_lon, depot_lat in annonce_rows:
        # A farm without a public point has no loop: the annonce's place stands for it.
        depots.setdefault(farm_id, (lon, lat) if depot_lon is None else (depot_lon, depot_lat))
        tour = nearest_tour.get(farm_id, no_tour)
        size = shares if shares is not None else capacity
        columns["org_id"].append(farm_id)
        columns["annonce_id"].append(pk)
        columns["distance_m"].append(distance.m)
        columns["reach_m"].append(radius_km * 1000.0)
        columns["weekdays"].append(engine.weekdays_to_mask(weekdays) or engine.ALL_DAYS)
        columns["product_mask"].append(offered[pk])
        columns["partnered_mask"].append(already[farm_id])
        columns["declared_mask"].append(offered[pk])
        columns["size"].append(math.nan if size is None else size)
        columns["openness"].append(math.nan)
        columns["synergy_m"].append(tour[0])
        columns["synergy_amap"].append(tour[1])
        _learning_columns(columns, partners[farm_id], rings.get(farm_id))
        lons.append(lon)
        lats.append(lat)
    # What the asking AMAP's place would add to each farm's loops of the days they could share.
    columns["detour_m"] = _detours(
        stops,
        depots=depots,
        row_farm=columns["org_id"],
        lons=np.full(len(lons), origin.x),
        lats=np.full(len(lons), origin.y),
        days=detours.candidate_days(np.asarray(columns["weekdays"], dtype=np.int64), need.weekdays_mask),
        need_days=need.weekdays_mask,
    )
    names = dict(Amap.objects.filter(pk__in={t[1] for t in nearest_tour.values()}).values_list("pk", "name"))
    return engine.CandidateTable.from_columns(columns), {"amap_names": names, "lons": lons, "lats": lats}


def candidates(query: Query, bits: ProductBits | None = None):
    """(need, table, extras) for a query: every candidate point the database holds within reach."""
    bits = bits or product_bits()
    need = need_of(query, bits)
    if need.products_mask == 0:
        return need, engine.CandidateTable.from_rows([]), {"amap_names": {}, "lons": [], "lats": []}
    with transaction.atomic(), connection.cursor() as cursor:
        # Index scans of a few thousand rows: a parallel plan's workers take longer to start than
        # the scan itself (at 100k, the farms of an AMAP annonce: 18 ms → 8 ms without them).
        cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        if query.kind == engine.FARM_SEEKS_AMAP:
            table, extras = _amap_candidates(query, need, bits)
        else:
            table, extras = _farm_candidates(query, need, bits)
    return need, table, extras
