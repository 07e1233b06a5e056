"""The marginal detour as a feature of the learned ranking: what one more place would add to a
farm's delivery day, estimated cheaply enough for every candidate of every annonce.

The farm's matches and its tours page solve each day's loop (`matching.tours`: the optimum up
to 9 stops, OR-Tools beyond, road lengths from OSRM when configured) and show what an AMAP adds.
A solve per candidate is out of reach here (hundreds of farms for one annonce, millions of
pairs in bulk), so the feature estimates the same quantity, in the same way on every path
(request path, bulk path, training):
- a day's loop: from the farm's public point, on to the nearest stop not yet visited (unit-sphere
  dot products, ties to the lowest AMAP id), then back. Up to two stops it is the optimum; the
  demo directory's farms have 1–2 stops on 83 % of their days;
- the detour of a place p: the cheapest insertion into the loops of the days p could join,
  min over legs (a, b) of d(a, p) + d(p, b) − d(a, b) in geodesic metres; with no loop on any
  of those days, a new out-and-back: 2·d(farm, p).

Every function here is elementwise numpy in a fixed order (no BLAS): equal inputs give equal
bits whatever the array shapes, so the request path and the bulk path agree to the last bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geo.sphere import geodesic_m, unit_xyz

LEG_CHUNK = 4_000_000  # (row, leg) pairs per vectorised step


@dataclass
class Legs:
    """Every farm's estimated loops as legs, grouped by farm and weekday (the legs of farm g's loop on
    ISO day b + 1: start[g, b] … start[g, b] + count[g, b] − 1, in route order)."""

    start: np.ndarray  # (farms, 7)
    count: np.ndarray  # (farms, 7)
    day: np.ndarray  # per leg: the weekday bit of its loop (1 << (ISO day − 1))
    # Where a leg ends: at the farm (the loop's last leg), or where the next leg starts (inside a
    # loop of two stops or more), else (a loop of one stop) at that stop. A place's distance to each
    # point of a loop is worked out once.
    a_depot: np.ndarray
    b_depot: np.ndarray
    b_next: np.ndarray
    a_lon: np.ndarray
    a_lat: np.ndarray
    b_lon: np.ndarray
    b_lat: np.ndarray
    length_m: np.ndarray  # geodesic a → b


def _dot(ax, ay, az, bx, by, bz):
    return ax * bx + ay * by + az * bz


def _nearest_neighbour_orders(xyz: np.ndarray, depot_xyz: np.ndarray) -> np.ndarray:
    """(T, n) visiting order of T loops of n stops each (xyz: (T, n, 3), depot_xyz: (T, 3))."""
    t, n = xyz.shape[0], xyz.shape[1]
    order = np.zeros((t, n), dtype=np.int64)
    visited = np.zeros((t, n), dtype=bool)
    rows = np.arange(t)
    cx, cy, cz = depot_xyz[:, 0], depot_xyz[:, 1], depot_xyz[:, 2]
    for step in range(n):
        dots = _dot(cx[:, None], cy[:, None], cz[:, None], xyz[:, :, 0], xyz[:, :, 1], xyz[:, :, 2])
        dots[visited] = -np.inf
        nxt = np.argmax(dots, axis=1)  # nearest = largest dot; the first of equals: the lowest AMAP id
        order[:, step] = nxt
        visited[rows, nxt] = True
        cx, cy, cz = xyz[rows, nxt, 0], xyz[rows, nxt, 1], xyz[rows, nxt, 2]
    return order


def farm_legs(
    *,
    depot_lon: np.ndarray,
    depot_lat: np.ndarray,
    stop_farm: np.ndarray,
    stop_id: np.ndarray,
    stop_lon: np.ndarray,
    stop_lat: np.ndarray,
    stop_days: np.ndarray,
    days: int = 0b1111111,
) -> Legs:
    """The legs of every farm's estimated loops, one loop per farm and delivery day (of `days` only).

    `depot_*`: per farm (index g); `stop_*`: each delivery point (farm index, AMAP id, place, the
    AMAP's weekday mask; 0: not known, on no loop). A loop of one stop is one leg (farm → stop:
    its way back adds the same); of n ≥ 2 stops, n + 1 legs.
    """
    n_farms = len(depot_lon)
    stop_farm = np.asarray(stop_farm, dtype=np.int64)
    stop_id = np.asarray(stop_id, dtype=np.int64)
    stop_lon = np.asarray(stop_lon, dtype=np.float64)
    stop_lat = np.asarray(stop_lat, dtype=np.float64)
    stop_days = np.asarray(stop_days, dtype=np.int64)
    parts: list[tuple] = []  # (farm, day, position, a_depot, b_depot, b_next, a_lon, a_lat, b_lon, b_lat)
    depot_lon = np.asarray(depot_lon, dtype=np.float64)
    depot_lat = np.asarray(depot_lat, dtype=np.float64)
    for bit in range(7):
        if not (days >> bit) & 1:
            continue
        on = np.flatnonzero((stop_days >> bit) & 1)
        if on.size == 0:
            continue
        on = on[np.lexsort((stop_id[on], stop_farm[on]))]
        farms, first, sizes = np.unique(stop_farm[on], return_index=True, return_counts=True)
        for n in np.unique(sizes).tolist():
            which = np.flatnonzero(sizes == n)
            g = farms[which]
            idx = first[which][:, None] + np.arange(n)[None, :]  # (T, n) stop indexes, by AMAP id
            stops = on[idx]
            if n == 1:
                order = stops
            else:
                xyz = unit_xyz(stop_lon[stops].ravel(), stop_lat[stops].ravel()).reshape(len(g), n, 3)
                local = _nearest_neighbour_orders(xyz, unit_xyz(depot_lon[g], depot_lat[g]))
                order = np.take_along_axis(stops, local, axis=1)
            # Loop nodes: depot, stops in order, depot (one leg when there is one stop).
            lon = np.column_stack((depot_lon[g], stop_lon[order], depot_lon[g]))
            lat = np.column_stack((depot_lat[g], stop_lat[order], depot_lat[g]))
            legs = 1 if n == 1 else n + 1
            position = np.broadcast_to(np.arange(legs), (len(g), legs))
            parts.append(
                (
                    np.repeat(g, legs),
                    np.full(len(g) * legs, 1 << bit, dtype=np.int64),
                    position.ravel(),
                    np.tile(np.arange(legs) == 0, len(g)),
                    np.tile((np.arange(legs) == legs - 1) & (n > 1), len(g)),
                    np.tile(np.arange(legs) < legs - 1, len(g)),
                    lon[:, :legs].ravel(),
                    lat[:, :legs].ravel(),
                    lon[:, 1 : legs + 1].ravel(),
                    lat[:, 1 : legs + 1].ravel(),
                )
            )
    if parts:
        columns = [np.concatenate(c) for c in zip(*parts, strict=True)]
        sort = np.lexsort((columns[2], columns[1], columns[0]))
        farm, day, _position, a_depot, b_depot, b_next, a_lon, a_lat, b_lon, b_lat = (c[sort] for c in columns)
    else:
        farm = day = np.zeros(0, dtype=np.int64)
        a_depot = b_depot = b_next = np.zeros(0, dtype=bool)
        a_lon = a_lat = b_lon = b_lat = np.zeros(0)
    slot = farm * 7 + np.log2(np.maximum(day, 1)).astype(np.int64)
    count = np.bincount(slot, minlength=n_farms * 7).astype(np.int64)
    return Legs(
        start=(np.cumsum(count) - count).reshape(n_farms, 7),
        count=count.reshape(n_farms, 7),
        day=day,
        a_depot=a_depot,
        b_depot=b_depot,
        b_next=b_next,
        a_lon=a_lon,
        a_lat=a_lat,
        b_lon=b_lon,
        b_lat=b_lat,
        length_m=geodesic_m(a_lon, a_lat, b_lon, b_lat),
    )


def exact_distance(lon, lat, to_lon, to_lat) -> tuple[np.ndarray, None]:
    """Geodesic metres from each place to each node (always in this direction: the same bits on every path)."""
    return geodesic_m(lon, lat, to_lon, to_lat), None


def candidate_days(weekdays: np.ndarray, need_days) -> np.ndarray:
    """The days a pair could be delivered on: the counterpart's days among the annonce's, else the annonce's.

    (A counterpart whose known days miss all the annonce's is not eligible: its days do not matter.)
    """
    weekdays = np.asarray(weekdays, dtype=np.int64)
    need_days = np.asarray(need_days, dtype=np.int64)
    return np.where(weekdays != 0, weekdays & need_days, need_days)


def _ends(distance, lon, lat, owner, end_lon, end_lat, known, out, out_error):
    """Each pair's distance to a leg's end: the farm's (`out`) where `known` says it is the farm (or
    filled in by the caller), worked out for the others."""
    result = out[owner].copy()
    error = None if out_error is None else out_error[owner].copy()
    todo = np.flatnonzero(~known)
    if todo.size:
        metres, metres_error = distance(lon[owner[todo]], lat[owner[todo]], end_lon[todo], end_lat[todo])
        result[todo] = metres
        if error is not None:
            error[todo] = metres_error
    return result, error


def detour_m(legs: Legs, farm, lon, lat, days, depot_lon, depot_lat, *, distance=exact_distance):
    """The marginal detour (metres) of each place (lon, lat) for the farm of index `farm` (-1: none,
    no loop), on `days` (masks), the farm's public point being (depot_lon, depot_lat).

    `distance(lon, lat, to_lon, to_lat) -> (metres, error or None)`; with errors (the bulk path's
    approximation), returns (detour, error bound of it), else (detour, None).
    """
    farm = np.asarray(farm, dtype=np.int64)
    lon = np.asarray(lon, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    days = np.broadcast_to(np.asarray(days, dtype=np.int64), farm.shape)
    known = farm >= 0
    g = np.maximum(farm, 0)
    # No loop on these days: a new out-and-back from the farm.
    depot_lon = np.broadcast_to(np.asarray(depot_lon, dtype=np.float64), farm.shape)
    depot_lat = np.broadcast_to(np.asarray(depot_lat, dtype=np.float64), farm.shape)
    out, out_error = distance(lon, lat, depot_lon, depot_lat)
    out = np.asarray(out, dtype=np.float64)
    result = 2.0 * out
    error = None if out_error is None else 2.0 * out_error
    # Per row and weekday, the legs of the farm's loop that day if the row may be delivered then.
    on = ((days[:, None] >> np.arange(7)[None, :]) & 1).astype(bool) & known[:, None]
    counts = np.where(on, legs.count[g], 0) if len(legs.day) else np.zeros((len(farm), 7), dtype=np.int64)
    total = counts.sum(axis=1)
    with_legs = np.flatnonzero(total)
    if with_legs.size == 0:
        return result, error
    # (row, leg) pairs, a chunk of rows at a time; a row's legs day after day, each loop in route order.
    cumulative = np.cumsum(total[with_legs])
    begin = 0
    while begin < with_legs.size:
        limit = (cumulative[begin - 1] if begin else 0) + LEG_CHUNK
        end = max(begin + 1, int(np.searchsorted(cumulative, limit, side="right")))
        part = with_legs[begin:end]
        begin = end
        sizes = counts[part].ravel()
        slot = np.repeat(np.arange(sizes.size), sizes)
        owner = part[slot // 7]
        leg = legs.start[g[owner], slot % 7] + (
            np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        )
        ends = (distance, lon, lat, owner)
        to_a, error_a = _ends(*ends, legs.a_lon[leg], legs.a_lat[leg], legs.a_depot[leg], out, out_error)
        # A leg ends where the next one starts, at the farm, or (one stop) at its stop.
        b_next = legs.b_next[leg]
        following = np.minimum(np.arange(len(leg)) + 1, len(leg) - 1)
        to_b, error_b = _ends(*ends, legs.b_lon[leg], legs.b_lat[leg], legs.b_depot[leg] | b_next, out, out_error)
        to_b = np.where(b_next, to_a[following], to_b)
        if error_b is not None:
            error_b = np.where(b_next, error_a[following], error_b)
        added = (to_a + to_b) - legs.length_m[leg]
        starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
        who = owner[starts]
        best = np.maximum(np.minimum.reduceat(added, starts), 0.0)
        if error_a is None:
            result[who] = best
            continue
        # Approximate distances: the exact minimum is among the legs whose interval reaches the
        # lowest upper end; the error is the widest of their intervals.
        spread = error_a + error_b
        upper = np.minimum.reduceat(added + spread, starts)
        contender = (added - spread) <= np.repeat(upper, np.diff(np.r_[starts, len(owner)]))
        widest = np.maximum.reduceat(np.where(contender, spread, 0.0), starts)
        result[who] = best
        error[who] = widest
    return result, error
