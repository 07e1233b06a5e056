"""Reads for matchmaking: the board, and the ranked matches of one annonce (the request path).

Candidates come from PostGIS: `ST_DWithin` on geography walks the GiST index and keeps only
points within true metres of the annonce; `ST_Distance` on geography gives the spheroid
distance. The rules and the score are `matching.engine`'s, shared with the bulk path.
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
from django.db.models import Exists, FloatField, Func, OuterRef, Q, QuerySet
from django.db.models.functions import Cast

from directory.models import Amap, Farm, Network, Partnership, ProductCategory
from geo.sphere import GEOD

from . import engine, reasons, routing
from .learning.features import RINGS_KM
from .learning.ranker import LinearRanker
from .models import Annonce, Match, MatchingModel

MAX_MATCHES = 50


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


# --------------------------------------------------------------------------- board


def annonces_board(
    *,
    kind: str | None = None,
    product: str | None = None,
    department: str | None = None,
    network: str | None = None,
    include_closed: bool = False,
) -> QuerySet[Annonce]:
    """Annonces for the public board, newest first, open and unexpired unless `include_closed`."""
    annonces = Annonce.objects.all() if include_closed else Annonce.objects.live()
    if kind:
        annonces = annonces.filter(kind=kind)
    if product:
        annonces = annonces.filter(products__slug=product)
    if department:
        annonces = annonces.filter(commune__department_id=department)
    if network:
        net = Network.objects.filter(slug=network).first()
        if net is None:
            return annonces.none()
        annonces = annonces.filter(
            Q(farm__networks=net)
            | Q(amap__networks=net)
            | Q(commune__department__in=net.departments.all())
            | Q(commune__region__in=net.regions.all())
        )
    return (
        annonces.select_related("farm", "amap", "commune")
        .prefetch_related("products")
        .order_by("-created_at", "-pk")  # stable pages
        .distinct()
    )


def annonces_managed_by(*, user) -> QuerySet[Annonce]:
    return (
        Annonce.objects.filter(Q(farm__managers=user) | Q(amap__managers=user))
        .select_related("farm", "amap")
        .prefetch_related("products")
        .distinct()
        .order_by("-created_at", "-pk")
    )


def annonces_to_moderate(*, user) -> QuerySet[Annonce]:
    """Annonces in the territories of the networks `user` administers (départements, régions, members)."""
    if not getattr(user, "is_authenticated", False):
        return Annonce.objects.none()
    networks = user.administered_networks.all()
    if not networks.exists():
        return Annonce.objects.none()
    return (
        Annonce.objects.filter(
            Q(commune__department__networks__in=networks)
            | Q(commune__region__networks__in=networks)
            | Q(farm__networks__in=networks)
            | Q(amap__networks__in=networks)
        )
        .select_related("farm", "amap")
        .distinct()
        .order_by("-created_at", "-pk")
    )


def stored_matches(*, annonce: Annonce, limit: int = 10) -> QuerySet[Match]:
    return annonce.matches.select_related("amap", "farm").order_by("rank")[:limit]


# --------------------------------------------------------------------------- the request path


@dataclass
class MatchResult:
    counterpart_type: str  # "amap" or "farm"
    counterpart_id: int
    name: str
    score: float
    components: dict[str, float]
    reasons: list[str]
    distance_m: float
    drive_minutes: float
    drive_source: str
    lon: float  # public point (an AMAP's delivery place, a farm's masked point)
    lat: float
    annonce_id: int | None = None
    extras: dict = field(default_factory=dict)


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


def _lon_lat(field: str) -> dict:
    """Annotations giving a geography point's longitude and latitude as floats (no GEOS object per row)."""
    geometry = Cast(field, GeometryField(srid=4326))
    return {
        f"{field}_lon": Func(geometry, function="ST_X", output_field=FloatField()),
        f"{field}_lat": Func(geometry, function="ST_Y", output_field=FloatField()),
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

    # The farm's existing delivery points: the AMAPs it supplies now.
    delivery_points: list[tuple[int, float, float]] = []
    if query.farm is not None and query.farm.pk:
        supplies = Partnership.objects.active().filter(farm=query.farm, amap__status=Amap.Status.ACTIVE)
        if query.hidden_partnership_ids:
            supplies = supplies.exclude(pk__in=query.hidden_partnership_ids)
        delivery_points = list(
            supplies.order_by()  # DISTINCT on these columns only, not on the model's ordering
            .annotate(**_lon_lat("amap__location"))
            .values_list("amap_id", "amap__location_lon", "amap__location_lat")
            .distinct()
        )

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
        .annotate(distance=Distance("public_location", origin), **_lon_lat("public_location"))
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

    # Each farm's existing delivery points, measured from the AMAP's place: only those within the
    # synergy radius or the learned ranking's widest ring count (beyond, synergy is 0, no sentence
    # names them, the ring counts are 0), which the GiST index on the AMAPs' places finds (0.1 %
    # wider; the exact geodesic below decides).
    reach_m = max(engine.synergy_radius_m(), RINGS_KM[-1] * 1000.0)
    supplying = Partnership.objects.active().filter(farm_id__in=farm_ids, amap__status=Amap.Status.ACTIVE)
    if query.hidden_partnership_ids:
        supplying = supplying.exclude(pk__in=query.hidden_partnership_ids)
    partners: dict[int, int] = defaultdict(int)
    for farm_id, _amap_id in supplying.order_by().values_list("farm_id", "amap_id").distinct():
        partners[farm_id] += 1
    tours = supplying.filter(amap__location__dwithin=(origin, D(m=reach_m * 1.001)))
    tour_points = list(
        tours.order_by()  # DISTINCT on these columns only, not on the model's ordering
        .annotate(**_lon_lat("amap__location"))
        .values_list("farm_id", "amap_id", "amap__location_lon", "amap__location_lat")
        .distinct()
    )
    nearest_tour: dict[int, tuple[float, int]] = {}
    rings: dict[int, np.ndarray] = defaultdict(lambda: np.zeros(len(RINGS_KM)))
    if tour_points:
        dists = _geodesic_m(origin.x, origin.y, [p[2] for p in tour_points], [p[3] for p in tour_points])
        for (farm_id, amap_id, _lon, _lat), dist in zip(tour_points, dists, strict=True):
            if farm_id not in nearest_tour or (dist, amap_id) < nearest_tour[farm_id]:
                nearest_tour[farm_id] = (float(dist), amap_id)  # the lowest AMAP id on a tie
            rings[farm_id] += dist <= np.asarray(RINGS_KM) * 1000.0

    columns: dict[str, list] = defaultdict(list)
    lons, lats = [], []
    no_tour = (math.inf, 0)
    for pk, distance, radius_km, capacity, lon, lat in farm_rows:
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
    for pk, farm_id, distance, radius_km, weekdays, shares, capacity, lon, lat in annonce_rows:
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
    names = dict(Amap.objects.filter(pk__in={t[1] for t in nearest_tour.values()}).values_list("pk", "name"))
    return engine.CandidateTable.from_columns(columns), {"amap_names": names, "lons": lons, "lats": lats}


def candidates(query: Query, bits: ProductBits | None = None):
    """(need, table, extras) for a query: every candidate point the database holds within reach."""
    bits = bits or product_bits()
    need = need_of(query, bits)
    if need.products_mask == 0:
        return need, engine.CandidateTable.from_rows([]), {"amap_names": {}, "lons": [], "lats": []}
    if query.kind == engine.FARM_SEEKS_AMAP:
        table, extras = _amap_candidates(query, need, bits)
    else:
        table, extras = _farm_candidates(query, need, bits)
    return need, table, extras


ACTIVE = "active"  # matches_for(ranker=ACTIVE): the stored active model, if any


def active_ranker() -> LinearRanker | None:
    """The active learned ranking with the highest version; None: the engine's fixed weights."""
    row = MatchingModel.objects.filter(is_active=True).order_by("-version").first()
    if row is None:
        return None
    return LinearRanker.from_json(row.parameters, version=row.version)


def matches_for(
    query: Query, *, limit: int = 10, with_drive_times: bool = True, ranker: LinearRanker | str | None = ACTIVE
) -> list[MatchResult]:
    """The ranked counterparts for a query (best first), with reasons, distance and drive time.

    `ranker`: ACTIVE (the stored model, else fixed weights), a given `LinearRanker`, or None (fixed weights).
    """
    limit = max(0, min(int(limit), MAX_MATCHES))
    bits = product_bits()
    need, table, extras = candidates(query, bits)
    if len(table) == 0:
        return []
    if ranker == ACTIVE:
        ranker = active_ranker()
    scored = engine.score_table(need, table, ranker)
    top = engine.rank(table, scored, limit=limit)
    if top.size == 0:
        return []
    is_farm_annonce = query.kind == engine.FARM_SEEKS_AMAP
    ids = [int(table.org_id[i]) for i in top]
    if is_farm_annonce:
        names = dict(Amap.objects.filter(pk__in=ids).values_list("pk", "name"))
    else:
        names = dict(Farm.objects.filter(pk__in=ids).values_list("pk", "name"))
    ctx = reasons.ReasonContext(
        product_names=bits.name_of_bit,
        amap_names=extras["amap_names"],
        annonce_amap_id=query.amap.pk if query.amap is not None else None,
    )
    lons, lats = extras["lons"], extras["lats"]
    distances = [float(table.distance_m[i]) for i in top]
    if not is_farm_annonce:
        # Measured to the farm's public point, and shown to 100 m only.
        distances = [round(d, -2) for d in distances]
    if with_drive_times:
        # From and to public points only (a farm's masked point is a few hundred metres off).
        destinations = [(lons[i], lats[i]) for i in top]
        drives = routing.drive_times(
            origin=(query.origin.x, query.origin.y), destinations=destinations, distances_m=distances
        )
    else:
        drives = [routing.estimate(d) for d in distances]
    results = []
    for position, row in enumerate(top):
        drive = drives[position]
        if scored.contributions is None:
            texts = reasons.reasons_for(need, table, int(row), ctx)
            texts[0] = reasons.distance_and_drive(texts[0], routing.describe(drive))
        else:
            texts = reasons.reasons_by_contribution(
                need, table, int(row), ctx, scored.contributions[row], drive_text=routing.describe(drive)
            )
        results.append(
            MatchResult(
                counterpart_type="amap" if is_farm_annonce else "farm",
                counterpart_id=int(table.org_id[row]),
                name=names.get(int(table.org_id[row]), ""),
                score=round(float(scored.score[row]), 4),
                components=engine.components_for(scored, int(row)),
                reasons=texts,
                distance_m=round(distances[position], 1),
                drive_minutes=drive.minutes,
                drive_source=drive.source,
                lon=lons[row],
                lat=lats[row],
                annonce_id=int(table.annonce_id[row]) or None,
            )
        )
    return results


def matches_for_annonce(*, annonce: Annonce, limit: int = 10, with_drive_times: bool = True) -> list[MatchResult]:
    return matches_for(Query.for_annonce(annonce), limit=limit, with_drive_times=with_drive_times)
