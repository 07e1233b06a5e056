"""What the bulk path's pruning needs to know about the score: an additive key and its bounds.

The bulk path proves that the points it did not examine cannot enter an annonce's top k by
bounding each point's key (the score, or the learned logit: `engine.Scored.key`) as
    key ≤ distance_part(d) + point bound + annonce offset + tour gain,
where distance_part decreases with the distance d from the annonce, the point bound depends on
the point alone (`Points.bound`), the offset on the annonce alone, and the tour gain — what an
existing delivery tour adds — is 0 beyond `tour_reach_m` of the farm's delivery points and at
most `ring_gain(σ)` for a point at least σ from them. Two shapes:
- `FixedBounds`: the engine's fixed WEIGHTS (score in [0, 1], synergy decaying over 15 km);
- `LearnedBounds`: a `LinearRanker` whose coefficients keep the signs training enforces
  (farther is worse, nearer to a delivery point and more delivery points around are better, a
  longer marginal detour is worse). The detour's part is at most 0; where the farm's loops are
  known to be within s of it, a place x away adds at least 2·(x − s) to them, and `reach` counts
  that part with the distance's. An approximate detour carries its own error (`key_error`).
"""

from __future__ import annotations

import math

import numpy as np

from .. import engine
from ..learning.features import INDEX, RINGS_KM, detour_feature
from .distances import SCORE_MARGIN

# Learned point bounds are rounded up to this step: a few tiers of KD-trees, not one per value.
BOUND_STEP = 0.05
HALF_EARTH_M = 20_040_000.0  # no two points are farther apart
# Relative errors the approximate pass may make (see distances.py): local-plane distances < 2e-4,
# sphere distances to delivery points < 0.6 % (0.61 % with rounding); each moves a log1p feature by
# at most that much.
DISTANCE_ERROR = 2e-4
SPHERE_ERROR = 0.0061


def _component_maxima(kind, *, is_annonce, weekdays, size, openness):
    """Per point, the weekday and size-and-openness components at their most (as `score_table` makes them)."""
    weekday = np.where(weekdays != 0, 1.0, 0.5)
    size_bound = np.where(np.isnan(size), 0.5, 1.0)
    if kind == engine.FARM_SEEKS_AMAP:
        size_openness = (size_bound + np.where(np.isnan(openness), 0.5, openness)) / 2.0
    else:
        size_openness = size_bound
    return weekday, size_openness, np.asarray(is_annonce, dtype=np.float64)


class FixedBounds:
    """The fixed weights: key = score = Σ WEIGHTS × component."""

    ranker = None
    margin = SCORE_MARGIN
    needs_rings = False
    needs_detour = False

    @property
    def tour_reach_m(self) -> float:
        return engine.synergy_radius_m()

    def point_bound(self, kind, *, is_annonce, weekdays, size, openness, farm_tours) -> np.ndarray:
        synergy = 0.0 if kind == engine.FARM_SEEKS_AMAP else (np.asarray(farm_tours) > 0)
        return engine.bound_without_distance(
            kind, is_annonce=is_annonce, weekdays=weekdays, size=size, openness=openness, synergy=synergy
        )

    def distance_part(self, metres) -> np.ndarray:
        return engine.WEIGHTS["distance"] * engine.distance_score(metres)

    def reach(self, need, detour_offset=None) -> np.ndarray:
        """The farthest distance at which distance_part still reaches `need` (no detour in these weights)."""
        return engine.distance_for_score(np.asarray(need, dtype=np.float64) / engine.WEIGHTS["distance"])

    def offset(self, kind, farm_tours) -> np.ndarray:
        return np.zeros(len(farm_tours))

    def tour_gain_max(self, farm_tours) -> np.ndarray:
        return engine.WEIGHTS["tour_synergy"] * (np.asarray(farm_tours) > 0)

    def key_error(self, table) -> np.ndarray:
        return np.zeros(len(table))

    def within_gain(self, farm_tours, inner_m=None) -> np.ndarray:
        return np.zeros(np.shape(farm_tours))

    def ring_gain(self, inner_m, farm_tours) -> np.ndarray:
        """The most the tour can add to a point at least `inner_m` from the farm's delivery points."""
        gain = engine.WEIGHTS["tour_synergy"] * np.clip(1.0 - np.asarray(inner_m) / self.tour_reach_m, 0.0, 1.0)
        return gain * (np.asarray(farm_tours) > 0)


class LearnedBounds:
    """A linear ranker: key = logit = intercept + Σ β × feature (`matching.learning.features`)."""

    tour_reach_m = RINGS_KM[-1] * 1000.0  # beyond, nearest_delivery is capped and every ring count is 0

    def __init__(self, ranker) -> None:
        self.ranker = ranker
        beta = ranker.coef_vector()
        self.beta = {name: float(beta[i]) for name, i in INDEX.items()}
        b = self.beta
        signs = (("log_distance", -1), ("nearest_delivery", -1), ("marginal_detour", -1))
        wrong = [name for name, sign in signs if b[name] * sign < 0] + [
            f"within_{int(km)}" for km in RINGS_KM if b[f"within_{int(km)}"] < 0
        ]
        if wrong:
            # Training never stores such a model (features.LEARNED_SIGNS): the bounds below need these signs.
            raise ValueError(f"the bulk path cannot bound a ranker with these signs: {', '.join(wrong)}")
        self.margin = 2.0 * (-b["log_distance"] * DISTANCE_ERROR - b["nearest_delivery"] * SPHERE_ERROR) + 1e-6
        self.needs_rings = any(b[f"within_{int(km)}"] != 0 for km in RINGS_KM)
        # The detour's part is at most 0 (farther is worse, a detour is never negative): the bounds
        # below leave it out. Where it is approximate, each row carries its own error (`key_error`).
        self.needs_detour = b["marginal_detour"] != 0
        self.cap = math.log1p(RINGS_KM[-1])

    def detour_part(self, detour_m) -> np.ndarray:
        return self.beta["marginal_detour"] * detour_feature(detour_m)

    def key_error(self, table) -> np.ndarray:
        """Per row, how far the key may be from the exact one because of an approximate detour."""
        low = np.maximum(table.detour_m - table.detour_error_m, 0.0)
        with np.errstate(invalid="ignore"):
            error = self.detour_part(low) - self.detour_part(table.detour_m + table.detour_error_m)
        return np.where(table.detour_error_m > 0, error, 0.0)

    def within_gain(self, farm_tours, inner_m=None) -> np.ndarray:
        """The most the ring counts can add (for points at least `inner_m` from every delivery point)."""
        n = np.log1p(np.asarray(farm_tours, dtype=np.float64))
        gain = np.zeros(np.broadcast(n, 0.0 if inner_m is None else inner_m).shape)
        for km in RINGS_KM:
            part = self.beta[f"within_{int(km)}"] * n
            gain = gain + (part if inner_m is None else np.where(np.asarray(inner_m) <= km * 1000.0, part, 0.0))
        return gain

    def point_bound(self, kind, *, is_annonce, weekdays, size, openness, farm_tours) -> np.ndarray:
        b = self.beta
        weekday, size_openness, reciprocal = _component_maxima(
            kind, is_annonce=is_annonce, weekdays=weekdays, size=size, openness=openness
        )
        bound = (
            self.ranker.intercept
            + max(b["product_fit"], 0.0)  # product fit in [0, 1]
            + b["weekday"] * weekday
            + np.maximum(b["size_openness"] * size_openness, 0.0)
            + b["reciprocal"] * reciprocal
            + b["nearest_delivery"] * self.cap  # no delivery point near: the tour gain is added apart
        )
        if kind == engine.AMAP_SEEKS_FARM:
            # The candidate is the farm: its partners and its whole tour gain belong to the point.
            bound = bound + b["partners"] * np.log1p(np.asarray(farm_tours, dtype=np.float64))
            bound = bound + self.tour_gain_max(farm_tours)
        return np.ceil(bound / BOUND_STEP) * BOUND_STEP

    def distance_part(self, metres) -> np.ndarray:
        return self.beta["log_distance"] * np.log1p(np.maximum(np.asarray(metres, dtype=np.float64), 0.0) / 1000.0)

    def reach(self, need, detour_offset=None) -> np.ndarray:
        """The farthest distance d at which the distance's part still reaches `need`; where
        `detour_offset` δ is given (not nan), with the detour's part of an out-and-back from a farm
        at most δ from the annonce (a detour of at least 2·(d − δ))."""
        need = np.asarray(need, dtype=np.float64)
        beta = self.beta["log_distance"]
        if beta == 0.0:
            metres = np.where(need <= 0.0, math.inf, -1.0)
        else:
            with np.errstate(over="ignore"):
                metres = np.where(need <= 0.0, 1000.0 * np.expm1(need / beta), -1.0)
        if detour_offset is None or self.beta["marginal_detour"] == 0.0:
            return metres
        delta = np.broadcast_to(np.asarray(detour_offset, dtype=np.float64), need.shape)
        rows = np.flatnonzero(np.isfinite(delta) & (metres > 0.0))
        if rows.size == 0:
            return metres
        # distance part + detour part decreases with d: bisection below the distance's own reach,
        # keeping the upper end (never too short a search; 20 halvings leave it within a millionth).
        low, high, target, shift = np.zeros(rows.size), np.minimum(metres[rows], HALF_EARTH_M), need[rows], delta[rows]
        b_distance, b_detour = self.beta["log_distance"], self.beta["marginal_detour"]
        for _step in range(20):
            middle = (low + high) * 0.5
            part = b_distance * np.log1p(middle / 1000.0) + b_detour * np.log1p(np.maximum(middle - shift, 0.0) / 500.0)
            ok = part >= target
            low = np.where(ok, middle, low)
            high = np.where(ok, high, middle)
        metres = metres.copy()
        metres[rows] = high
        return metres

    def offset(self, kind, farm_tours) -> np.ndarray:
        """A farm annonce's own farm: its number of partners is the same for every candidate AMAP."""
        if kind == engine.AMAP_SEEKS_FARM:
            return np.zeros(len(farm_tours))
        return self.beta["partners"] * np.log1p(np.asarray(farm_tours, dtype=np.float64))

    def tour_gain_max(self, farm_tours) -> np.ndarray:
        gain = -self.beta["nearest_delivery"] * self.cap + self.within_gain(farm_tours)
        return np.where(np.asarray(farm_tours) > 0, gain, 0.0)

    def ring_gain(self, inner_m, farm_tours) -> np.ndarray:
        inner_km = np.minimum(np.asarray(inner_m, dtype=np.float64) / 1000.0, RINGS_KM[-1])
        gain = -self.beta["nearest_delivery"] * (self.cap - np.log1p(inner_km)) + self.within_gain(farm_tours, inner_m)
        return np.where(np.asarray(farm_tours) > 0, gain, 0.0)


def bounds_for(ranker) -> FixedBounds | LearnedBounds:
    return FixedBounds() if ranker is None else LearnedBounds(ranker)
