"""The match engine's rules and score, as pure functions over arrays.

Both paths feed the same functions: the request path (`matching.selectors`, one annonce,
candidates fetched from PostGIS with `ST_DWithin` on geography) and the bulk path
(`matching.bulk`, every open annonce, candidates from an in-memory KD-tree). A *candidate
table* holds one row per candidate point: an AMAP (or farm) of the directory, or one of its
own open annonces (the "reciprocal annonce", which may name another delivery place).

Score = Σ WEIGHTS[name] × component, every component in [0, 1], so the score is in [0, 1].
Each component comes with a sentence in French that states the fact it is made of
(worded in `matching.reasons`).

Reach: the annonce's radius and the counterpart's own (a farm's delivery radius, the radius of
the counterpart's annonce) are hard limits. A farm that never stated its radius (imported lists
rarely do) is not cut at a radius nobody gave: it is ranked by distance like any other, and its
reasons say "rayon de livraison non renseigné".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from django.conf import settings

from .learning.features import table_features
from .weekdays import ALL_DAYS, WEEKDAY_NAMES, mask_to_weekdays, weekdays_to_mask  # noqa: F401 - the engine's names

# The only place the weights live. Chosen a priori (not fitted to the Gironde data): distance
# matters most, then whether the product is really missing, an existing delivery tour
# nearby, and the counterpart's own annonce; weekday and size refine.
# The distance component decays with a fixed half distance (DISTANCE_HALF_KM), not relative
# to the annonce's radius: the radius says what is acceptable, not how much nearer is better.
# (Relative decay made a 5 km and a 15 km farm almost equal under a generous 300 km radius.)
WEIGHTS: dict[str, float] = {
    "distance": 0.30,
    "product_gap": 0.20,
    "tour_synergy": 0.15,
    "reciprocal": 0.15,
    "weekday": 0.10,
    "size_openness": 0.10,
}
assert math.isclose(sum(WEIGHTS.values()), 1.0)

COMPONENT_LABELS = {
    "distance": "distance",
    "product_gap": "produits manquants",
    "tour_synergy": "tournée existante",
    "reciprocal": "annonce réciproque",
    "weekday": "jour de livraison",
    "size_openness": "taille et ouverture",
}

FARM_SEEKS_AMAP = "paysan_cherche_amap"
AMAP_SEEKS_FARM = "amap_cherche_paysan"

# 20 km: about 25 minutes' drive by the estimate (1.3 circuity, 60 km/h), the scale of a weekly
# delivery trip. Set a priori; the leave-one-out recall@10 is the same from 10 to 40 km.
DISTANCE_HALF_KM = 20.0
DEFAULT_SHARES = 20  # size reference when the annonce does not say how many shares

# Openness of an AMAP for a new farmer, from `Amap.accepting_members`.
OPENNESS = {"open": 1.0, "waiting_list": 0.75, "unknown": 0.5, "full": 0.25}


def popcount(values: np.ndarray) -> np.ndarray:
    return np.bitwise_count(values.astype(np.uint64)).astype(np.float64)


def distance_score(distance_m):
    """1 at the door, halved every DISTANCE_HALF_KM (the same scale whatever the annonce's radius)."""
    return np.exp2(-np.asarray(distance_m, dtype=np.float64) / (DISTANCE_HALF_KM * 1000.0))


def distance_for_score(value):
    """The distance in metres at which `distance_score` equals `value` (inverse; inf for value <= 0)."""
    value = np.asarray(value, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        metres = -np.log2(value) * DISTANCE_HALF_KM * 1000.0
    return np.where(value > 0, metres, math.inf)


def synergy_radius_m() -> float:
    return float(getattr(settings, "MATCH_SYNERGY_RADIUS_KM", 15)) * 1000.0


@dataclass(frozen=True)
class Need:
    """What an annonce asks for, reduced to numbers."""

    kind: str  # FARM_SEEKS_AMAP or AMAP_SEEKS_FARM
    products_mask: int
    weekdays_mask: int  # ALL_DAYS when any day suits
    radius_m: float
    shares: int | None = None

    @property
    def any_day(self) -> bool:
        return self.weekdays_mask == ALL_DAYS


# The candidate table's columns and their types (one table whichever path builds it).
COLUMN_DTYPES = {
    "org_id": np.int64,
    "annonce_id": np.int64,
    "distance_m": np.float64,
    "reach_m": np.float64,
    "weekdays": np.int64,
    "product_mask": np.int64,
    "partnered_mask": np.int64,
    "declared_mask": np.int64,
    "size": np.float64,
    "openness": np.float64,
    "synergy_m": np.float64,
    "synergy_amap": np.int64,
    # The learned ranking's features about the farm's current delivery points (matching.learning):
    "partners": np.float64,
    "within_15": np.float64,
    "within_30": np.float64,
    "within_50": np.float64,
    "detour_m": np.float64,
}
# Columns a caller may leave out (0: no partner, no delivery point near; the detour: a new
# out-and-back over the distance); the fixed weights ignore them.
LEARNING_COLUMNS = ("partners", "within_15", "within_30", "within_50", "detour_m")


@dataclass
class CandidateTable:
    """Struct of arrays, one row per candidate point (see the module docstring)."""

    org_id: np.ndarray  # AMAP id (farm annonce) or farm id (AMAP annonce)
    annonce_id: np.ndarray  # the counterpart's own annonce at this point, 0 for the directory entry
    distance_m: np.ndarray  # true geodesic metres from the annonce's point
    reach_m: np.ndarray  # how far the counterpart itself accepts (inf: no limit of its own; nan: not stated)
    weekdays: np.ndarray  # bit mask; 0 = not known, ALL_DAYS = any day
    product_mask: np.ndarray  # AMAP: products it lists; farm: products it produces / offers
    # AMAP: products with an active partner; farm: products it already brings to the annonce's AMAP
    partnered_mask: np.ndarray
    declared_mask: np.ndarray  # products named in the counterpart's own annonce (0 for the directory entry)
    size: np.ndarray  # AMAP: households (members or interested); farm: shares it can supply; nan = unknown
    openness: np.ndarray  # AMAP openness in [0, 1]; nan for farms
    synergy_m: np.ndarray  # distance between the candidate and the farm's nearest existing delivery point (inf: none)
    synergy_amap: np.ndarray  # id of that delivery point's AMAP (0: none)
    partners: np.ndarray | None = None  # the farm's number of AMAPs supplied now
    within_15: np.ndarray | None = None  # how many of the farm's delivery points lie within 15 km of the AMAP
    within_30: np.ndarray | None = None
    within_50: np.ndarray | None = None
    # The marginal detour (`matching.detours`): geodesic metres the place adds to the farm's loops of its days.
    detour_m: np.ndarray | None = None
    # The bulk path's first pass approximates the detour: an upper bound of its error (0: exact).
    detour_error_m: np.ndarray | None = None

    def __post_init__(self) -> None:
        for name in LEARNING_COLUMNS:
            if getattr(self, name) is None:
                setattr(self, name, 2.0 * self.distance_m if name == "detour_m" else np.zeros(len(self.org_id)))
        if self.detour_error_m is None:
            self.detour_error_m = np.zeros(len(self.org_id))

    def __len__(self) -> int:
        return len(self.org_id)

    @classmethod
    def from_rows(cls, rows: list[dict]) -> CandidateTable:
        defaults = {
            "annonce_id": 0,
            "reach_m": math.inf,
            "weekdays": 0,
            "product_mask": 0,
            "partnered_mask": 0,
            "declared_mask": 0,
            "size": math.nan,
            "openness": math.nan,
            "synergy_m": math.inf,
            "synergy_amap": 0,
            **dict.fromkeys(LEARNING_COLUMNS, 0.0),
        }
        data = {
            name: np.array([row.get(name, defaults.get(name)) for row in rows], dtype=dtype)
            for name, dtype in COLUMN_DTYPES.items()
            if name != "detour_m" or any(name in row for row in rows)
        }
        return cls(**data)

    @classmethod
    def from_columns(cls, columns: dict[str, list]) -> CandidateTable:
        return cls(
            **{
                name: np.asarray(columns[name], dtype=dtype)
                for name, dtype in COLUMN_DTYPES.items()
                if name in columns or name not in LEARNING_COLUMNS
            }
        )

    def take(self, index: np.ndarray) -> CandidateTable:
        return CandidateTable(**{name: getattr(self, name)[index] for name in self.__dataclass_fields__})


@dataclass
class Scored:
    eligible: np.ndarray  # bool per row
    components: dict[str, np.ndarray]
    score: np.ndarray
    # The additive quantity the score grows with (the score itself, or the learned logit): the bulk
    # path's bounds are sums of parts of it. None: the score.
    key: np.ndarray | None = None
    # With a learned ranker: the rows' features, from which `contributions` are worked out when asked.
    features: np.ndarray | None = None
    ranker: object | None = None

    def __post_init__(self) -> None:
        if self.key is None:
            self.key = self.score

    @property
    def contributions(self) -> np.ndarray | None:
        """With a learned ranker: each feature's part of each row's score (rows × features), for the
        reasons (worked out only for the rows that get reasons: the bulk path scores millions more)."""
        if self.ranker is None:
            return None
        return self.ranker.contributions(self.features)

    def contributions_of(self, rows: np.ndarray) -> np.ndarray | None:
        return None if self.ranker is None else self.ranker.contributions(self.features[rows])


def _reference_shares(shares) -> np.ndarray | float:
    """The annonce's shares, DEFAULT_SHARES when not given (scalar None or nan in arrays)."""
    if shares is None:
        return float(DEFAULT_SHARES)
    values = np.asarray(shares, dtype=np.float64)
    values = np.where(np.isnan(values) | (values <= 0), float(DEFAULT_SHARES), values)
    return values if values.ndim else float(values)


def score_table(need: Need, table: CandidateTable, ranker=None) -> Scored:
    """Apply the rules (which rows may be proposed) and compute every component and the score.

    The Need's numbers may be scalars (one annonce) or arrays aligned with the table's rows
    (the bulk path scores many annonces' candidates at once). With a `ranker`
    (`matching.learning.ranker.LinearRanker`) the score is the learned one, from the same table;
    without, the fixed WEIGHTS.
    """
    products = np.asarray(need.products_mask, dtype=np.int64)
    wanted = np.maximum(1.0, popcount(products))
    radius_m = np.asarray(need.radius_m, dtype=np.float64)
    need_days = np.asarray(need.weekdays_mask, dtype=np.int64)
    shares = _reference_shares(need.shares)

    # Reach: the annonce's own radius, and the counterpart's (a farm's delivery radius, the
    # radius in the counterpart's annonce) unless it never stated one (nan).
    in_reach = (table.distance_m <= radius_m) & (np.isnan(table.reach_m) | (table.distance_m <= table.reach_m))

    # Weekday: an unknown day is possible but not a fit; a known day must be shared.
    known_day = table.weekdays != 0
    day_fit = (table.weekdays & need_days) != 0
    weekday_ok = ~known_day | day_fit
    weekday = np.where(known_day, 1.0, 0.5)

    if need.kind == FARM_SEEKS_AMAP:
        # Per offered product: missing at the AMAP (no active partner, not even listed) = 1,
        # listed without a partner on record = 0.5, already supplied = 0; the AMAP's own annonce
        # saying it wants the product counts as missing.
        declared = table.declared_mask & products
        free = products & ~table.partnered_mask
        missing = (free & ~table.product_mask) | declared
        half = free & table.product_mask & ~declared
        product_gap = (popcount(missing) + 0.5 * popcount(half)) / wanted
        product_ok = (missing | half) != 0
        size = np.where(np.isnan(table.size), 0.5, np.minimum(1.0, table.size / shares))
        openness = np.where(np.isnan(table.openness), 0.5, table.openness)
        size_openness = (size + openness) / 2.0
        capacity_ok = np.ones(len(table), dtype=bool)
    else:
        # Wanted products the farm produces and does not already bring to this AMAP.
        offered = products & table.product_mask & ~table.partnered_mask
        product_gap = popcount(offered) / wanted
        product_ok = offered != 0
        capacity_ok = ~(table.size <= 0)  # nan (unknown) passes
        size_openness = np.where(np.isnan(table.size), 0.5, np.minimum(1.0, table.size / shares))

    distance = distance_score(table.distance_m)  # true metres; no cut beyond the rules above
    synergy = np.clip(1.0 - table.synergy_m / synergy_radius_m(), 0.0, 1.0)
    synergy = np.where(np.isfinite(table.synergy_m), synergy, 0.0)
    reciprocal = (table.annonce_id != 0).astype(np.float64)

    components = {
        "distance": distance,
        "product_gap": product_gap,
        "tour_synergy": synergy,
        "reciprocal": reciprocal,
        "weekday": weekday,
        "size_openness": size_openness,
    }
    # A counterpart's own annonce only counts when it is about one of these products.
    annonce_ok = (table.annonce_id == 0) | ((table.declared_mask & products) != 0)
    eligible = in_reach & weekday_ok & product_ok & capacity_ok & annonce_ok
    if ranker is not None:
        features = table_features(table, components)
        logit = ranker.logit(features)
        return Scored(
            eligible=eligible,
            components=components,
            score=1.0 / (1.0 + np.exp(-logit)),
            key=logit,
            features=features,
            ranker=ranker,
        )
    score = sum(WEIGHTS[name] * values for name, values in components.items())
    return Scored(eligible=eligible, components=components, score=np.asarray(score, dtype=np.float64))


def bound_without_distance(
    kind: str, *, is_annonce: np.ndarray, weekdays: np.ndarray, size: np.ndarray, openness: np.ndarray, synergy
) -> np.ndarray:
    """Per candidate point, the most its score can be without the distance part, whatever the annonce.

    Mirrors `score_table` with each annonce-dependent component at its maximum (product gap 1,
    size 1 when known, tour synergy 1 where `synergy` may be non-zero). The bulk path uses it
    to prove that the points it did not examine cannot enter an annonce's top k.
    """
    weekday = np.where(weekdays != 0, 1.0, 0.5)
    size_bound = np.where(np.isnan(size), 0.5, 1.0)
    if kind == FARM_SEEKS_AMAP:
        size_openness = (size_bound + np.where(np.isnan(openness), 0.5, openness)) / 2.0
    else:
        size_openness = size_bound
    return (
        WEIGHTS["product_gap"]
        + WEIGHTS["tour_synergy"] * np.asarray(synergy, dtype=np.float64)
        + WEIGHTS["reciprocal"] * np.asarray(is_annonce, dtype=np.float64)
        + WEIGHTS["weekday"] * weekday
        + WEIGHTS["size_openness"] * size_openness
    )


def rank(table: CandidateTable, scored: Scored, *, limit: int | None = None) -> np.ndarray:
    """Row indexes of the eligible rows, best first, one per counterpart (its best point).

    Order: score descending, then distance, then id (stable and reproducible).
    """
    index = np.flatnonzero(scored.eligible)
    if index.size == 0:
        return index
    order = np.lexsort((table.annonce_id[index], table.org_id[index], table.distance_m[index], -scored.score[index]))
    index = index[order]
    _unique, first = np.unique(table.org_id[index], return_index=True)
    index = index[np.sort(first)]
    return index if limit is None else index[:limit]


def components_for(scored: Scored, row: int) -> dict[str, float]:
    return {name: round(float(values[row]), 4) for name, values in scored.components.items()}
