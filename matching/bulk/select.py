"""Selection: score the candidate pairs with the engine and keep the k best of each annonce,
exactly those of the request path."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from django.conf import settings

from geo.sphere import geodesic_m, unit_xyz

from .. import engine
from ..detours import candidate_days, detour_m, exact_distance
from .bounds import SPHERE_ERROR
from .distances import approx_distance_m, approx_distance_with_error, refine_boundary
from .load import Directory, index_of, need_for, pair_products
from .reasons import reasons_json
from .search import Points, nearest_pass, query_keys, widening_pass
from .tours import nearest_tour, tour_rings


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


def _kth_scores(q_index: np.ndarray, table, scored, k: int, n_queries: int, error=None) -> np.ndarray:
    """Per query, the k-th best key (`Scored.key`, one row per counterpart), -inf when fewer than k
    qualify among its 2k best rows (then a lower bound: enough for what it is used for).

    With a learned ranking the rows are ordered by the key itself (the logit); with `error` (per
    row, from an approximate detour) by the lowest key each row may have."""
    kth = np.full(n_queries, -np.inf)
    top = np.flatnonzero(scored.eligible)
    if top.size == 0:
        return kth
    key = scored.key if error is None else scored.key - error
    if error is None and scored.key is scored.score:
        top = top[np.argsort(q_index[top] * 2.0 - scored.score[top])]  # scores in [0, 1]: best first per query
    else:
        top = top[np.lexsort((-key[top], q_index[top]))]  # a logit: a sigmoid near 1 would blur its order
    top = _first_k_per_query(q_index, top, 2 * k)
    # A counterpart's first row is its best: unique keeps first occurrences, in this order.
    _u, first = np.unique(q_index[top] * (int(table.org_id.max()) + 1) + table.org_id[top], return_index=True)
    top = _first_k_per_query(q_index, top[np.sort(first)], k)
    queries = q_index[top]
    ends = np.r_[np.flatnonzero(np.diff(queries)), len(top) - 1]
    starts = np.r_[0, ends[:-1] + 1]
    full = (ends - starts + 1) == k
    kth[queries[ends[full]]] = key[top[ends[full]]]
    return kth


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
            partners=_farm_tours(d, d.ann_org[q]).astype(np.float64),
        )
    offered = np.where(own, d.ann_products[own_row], d.farm_products[org])
    return engine.CandidateTable(
        partners=d.tour_count[org].astype(np.float64),
        org_id=points.org_id[p],
        annonce_id=np.where(own, d.ann_id[own_row], 0),
        distance_m=distance,
        reach_m=np.where(own, d.ann_radius_m[own_row], d.farm_radius_m[org]),
        weekdays=np.where(own, np.where(own_days == 0, engine.ALL_DAYS, own_days), 0),
        product_mask=offered,
        partnered_mask=pair_products(d, d.ann_org[q], points.org_id[p]),
        declared_mask=np.where(own, offered, 0),
        size=np.where(own & ~np.isnan(own_shares), own_shares, d.farm_capacity[org]),
        openness=np.full(n, math.nan),
        synergy_m=np.full(n, math.inf),
        synergy_amap=np.zeros(n, dtype=np.int64),
    )


def _farm_tours(d: Directory, farm_ids: np.ndarray) -> np.ndarray:
    """How many AMAPs each farm supplies now (0 for a farm not in the arrays)."""
    farm_index = index_of(d.farm_id, farm_ids)
    return np.where(farm_index >= 0, d.tour_count[np.maximum(farm_index, 0)], 0)


def _row_tours(d: Directory, kind: str, q, table) -> np.ndarray:
    """Per row, the number of delivery points of the farm whose tour the row is measured against."""
    if kind == engine.FARM_SEEKS_AMAP:
        return _farm_tours(d, d.ann_org[q])
    return _farm_tours(d, table.org_id)


def _pair_places(d: Directory, kind: str, points: Points, q, p):
    """(farm index, place lon, lat, farm's public point lon, lat) of each pair: the farm whose delivery
    points and loops are measured, and the AMAP place measured against them."""
    if kind == engine.FARM_SEEKS_AMAP:
        # The candidate AMAP against the annonce's farm (its annonce's place when it has no public point).
        farm_index = index_of(d.farm_id, d.ann_org[q])
        lon, lat = points.lon[p], points.lat[p]
        known = farm_index >= 0
        depot_lon = np.where(known, d.farm_lon[np.maximum(farm_index, 0)], d.ann_lon[q])
        depot_lat = np.where(known, d.farm_lat[np.maximum(farm_index, 0)], d.ann_lat[q])
    else:
        # The asking AMAP's place against the candidate farm.
        farm_index = points.org_index[p]
        lon, lat = d.ann_lon[q], d.ann_lat[q]
        depot_lon, depot_lat = d.farm_lon[farm_index], d.farm_lat[farm_index]
    return farm_index, lon, lat, depot_lon, depot_lat


def _detour_range(d: Directory, kind: str, points: Points, q, p, table):
    """(most, least) the marginal detour of each pair can be, before its loops are looked at.

    At most the out-and-back from the farm; at least 0 where the farm has a loop on one of the
    pair's days, else exactly that out-and-back (both with the approximation's error)."""
    farm_index, lon, lat, depot_lon, depot_lat = _pair_places(d, kind, points, q, p)
    out, error = approx_distance_with_error(lon, lat, depot_lon, depot_lat)
    days = candidate_days(table.weekdays, need_for(d, kind, q).weekdays_mask)
    has_loop = (farm_index >= 0) & ((d.loop_days[np.maximum(farm_index, 0)] & days) != 0)
    return 2.0 * (out + error), np.where(has_loop, 0.0, 2.0 * np.maximum(out - error, 0.0))


def _fill_synergy(
    d: Directory, kind: str, points: Points, q, p, table, bounds, *, exact: bool, rings: bool = True
) -> None:
    """The pairs' tour columns: nearest delivery point, the detour (approximate with its error
    bound, or `exact`: the request path's numbers) and, with `rings`, the ring counts."""
    farm_index, lon, lat, depot_lon, depot_lat = _pair_places(d, kind, points, q, p)
    table.synergy_m, table.synergy_amap = nearest_tour(d, farm_index, lon, lat, exact=exact)
    if bounds.needs_detour:
        days = candidate_days(table.weekdays, need_for(d, kind, q).weekdays_mask)
        distance = exact_distance if exact else approx_distance_with_error
        detour, error = detour_m(d.legs, farm_index, lon, lat, days, depot_lon, depot_lat, distance=distance)
        table.detour_m = detour
        table.detour_error_m = np.zeros(len(detour)) if error is None else error
    if rings and bounds.needs_rings:
        _fill_rings(d, kind, points, q, p, table)


def _fill_rings(d: Directory, kind: str, points: Points, q, p, table) -> None:
    farm_index, lon, lat, _depot_lon, _depot_lat = _pair_places(d, kind, points, q, p)
    within = tour_rings(d, farm_index, lon, lat)
    table.within_15, table.within_30, table.within_50 = within[:, 0], within[:, 1], within[:, 2]


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
    distance = refine_boundary(
        distance, (d.ann_radius_m[q], reach), d.ann_lon[q], d.ann_lat[q], points.lon[p], points.lat[p]
    )
    return _candidate_table(d, kind, points, q, p, distance)


def _contenders(d: Directory, kind: str, points: Points, queries, local_q, p, bounds, *, k: int, kth=None):
    """Score the pairs; keep the eligible ones that their tour could still lift to the k-th key
    (`kth`, or the k-th found among these pairs without their tour), and fill in their tour."""
    q = queries[local_q]
    table = _pairs_table(d, kind, points, q, p)
    lift = bounds.tour_gain_max(_row_tours(d, kind, q, table))
    if bounds.needs_detour:
        # Scored with the longest detour the pair may have (a key it surely reaches), lifted by the
        # most its loops could save.
        most, least = _detour_range(d, kind, points, q, p, table)
        table.detour_m = most
        lift = lift + bounds.detour_part(least) - bounds.detour_part(most)
    scored = engine.score_table(need_for(d, kind, q), table, bounds.ranker)
    if kth is None:
        kth = _kth_scores(local_q, table, scored, k, len(queries))
    keep = np.flatnonzero(scored.eligible & (scored.key + lift >= kth[local_q] - bounds.margin))
    local_q, p, table = local_q[keep], p[keep], table.take(keep)
    q = queries[local_q]
    _fill_synergy(d, kind, points, q, p, table, bounds, exact=False, rings=False)
    scored = engine.score_table(need_for(d, kind, q), table, bounds.ranker)
    if bounds.needs_rings:
        # Counting the delivery points around each pair costs the most: first the nearest one and
        # the detour, then the rings only for the pairs whose rings could still lift them to the
        # k-th key (no ring holds a point nearer than the nearest one).
        nearest = table.synergy_m / (1.0 + SPHERE_ERROR)
        lift = bounds.within_gain(_row_tours(d, kind, q, table), nearest) + bounds.key_error(table)
        keep = np.flatnonzero(scored.eligible & (scored.key + lift >= kth[local_q] - bounds.margin))
        local_q, p, table = local_q[keep], p[keep], table.take(keep)
        q = queries[local_q]
        _fill_rings(d, kind, points, q, p, table)
        scored = engine.score_table(need_for(d, kind, q), table, bounds.ranker)
    return local_q, p, table, scored


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    """np.unique by sorting (numpy's hash-based unique is many times slower on millions of int64)."""
    values = np.sort(values)
    return values[np.r_[True, values[1:] != values[:-1]]] if values.size else values


def _concat(tables: list[engine.CandidateTable]) -> engine.CandidateTable:
    names = engine.CandidateTable.__dataclass_fields__
    return engine.CandidateTable(**{name: np.concatenate([getattr(t, name) for t in tables]) for name in names})


def _concat_scored(a: engine.Scored, b: engine.Scored) -> engine.Scored:
    """Two passes' scores side by side (as scoring their tables side by side would give)."""
    return engine.Scored(
        eligible=np.concatenate((a.eligible, b.eligible)),
        components={name: np.concatenate((a.components[name], b.components[name])) for name in a.components},
        score=np.concatenate((a.score, b.score)),
        key=None if a.key is a.score else np.concatenate((a.key, b.key)),
        features=None if a.features is None else np.concatenate((a.features, b.features)),
        ranker=a.ranker,
    )


def select_k_best(d: Directory, kind: str, points: Points, queries: np.ndarray, k: int, first: int, report, bounds):
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
    local_q, p, opened = nearest_pass(points, xyz, radius, query_keys(d, side, queries), first)
    # A point in several searched sub-indexes (an AMAP delivering twice a week) counts once.
    seen = _sorted_unique(local_q * len(points.lon) + p)
    local_q, p = seen // len(points.lon), seen % len(points.lon)
    report.pairs += len(p)
    q1, p1, t1, s1 = _contenders(d, kind, points, queries, local_q, p, bounds, k=k)
    kth = _kth_scores(q1, t1, s1, k, len(queries), bounds.key_error(t1))

    extra_q, extra_p = widening_pass(d, kind, points, queries, xyz, opened, kth, bounds)
    if extra_q.size:
        key = _sorted_unique(extra_q * len(points.lon) + extra_p)
        key = key[~np.isin(key, seen, assume_unique=True, kind="sort")]
        extra_q, extra_p = key // len(points.lon), key % len(points.lon)
        report.widened += len(_sorted_unique(extra_q))
        report.pairs += len(extra_p)
    if extra_q.size:
        q2, p2, t2, s2 = _contenders(d, kind, points, queries, extra_q, extra_p, bounds, k=k, kth=kth)
        local_q, p, table = np.concatenate((q1, q2)), np.concatenate((p1, p2)), _concat([t1, t2])
        scored = _concat_scored(s1, s2)
    else:
        local_q, p, table, scored = q1, p1, t1, s1
    if local_q.size == 0:
        return None

    # Approximate distances move a key by less than half the margin (see SCORE_MARGIN, and
    # bounds.LearnedBounds.margin), an approximate detour by its row's own error: every row that
    # may be in the exact k best is within the margin of the approximate k-th key.
    error = bounds.key_error(table)
    kth = _kth_scores(local_q, table, scored, k, len(queries), error)
    keep = np.flatnonzero(scored.eligible & (scored.key + error >= kth[local_q] - bounds.margin))
    local_q, p, table = local_q[keep], p[keep], table.take(keep)
    q = queries[local_q]
    table.distance_m = geodesic_m(d.ann_lon[q], d.ann_lat[q], points.lon[p], points.lat[p])
    _fill_synergy(d, kind, points, q, p, table, bounds, exact=True)
    scored = engine.score_table(need_for(d, kind, q), table, bounds.ranker)
    top = _top_k(local_q, table, scored, k)
    if top.size == 0:
        return None
    return queries[local_q[top]], p[top], table.take(top)


def round_like_python(values: np.ndarray, digits: int) -> np.ndarray:
    """`round(value, digits)` of each value: numpy scales by 10**digits first, which can land a value
    just below a half on the other side (47.45 min: numpy 47.4, Python 47.5); those few are
    rounded by Python."""
    values = np.asarray(values, dtype=np.float64)
    rounded = np.round(values, digits)
    scaled = values * 10.0**digits
    near_half = np.flatnonzero(np.abs(scaled - np.floor(scaled) - 0.5) < 1e-6)
    if near_half.size:
        rounded[near_half] = [round(float(v), digits) for v in values[near_half]]
    return rounded


def finish(d: Directory, kind: str, q, table, bits, tour_names, cache: dict, bounds) -> BulkResult | None:
    need = need_for(d, kind, q)
    scored = engine.score_table(need, table, bounds.ranker)
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
    # As the request path: a farm's distance shown to 100 m, the drive time estimated from the
    # distance it shows (the AMAP's to the metre), both rounded as Python's round() does.
    distance = round_like_python(table.distance_m, -2) if is_farm else round_like_python(table.distance_m, 1)
    circuity = float(getattr(settings, "ROUTING_CIRCUITY_FACTOR", 1.3))
    speed = float(getattr(settings, "ROUTING_SPEED_KMH", 60.0))
    drive = round_like_python((distance if is_farm else table.distance_m) / 1000.0 * circuity / speed * 60.0, 1)

    contributions = scored.contributions_of(order)
    reasons = reasons_json(d, kind, q, table, drive, bits, tour_names, cache, contributions)
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
