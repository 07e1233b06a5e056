"""Search: candidate points in sub-indexes (KD-trees on the unit sphere), the first pass (the
nearest points within each annonce's radius) and the widening (every point that could still
reach the k-th score)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import cKDTree

from geo.sphere import geodesic_m, unit_xyz

from .. import engine
from .distances import SPHERE_MARGIN, arc_lower_m, chords_for_metres
from .load import Directory, index_of
from .tours import TOUR_RINGS

# --------------------------------------------------------------------------- candidate points


# Beyond this many tiers in a sub-index, one ball per annonce and a bound per point (see _one_ball).
MAX_TIERS = 16

# Beyond this many balls around one annonce's farm's delivery points, one ball around the annonce
# holding them all.
RING_BALLS_MAX = 4

# Detour offsets of farm points, rounded up to these (metres): a few tiers, not one per farm.
DETOUR_LEVELS = np.array([0.0, 5e3, 10e3, 20e3, 40e3, 80e3, 160e3])

# Below this many queries a KD-tree search runs in the calling thread: starting threads for a few
# queries cost more than they saved (pyinstrument, 100k × 100k: 20 s of thread starts in the widening).
PARALLEL_QUERIES = 4096


def _workers(queries: int) -> int:
    return -1 if queries >= PARALLEL_QUERIES else 1


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
    # Farm side: per point, an offset s such that the marginal detour of a place x from the point is
    # at least 2·(x − s) (`Directory.loop_spread`, plus the way to the farm's own point), rounded up
    # to one of DETOUR_LEVELS (inf: not known); the widening adds that detour's part to the distance's.
    detour_offset: np.ndarray | None = None
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

    def subtree_tiers(self, key: int) -> list[tuple[float, np.ndarray, cKDTree, float]]:
        """One sub-index split by `bound` (a few distinct values) and `detour_offset`:
        [(bound, members, KD-tree, detour offset)], highest bound first.

        Widening searches each tier only as far as its own bound requires.
        """
        if key not in self.tiers:
            members, _tree = self.subtree(key)
            levels = np.round(self.bound[members], 9)
            offsets = np.full(len(members), np.inf) if self.detour_offset is None else self.detour_offset[members]
            tiers = []
            for level in np.unique(levels)[::-1]:
                for offset in np.unique(offsets[levels == level]).tolist():
                    part = members[(levels == level) & (offsets == offset)]
                    tiers.append((float(self.bound[part].max()), part, cKDTree(self.xyz[part]), offset))
            self.tiers[key] = tiers
        return self.tiers[key]


def side_points(d: Directory, *, side: str, bounds) -> Points:
    """AMAP points (for farm annonces) or farm points (for AMAP annonces), with the live annonces."""
    if side == "amap":
        ids, lon, lat, kind, keys = d.amap_id, d.amap_lon, d.amap_lat, 1, d.amap_days
    else:
        ids, lon, lat, kind, keys = d.farm_id, d.farm_lon, d.farm_lat, 0, d.farm_products
    rows = np.flatnonzero(d.ann_kind == kind)
    org_index = index_of(ids, d.ann_org[rows])
    rows, org_index = rows[org_index >= 0], org_index[org_index >= 0]
    lon_all = np.concatenate((lon, d.ann_lon[rows]))
    lat_all = np.concatenate((lat, d.ann_lat[rows]))
    own_keys = d.ann_days[rows] if side == "amap" else d.ann_products[rows]
    keys_all = np.concatenate((keys, own_keys)).astype(np.int64)
    is_annonce = np.concatenate((np.zeros(len(ids), dtype=bool), np.ones(len(rows), dtype=bool)))
    all_index = np.concatenate((np.arange(len(ids)), org_index)).astype(np.int64)
    # The same columns `_candidate_table` gives the engine, for the bound.
    if side == "amap":
        bound = bounds.point_bound(
            engine.FARM_SEEKS_AMAP,
            is_annonce=is_annonce,
            weekdays=keys_all,
            size=np.concatenate((d.amap_members, d.ann_shares[rows])),
            openness=np.concatenate((d.amap_openness, np.ones(len(rows)))),
            farm_tours=None,  # points near the annonce's farm's delivery points are searched apart
        )
        keys_all = np.where(keys_all == 0, 1 << UNKNOWN_DAY_BIT, keys_all)
    else:
        shares = d.ann_shares[rows]
        bound = bounds.point_bound(
            engine.AMAP_SEEKS_FARM,
            is_annonce=is_annonce,
            weekdays=is_annonce.astype(np.int64),  # a farm annonce always has days (any day when none named)
            size=np.concatenate((d.farm_capacity, np.where(np.isnan(shares), d.farm_capacity[org_index], shares))),
            openness=np.full(len(is_annonce), math.nan),
            farm_tours=d.tour_count[all_index],  # a farm delivering nowhere yet has no tour gain
        )
    detour_offset = None
    if side == "farm" and bounds.needs_detour:
        to_farm = geodesic_m(lon_all, lat_all, d.farm_lon[all_index], d.farm_lat[all_index])
        spread = d.loop_spread.max(axis=1)[all_index] + to_farm * (1.0 + 1e-9) + 0.01 * (to_farm > 0)
        levels = np.searchsorted(DETOUR_LEVELS, spread)  # the first level at or above
        detour_offset = np.where(
            levels < len(DETOUR_LEVELS), DETOUR_LEVELS[np.minimum(levels, len(DETOUR_LEVELS) - 1)], np.inf
        )
    return Points(
        detour_offset=detour_offset,
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


def query_keys(d: Directory, side: str, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
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


@dataclass
class Open:
    """(annonce, sub-index) searches whose first pass was full: points beyond it were not examined."""

    q: np.ndarray  # local query row
    key: np.ndarray  # sub-index
    beyond_m: np.ndarray  # every unexamined point of that sub-index is at least this far (geodesic)


def nearest_pass(points: Points, xyz, q_radius_m, q_keys, first: int):
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
        dist, idx = tree.query(
            xyz[wanting], k=k, distance_upper_bound=float(own_chord.max()), workers=_workers(len(wanting))
        )
        dist, idx = np.asarray(dist).reshape(len(wanting), k), np.asarray(idx).reshape(len(wanting), k)
        found = dist <= own_chord[:, None]
        # Full: the k-th nearest is still within the radius, so more points may be.
        full = found[:, -1] & (k < tree.n)
        open_q.append(wanting[full])
        open_key.append(np.full(int(full.sum()), key, dtype=np.int64))
        open_beyond.append(arc_lower_m(dist[full, -1]))
        r, c = np.nonzero(found)
        q_rows.append(wanting[r])
        p_rows.append(members[idx[r, c]])
    opened = Open(np.concatenate(open_q), np.concatenate(open_key), np.concatenate(open_beyond))
    return np.concatenate(q_rows).astype(np.int64), np.concatenate(p_rows).astype(np.int64), opened


def _ball(tree: cKDTree, members: np.ndarray, centres: np.ndarray, radii_m: np.ndarray, owners: np.ndarray):
    """(owner, point index) for every member within radii_m (geodesic, chord inflated) of each centre."""
    found = tree.query_ball_point(
        centres, r=chords_for_metres(radii_m), workers=_workers(len(centres)), return_sorted=False
    )
    lengths = np.fromiter(map(len, found), dtype=np.int64, count=len(found))
    if lengths.sum() == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.repeat(owners, lengths), members[np.concatenate([np.asarray(f, dtype=np.int64) for f in found if f])]


def _one_ball(points: Points, key: int, q, xyz, beyond, kth, offset, radius, bounds, top_bound: float):
    """The widening of one sub-index in one ball per annonce (as far as its highest tier needs),
    its points then kept on their own bound: many tiers (farms, by their number of AMAPs and
    loops) cost one search each, most finding nothing."""
    members, tree = points.subtree(key)
    need = kth[q] - bounds.margin - top_bound - offset[q]
    reach = np.minimum(bounds.reach(need), radius[q])
    go = np.flatnonzero(reach >= beyond)
    if go.size == 0 or tree is None:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    found_q, found_p = _ball(tree, members, xyz[q[go]], reach[go], q[go])
    # Each point against its own bound, at the least distance it can be (a chord's lower bound);
    # those nearer than `beyond` were in the first pass (dropped with the other duplicates).
    chord = np.sqrt(((xyz[found_q] - points.xyz[found_p]) ** 2).sum(axis=1))
    distance = arc_lower_m(chord)
    part = bounds.distance_part(distance)
    if points.detour_offset is not None and bounds.needs_detour:
        spread = points.detour_offset[found_p]
        known = np.isfinite(spread)
        part = part + np.where(
            known, bounds.detour_part(2.0 * np.maximum(distance - np.where(known, spread, 0.0), 0.0)), 0.0
        )
    keep = part + points.bound[found_p] + offset[found_q] >= kth[found_q] - bounds.margin
    return found_q[keep], found_p[keep]


def _farm_annonce_detour_offset(d: Directory, queries, farm_index) -> np.ndarray:
    """Per farm annonce, s such that any candidate x from the annonce's place adds at least 2·(x − s)
    to its farm's loops of the annonce's days: the farm's distance δ to that place plus its loops'
    spread on those days (`Directory.loop_spread`; 0 without a loop: a new out-and-back)."""
    known = farm_index >= 0
    g = np.maximum(farm_index, 0)
    days = d.ann_days[queries]
    days = np.where(days == 0, engine.ALL_DAYS, days)
    on = (days[:, None] >> np.arange(7)[None, :]) & 1
    spread = np.where(known, (d.loop_spread[g] * on).max(axis=1), 0.0)
    depot_lon = np.where(known, d.farm_lon[g], d.ann_lon[queries])
    depot_lat = np.where(known, d.farm_lat[g], d.ann_lat[queries])
    delta = geodesic_m(d.ann_lon[queries], d.ann_lat[queries], depot_lon, depot_lat)
    return spread + delta * (1.0 + 1e-9) + 0.01 * (delta > 0)


def widening_pass(d: Directory, kind: str, points: Points, queries, xyz, opened: Open, kth, bounds):
    """(query row, point index): for each open search, every unexamined point that could still
    reach the annonce's k-th key (`kth`, a lower bound of it, less the bounds' margin).

    A point's key is at most distance_part(d) + its tier's bound + the annonce's offset + the
    tour gain, where the tour gain is > 0 only within s₀ (`bounds.tour_reach_m`) of one of the
    farm's delivery points (`matching.bulk.bounds`). So, tier by tier:
    - points at distance d with distance part + bound + offset ≥ kth (a ball around the annonce);
    - for a farm annonce, points within σ of one of its farm's delivery points T (t from the
      annonce): their distance is at least max(c, t − σ) (c: the distance already covered)
      and their tour gain at most `ring_gain(σ)` (a ball around T).
    On the farm side (AMAP annonces) a farm's bound already counts its whole tour gain when it
    delivers anywhere: farms delivering near an AMAP are too many to enumerate apart.
    """
    empty = np.zeros(0, dtype=np.int64)
    q_rows, p_rows = [empty], [empty]
    s0 = bounds.tour_reach_m
    radius = d.ann_radius_m[queries]
    margin = bounds.margin
    tours = None
    offset = np.zeros(len(queries))
    # Where the detour is surely the out-and-back from a farm δ from the annonce's place, its part
    # joins the distance's (nan: not known, left out: it is at most 0).
    detour_offset = np.full(len(queries), np.nan)
    if kind == engine.FARM_SEEKS_AMAP:
        farm_index = index_of(d.farm_id, d.ann_org[queries])
        counts = np.where(farm_index >= 0, d.tour_count[np.maximum(farm_index, 0)], 0)
        offset = bounds.offset(kind, counts)
        if len(d.tour_amap):
            tours = counts, farm_index
        detour_offset = _farm_annonce_detour_offset(d, queries, farm_index)
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
            t = arc_lower_m(chord) / SPHERE_MARGIN  # a lower bound of the annonce–T distance
            t_upper = t * SPHERE_MARGIN**3
            n_tours = counts[q[owner]]
            best = (
                bounds.distance_part(np.maximum(beyond[owner], t - s0))
                + tiers[0][0]
                + offset[q[owner]]
                + bounds.tour_gain_max(n_tours)
            )
            useful = np.flatnonzero(best >= kth[q[owner]] - margin)
            owner, point, t, t_upper = owner[useful], point[useful], t[useful], t_upper[useful]
            n_tours = n_tours[useful]
        if owner is None and len(tiers) > MAX_TIERS:
            found_q, found_p = _one_ball(points, int(key), q, xyz, beyond, kth, offset, radius, bounds, tiers[0][0])
            q_rows.append(found_q)
            p_rows.append(found_p)
            continue
        for bound, members, tree, point_offset in tiers:
            need = kth[q] - margin - bound - offset[q]
            reach = np.minimum(
                bounds.reach(need, point_offset if math.isfinite(point_offset) else detour_offset[q]), radius[q]
            )
            go = np.flatnonzero(reach >= beyond)
            if go.size:
                found_q, found_p = _ball(tree, members, xyz[q[go]], reach[go], q[go])
                q_rows.append(found_q)
                p_rows.append(found_p)
            if owner is None or owner.size == 0:
                continue
            covered = np.maximum(beyond[owner], np.where(reach[owner] >= beyond[owner], reach[owner], 0.0))
            # A point σ from T is at least max(c, t − σ) from the annonce, with a tour gain of at most
            # ring_gain(σ): bounded on each ring [σ_j, σ_j+1] of T, the ball around T reaches the last
            # ring that could still hold a point reaching the k-th key.
            inner, outer = TOUR_RINGS[:-1] * s0, TOUR_RINGS[1:] * s0
            ring_bound = bounds.distance_part(
                np.maximum(covered[:, None], t[:, None] - outer[None, :])
            ) + bounds.ring_gain(inner[None, :], n_tours[:, None])
            possible = ring_bound >= need[owner][:, None]
            last = len(outer) - 1 - np.argmax(possible[:, ::-1], axis=1)
            s = np.where(possible.any(axis=1), outer[last], -1.0)
            go = np.flatnonzero(
                (s >= 0)
                & (t_upper + s > covered)  # else inside what is covered
                & (t - s <= radius[q[owner]])  # else beyond the annonce's radius
            )
            if go.size == 0:
                continue
            # A farm delivering to many AMAPs has many overlapping balls: one ball around the
            # annonce holding them all finds each point once (at 100k, 13 of 15 million pairs
            # found by the balls around delivery points were found more than once).
            balls = np.bincount(owner[go], minlength=len(q))
            merged = balls[owner[go]] > RING_BALLS_MAX
            alone = go[~merged]
            if alone.size:
                found_q, found_p = _ball(tree, members, d.tour_xyz[point[alone]], s[alone], q[owner[alone]])
                q_rows.append(found_q)
                p_rows.append(found_p)
            if merged.any():
                together = go[merged]
                farthest = np.zeros(len(q))
                np.maximum.at(farthest, owner[together], t_upper[together] + s[together])
                which = np.unique(owner[together])
                found_q, found_p = _ball(
                    tree, members, xyz[q[which]], np.minimum(farthest[which], radius[q[which]]), q[which]
                )
                q_rows.append(found_q)
                p_rows.append(found_p)
    return np.concatenate(q_rows).astype(np.int64), np.concatenate(p_rows).astype(np.int64)
