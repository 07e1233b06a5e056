"""Features of an (AMAP, farm, product) question, computed in bulk with numpy.

One definition (`feature_matrix`) serves three callers:
- the request path and the bulk path, from the engine's candidate table (`table_features`);
- training and its cross-validation, from an in-memory snapshot of the directory
  (`Snapshot`, `question_rows`), where the links of the AMAPs left out are hidden.

Features, each oriented as a user would expect ("closer is better", "more partners is better"):
- log_distance: log(1 + km) between the AMAP's delivery place and the farm's point;
- partners: log(1 + the farm's number of AMAPs supplied now);
- nearest_delivery: log(1 + km) from the AMAP to the farm's nearest current delivery point
  (capped at the widest ring: no delivery point counts as that far);
- within_15/30/50: log(1 + how many of the farm's delivery points lie within 15/30/50 km);
- marginal_detour: log(1 + km) the AMAP's place would add to the farm's delivery loops of its days
  (`matching.detours`: cheapest insertion into the day's estimated loop; with no loop those days,
  a new out-and-back from the farm);
- product_fit, weekday, size_openness, reciprocal: the engine's components of the same names.
Real links are long (median about 28 km) and farms that already supply several AMAPs supply more:
these are the signals besides distance that an imported directory holds.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from geo.sphere import GEOD

from ..detours import candidate_days, detour_m, farm_legs
from ..weekdays import ALL_DAYS, weekdays_to_mask

FEATURES = (
    "log_distance",
    "partners",
    "nearest_delivery",
    "within_15",
    "within_30",
    "within_50",
    "marginal_detour",
    "product_fit",
    "weekday",
    "size_openness",
    "reciprocal",
)
RINGS_KM = (15.0, 30.0, 50.0)
# Features the directory's partnerships teach (fitted) and the expected sign of each:
# a fitted coefficient of the other sign is not believed (the feature is dropped and the rest refitted).
LEARNED_SIGNS = {
    "log_distance": -1,
    "partners": 1,
    "nearest_delivery": -1,
    "within_15": 1,
    "within_30": 1,
    "within_50": 1,
    "marginal_detour": -1,
}
# Components imported lists hardly ever vary (no annonces, days or sizes on most rows): they keep a
# fixed weight, chosen a priori on the logit scale (1 ≈ the odds of a link almost tripled).
PRIOR_COEFFICIENTS = {"product_fit": 2.0, "weekday": 1.0, "size_openness": 1.0, "reciprocal": 1.0}
INDEX = {name: i for i, name in enumerate(FEATURES)}


def feature_matrix(
    *,
    distance_m,
    partners,
    nearest_m,
    within,
    product_fit,
    weekday,
    size_openness,
    reciprocal,
    detour_m=None,
) -> np.ndarray:
    """(n, len(FEATURES)) from columns; `within` is (n, len(RINGS_KM)) counts of delivery points;
    `detour_m` the marginal detour (None: a new out-and-back, twice the distance)."""
    distance_m = np.asarray(distance_m, dtype=np.float64)
    n = distance_m.shape[0]
    cap_m = RINGS_KM[-1] * 1000.0
    nearest = np.minimum(np.asarray(nearest_m, dtype=np.float64), cap_m)
    x = np.empty((n, len(FEATURES)), dtype=np.float64)
    x[:, INDEX["log_distance"]] = np.log1p(np.maximum(distance_m, 0.0) / 1000.0)
    x[:, INDEX["partners"]] = np.log1p(np.asarray(partners, dtype=np.float64))
    x[:, INDEX["nearest_delivery"]] = np.log1p(np.where(np.isnan(nearest), cap_m, nearest) / 1000.0)
    within = np.asarray(within, dtype=np.float64).reshape(n, len(RINGS_KM))
    for j, km in enumerate(RINGS_KM):
        x[:, INDEX[f"within_{int(km)}"]] = np.log1p(within[:, j])
    detour_m = 2.0 * distance_m if detour_m is None else np.asarray(detour_m, dtype=np.float64)
    x[:, INDEX["marginal_detour"]] = detour_feature(detour_m)
    for name, values in (
        ("product_fit", product_fit),
        ("weekday", weekday),
        ("size_openness", size_openness),
        ("reciprocal", reciprocal),
    ):
        x[:, INDEX[name]] = np.broadcast_to(np.asarray(values, dtype=np.float64), (n,))
    return x


def detour_feature(detour_m):
    """log(1 + km) of a marginal detour in metres."""
    return np.log1p(np.maximum(np.asarray(detour_m, dtype=np.float64), 0.0) / 1000.0)


def table_features(table, components: dict[str, np.ndarray]) -> np.ndarray:
    """Features of every row of an engine candidate table (its `components` from `score_table`)."""
    return feature_matrix(
        distance_m=table.distance_m,
        partners=table.partners,
        nearest_m=table.synergy_m,
        within=np.column_stack([table.within_15, table.within_30, table.within_50]),
        product_fit=components["product_gap"],
        weekday=components["weekday"],
        size_openness=components["size_openness"],
        reciprocal=components["reciprocal"],
        detour_m=table.detour_m,
    )


def delivery_rings(distances_m: np.ndarray, owners: np.ndarray, n: int):
    """Per owner (0..n-1): nearest of its delivery points (inf: none) and counts within each ring.

    `distances_m[i]` is the distance from the question's point to delivery point i of owner `owners[i]`.
    """
    nearest = np.full(n, np.inf)
    within = np.zeros((n, len(RINGS_KM)))
    if len(distances_m):
        np.minimum.at(nearest, owners, distances_m)
        for j, km in enumerate(RINGS_KM):
            close = distances_m <= km * 1000.0
            within[:, j] = np.bincount(owners[close], minlength=n)
    return nearest, within


# --------------------------------------------------------------------------- training snapshot


@dataclass
class Snapshot:
    """The directory as arrays: active AMAPs, active located farms, their active partnerships.

    Farms are placed at their public point (the masked point), as everything public is measured.
    """

    amap_id: np.ndarray
    amap_lon: np.ndarray
    amap_lat: np.ndarray
    farm_id: np.ndarray
    farm_lon: np.ndarray
    farm_lat: np.ndarray
    farm_capacity: np.ndarray  # nan: unknown
    farms_of_product: dict[int, np.ndarray]  # product id → farm indexes producing it
    link_id: np.ndarray  # Partnership pk
    link_amap: np.ndarray  # AMAP index
    link_farm: np.ndarray  # farm index
    link_product: np.ndarray  # product id
    amap_days: np.ndarray | None = None  # each AMAP's delivery weekdays as a bit mask (0 or None: not known)

    def __post_init__(self) -> None:
        if self.amap_days is None:
            self.amap_days = np.zeros(len(self.amap_id), dtype=np.int64)

    def links_of(self, amap_indexes) -> np.ndarray:
        return np.flatnonzero(np.isin(self.link_amap, np.asarray(list(amap_indexes), dtype=np.int64)))


def load_snapshot(*, source: str | None = None) -> Snapshot:
    """Read the directory (a few queries). `source` limits the AMAPs (and so the links) to one import."""
    from directory.models import Amap, Farm, Partnership

    amaps = Amap.objects.active()
    if source:
        amaps = amaps.filter(source=source)
    amap_rows = list(amaps.order_by("pk").values_list("pk", "location", "delivery_weekdays"))
    farm_rows = list(
        Farm.objects.active()
        .exclude(public_location=None)
        .order_by("pk")
        .values_list("pk", "public_location", "capacity_shares")
    )
    amap_id = np.array([r[0] for r in amap_rows], dtype=np.int64)
    farm_id = np.array([r[0] for r in farm_rows], dtype=np.int64)
    amap_pos = {pk: i for i, pk in enumerate(amap_id.tolist())}
    farm_pos = {pk: i for i, pk in enumerate(farm_id.tolist())}
    by_product: dict[int, list[int]] = defaultdict(list)
    for farm_pk, product_pk in Farm.products.through.objects.filter(farm_id__in=farm_pos).values_list(
        "farm_id", "productcategory_id"
    ):
        by_product[product_pk].append(farm_pos[farm_pk])
    links = [
        (pk, amap_pos[a], farm_pos[f], p)
        for pk, a, f, p in Partnership.objects.active()
        .filter(amap_id__in=amap_pos, farm_id__in=farm_pos)
        .order_by("pk")
        .values_list("pk", "amap_id", "farm_id", "product_id")
    ]
    links_array = np.array(links, dtype=np.int64).reshape(len(links), 4)
    return Snapshot(
        amap_id=amap_id,
        amap_lon=np.array([r[1].x for r in amap_rows], dtype=np.float64),
        amap_lat=np.array([r[1].y for r in amap_rows], dtype=np.float64),
        farm_id=farm_id,
        farm_lon=np.array([r[1].x for r in farm_rows], dtype=np.float64),
        farm_lat=np.array([r[1].y for r in farm_rows], dtype=np.float64),
        farm_capacity=np.array([np.nan if r[2] is None else r[2] for r in farm_rows], dtype=np.float64),
        farms_of_product={p: np.array(sorted(set(v)), dtype=np.int64) for p, v in by_product.items()},
        link_id=links_array[:, 0],
        link_amap=links_array[:, 1],
        link_farm=links_array[:, 2],
        link_product=links_array[:, 3],
        amap_days=np.array([weekdays_to_mask(r[2]) for r in amap_rows], dtype=np.int64),
    )


def _from(lon: float, lat: float, lons: np.ndarray, lats: np.ndarray) -> np.ndarray:
    if lons.size == 0:
        return np.zeros(0)
    return np.asarray(GEOD.inv(np.full(lons.shape, lon), np.full(lats.shape, lat), lons, lats)[2], dtype=np.float64)


@dataclass
class Question:
    """One "AMAP cherche paysan: <product>" asked from an AMAP, with its candidates' features."""

    amap: int  # AMAP index
    product: int  # product id
    farms: np.ndarray  # candidate farm indexes (producing the product, within the radius)
    x: np.ndarray  # (len(farms), len(FEATURES))
    partners: set[int]  # the farm indexes really linked to this AMAP for this product
    distance_m: np.ndarray


def questions_for_amap(snapshot: Snapshot, amap: int, *, hidden: np.ndarray, radius_km: float) -> list[Question]:
    """The questions of one AMAP, one per product it gets, its own links and `hidden` links unseen.

    Features only ever read the links not hidden: the AMAP's own (it is the one asking, as in the
    leave-one-out protocol) and those of `hidden` (link indexes: the AMAPs left out of training).
    """
    s = snapshot
    own = np.flatnonzero(s.link_amap == amap)
    if own.size == 0:
        return []
    visible = np.ones(len(s.link_id), dtype=bool)
    visible[own] = False
    visible[hidden] = False
    # Delivery points: distinct (farm, AMAP) pairs among visible links.
    pairs = np.unique(np.column_stack([s.link_farm[visible], s.link_amap[visible]]), axis=0).reshape(-1, 2)
    n_farms = len(s.farm_id)
    partners = np.bincount(pairs[:, 0], minlength=n_farms).astype(np.float64)
    lon, lat = s.amap_lon[amap], s.amap_lat[amap]
    to_amaps = _from(lon, lat, s.amap_lon, s.amap_lat)
    nearest, within = delivery_rings(to_amaps[pairs[:, 1]], pairs[:, 0], n_farms)
    to_farms = _from(lon, lat, s.farm_lon, s.farm_lat)
    size = np.where(np.isnan(s.farm_capacity), 0.5, np.minimum(1.0, s.farm_capacity / 20.0))
    asked = {}
    for product in sorted(set(s.link_product[own].tolist())):
        linked = set(s.link_farm[own[s.link_product[own] == product]].tolist())
        producing = s.farms_of_product.get(product, np.zeros(0, dtype=np.int64))
        farms = np.union1d(producing, np.array(sorted(linked), dtype=np.int64))
        asked[product] = (linked, farms[to_farms[farms] <= radius_km * 1000.0])
    # The marginal detour of the AMAP's place for every farm asked about, through the loops of the
    # AMAP's delivery days built from the visible links only (a directory farm's days are not known).
    everyone = np.unique(np.concatenate([farms for _linked, farms in asked.values()])) if asked else np.zeros(0, int)
    detour = np.full(n_farms, np.nan)
    if everyone.size:
        local = np.full(n_farms, -1, dtype=np.int64)
        local[everyone] = np.arange(everyone.size)
        stops = pairs[local[pairs[:, 0]] >= 0]
        legs = farm_legs(
            depot_lon=s.farm_lon[everyone],
            depot_lat=s.farm_lat[everyone],
            stop_farm=local[stops[:, 0]],
            stop_id=s.amap_id[stops[:, 1]],
            stop_lon=s.amap_lon[stops[:, 1]],
            stop_lat=s.amap_lat[stops[:, 1]],
            stop_days=s.amap_days[stops[:, 1]],
        )
        days = candidate_days(np.zeros(everyone.size, dtype=np.int64), int(s.amap_days[amap]) or ALL_DAYS)
        detour[everyone], _error = detour_m(
            legs,
            np.arange(everyone.size),
            np.full(everyone.size, lon),
            np.full(everyone.size, lat),
            days,
            s.farm_lon[everyone],
            s.farm_lat[everyone],
        )
    questions = []
    for product, (linked, farms) in asked.items():
        x = feature_matrix(
            distance_m=to_farms[farms],
            partners=partners[farms],
            nearest_m=nearest[farms],
            within=within[farms],
            product_fit=1.0,  # one product asked, produced, not yet supplied (the AMAP's links are hidden)
            weekday=0.5,  # a directory farm's days are not known
            size_openness=size[farms],
            reciprocal=0.0,
            detour_m=detour[farms],
        )
        questions.append(
            Question(
                amap=amap,
                product=product,
                farms=farms,
                x=x,
                partners=linked & set(farms.tolist()),
                distance_m=to_farms[farms],
            )
        )
    return questions
