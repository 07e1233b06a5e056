"""Tour synergy: the distance from a point to the nearest delivery point of a farm (its active
partner AMAPs), on the unit sphere, exact where it matters."""

from __future__ import annotations

import math

import numpy as np
from scipy.spatial import cKDTree

from geo.sphere import chord_from_metres, geodesic_m, unit_xyz

from .. import engine
from ..learning.features import RINGS_KM
from .distances import SPHERE_MARGIN, sphere_m
from .load import Directory

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


def nearest_tour(d: Directory, farm_index: np.ndarray, lon: np.ndarray, lat: np.ndarray, *, exact: bool = False):
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
    best[rows] = sphere_m(best_dot)
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
        close = sphere_m(dot) <= best[sub_rows[owner]] * (1.0 + TOUR_TIE) + 1.0
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
    """Beyond this sphere distance a delivery point is surely outside the synergy radius and the
    learned ranking's widest ring (where reasons stop naming the nearest delivery point)."""
    return max(engine.synergy_radius_m(), RINGS_KM[-1] * 1000.0) * SPHERE_MARGIN * 1.01


def tour_rings(d: Directory, farm_index: np.ndarray, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """(n, len(RINGS_KM)): how many delivery points of farm `farm_index` lie within each ring of each
    (lon, lat), exactly: pairs whose sphere distance is within TOUR_TIE of a ring are measured
    on the ellipsoid, as the request path measures them all."""
    n = len(farm_index)
    within = np.zeros((n, len(RINGS_KM)))
    if n == 0 or len(d.tour_amap) == 0:
        return within
    counts = np.where(farm_index >= 0, d.tour_count[np.maximum(farm_index, 0)], 0)
    rings = _Rings(d, lon, lat, within)
    # Farms with few delivery points: every (row, point) pair, gathered a chunk at a time.
    light = np.flatnonzero((counts > 0) & (counts < HEAVY_TOUR))
    if light.size:
        xyz = unit_xyz(lon[light], lat[light])
        for part, owner, point, _starts, _sizes in _tour_chunks(d, farm_index, light, counts):
            x, t = xyz[owner], d.tour_xyz[point]
            rings.count(light[part], owner - part[0], point, x[:, 0] * t[:, 0] + x[:, 1] * t[:, 1] + x[:, 2] * t[:, 2])
    # Farms delivering to many AMAPs (62 % of the pairs for 3 % of the rows at 100k): their rows
    # against their points as one block of dot products (a matrix product, no gathering).
    heavy = np.flatnonzero(counts >= HEAVY_TOUR)
    if heavy.size:
        heavy = heavy[np.argsort(farm_index[heavy], kind="stable")]
        farms, starts = np.unique(farm_index[heavy], return_index=True)
        xyz = unit_xyz(lon[heavy], lat[heavy])
        for farm, begin, end in zip(farms.tolist(), starts.tolist(), [*starts[1:].tolist(), heavy.size], strict=True):
            first = d.tour_start[farm]
            dots = xyz[begin:end] @ d.tour_xyz[first : first + d.tour_count[farm]].T
            row, column = np.nonzero(dots >= rings.min_dot)
            rings.count(heavy[begin:end], row, first + column, dots[row, column])
    return within


class _Rings:
    """Counts (row, delivery point) pairs into `within`, ring by ring, exactly (see `tour_rings`)."""

    def __init__(self, d: Directory, lon, lat, within) -> None:
        self.d, self.lon, self.lat, self.within = d, lon, lat, within
        self.rings_m = np.asarray(RINGS_KM) * 1000.0
        # Pairs farther than the widest ring (and its tie zone) count nowhere: dropped on their dot
        # product, before any distance is worked out (the threshold errs on the wide side).
        widest = chord_from_metres(self.rings_m[-1] * (1.0 + TOUR_TIE) * 1.001 + 1.0)
        self.min_dot = 1.0 - widest * widest / 2.0

    def count(self, rows: np.ndarray, local: np.ndarray, point: np.ndarray, dot: np.ndarray) -> None:
        """`rows`: the rows of this block; `local`: each pair's position in `rows`; `dot`: its dot product."""
        d, rings_m = self.d, self.rings_m
        close = np.flatnonzero(dot >= self.min_dot)
        local, point = local[close], point[close]
        dist = sphere_m(dot[close])
        close = dist <= rings_m[-1] * (1.0 + TOUR_TIE) + 1.0
        local, point, dist = local[close], point[close], dist[close]
        unsure = np.flatnonzero((np.abs(dist[:, None] - rings_m[None, :]) <= rings_m * TOUR_TIE + 1.0).any(axis=1))
        if unsure.size:
            r = rows[local[unsure]]
            dist[unsure] = geodesic_m(self.lon[r], self.lat[r], d.tour_lon[point[unsure]], d.tour_lat[point[unsure]])
        for j, ring in enumerate(rings_m):
            self.within[rows, j] += np.bincount(local[dist <= ring], minlength=len(rows))
