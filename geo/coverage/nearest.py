"""Nearest distances from many targets to a set of points: a KD-tree on the unit sphere to
shortlist, the exact WGS84 geodesic to decide (all of France, 35k communes x 100k points, in
well under a second)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from scipy.spatial import cKDTree

from geo.sphere import GEOD, chord_from_metres, metres_from_chord, unit_xyz

from .units import Units

# On WGS84 a geodesic is between 0.9944 and 1.0045 times the great-circle distance on the
# mean sphere (meridian radius of curvature at the equator / at the poles): 1 % is a safe bound.
SPHERE_TOLERANCE = 0.01
# Beyond this distance the nearest point is only guaranteed to within 1 %: nobody walks
# 200 km to a delivery, and it keeps overseas communes far from any point cheap.
EXACT_NEAREST_MAX_M = 200_000.0
CANDIDATES = 8
MAX_SHORTLIST = 2048


class PointSet:
    """Points (WGS84 lon/lat) indexed for nearest-distance and radius questions."""

    def __init__(self, lon: Iterable[float], lat: Iterable[float]):
        self.lon = np.asarray(list(lon) if not isinstance(lon, np.ndarray) else lon, dtype=np.float64)
        self.lat = np.asarray(list(lat) if not isinstance(lat, np.ndarray) else lat, dtype=np.float64)
        self.tree = cKDTree(unit_xyz(self.lon, self.lat)) if len(self.lon) else None

    def __len__(self) -> int:
        return len(self.lon)

    def nearest(self, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Geodesic distance (m) from each target to its nearest point, and that point's index.

        No point at all: distance +inf and index -1. Exact (WGS84 geodesic) up to
        EXACT_NEAREST_MAX_M; farther, within 1 %.
        """
        lon = np.asarray(lon, dtype=np.float64)
        lat = np.asarray(lat, dtype=np.float64)
        count = len(lon)
        if self.tree is None or count == 0:
            return np.full(count, np.inf), np.full(count, -1, dtype=np.int64)
        xyz = unit_xyz(lon, lat)
        best = np.empty(count)
        best_idx = np.empty(count, dtype=np.int64)
        todo = np.arange(count)
        k = CANDIDATES
        while len(todo):
            if k > MAX_SHORTLIST:
                # Thousands of points within 1 % of each other: take every point in reach.
                reach_m = best[todo] / (1.0 - SPHERE_TOLERANCE)
                for i, found in zip(todo, self.within(lon[todo], lat[todo], reach_m), strict=True):
                    if len(found):
                        _a, _b, d = GEOD.inv(
                            np.full(len(found), lon[i]), np.full(len(found), lat[i]), self.lon[found], self.lat[found]
                        )
                        best[i], best_idx[i] = d.min(), found[int(np.argmin(d))]
                break
            k = min(k, len(self))
            chords, idx = self.tree.query(xyz[todo], k=k, workers=-1)
            chords, idx = chords.reshape(len(todo), k), idx.reshape(len(todo), k)
            # Exact geodesics to the shortlisted candidates.
            _az1, _az2, geodesic = GEOD.inv(
                np.repeat(lon[todo], k), np.repeat(lat[todo], k), self.lon[idx.ravel()], self.lat[idx.ravel()]
            )
            geodesic = geodesic.reshape(len(todo), k)
            column = np.argmin(geodesic, axis=1)
            rows = np.arange(len(todo))
            best[todo] = geodesic[rows, column]
            best_idx[todo] = idx[rows, column]
            if k == len(self):
                break
            # A point outside the shortlist is at least (1 - tol) x the k-th great-circle distance
            # away; where that bound does not beat the best geodesic (dense clusters of points),
            # look again with a longer shortlist.
            bound = metres_from_chord(chords[:, -1]) * (1.0 - SPHERE_TOLERANCE)
            unsure = (best[todo] > bound) & (best[todo] <= EXACT_NEAREST_MAX_M)
            todo = todo[unsure]
            k *= 4
        return best, best_idx.astype(np.int64)

    def covered(self, lon: np.ndarray, lat: np.ndarray, radius_m: float) -> np.ndarray:
        """Whether each target lies within `radius_m` (geodesic) of a point: one nearest-neighbour
        query on the sphere decides all but the targets near the threshold, checked exactly."""
        lon = np.asarray(lon, dtype=np.float64)
        lat = np.asarray(lat, dtype=np.float64)
        result = np.zeros(len(lon), dtype=bool)
        if self.tree is None or len(lon) == 0:
            return result
        upper = float(chord_from_metres(radius_m / (1.0 - SPHERE_TOLERANCE)))
        chords, _idx = self.tree.query(unit_xyz(lon, lat), k=1, distance_upper_bound=upper, workers=-1)
        sphere = metres_from_chord(np.where(np.isfinite(chords), chords, 2.0))
        result[sphere * (1.0 + SPHERE_TOLERANCE) <= radius_m] = True
        unsure = np.nonzero(np.isfinite(chords) & ~result)[0]
        if len(unsure):
            distances, _ = self.nearest(lon[unsure], lat[unsure])
            result[unsure] = distances <= radius_m
        return result

    def within(self, lon: np.ndarray, lat: np.ndarray, radius_m) -> list[np.ndarray]:
        """Indices of the points within `radius_m` (geodesic; one radius or one per target) of each target."""
        lon = np.asarray(lon, dtype=np.float64)
        lat = np.asarray(lat, dtype=np.float64)
        radius_m = np.broadcast_to(np.asarray(radius_m, dtype=np.float64), lon.shape)
        if self.tree is None or len(lon) == 0:
            return [np.empty(0, dtype=np.int64) for _ in range(len(lon))]
        reach = chord_from_metres(radius_m / (1.0 - SPHERE_TOLERANCE))
        found = self.tree.query_ball_point(unit_xyz(lon, lat), reach, workers=-1)
        sizes = np.array([len(f) for f in found], dtype=np.int64)
        if not sizes.sum():
            return [np.empty(0, dtype=np.int64) for _ in range(len(lon))]
        owner = np.repeat(np.arange(len(lon)), sizes)
        candidates = np.concatenate([np.asarray(f, dtype=np.int64) for f in found if len(f)])
        # One vectorised geodesic for every (target, candidate) pair, then split back per target.
        _a, _b, d = GEOD.inv(lon[owner], lat[owner], self.lon[candidates], self.lat[candidates])
        keep = d <= radius_m[owner]
        kept_owner, kept = owner[keep], candidates[keep]
        bounds = np.searchsorted(kept_owner, np.arange(len(lon) + 1))
        return [kept[bounds[i] : bounds[i + 1]] for i in range(len(lon))]

    def count_within(self, lon: np.ndarray, lat: np.ndarray, radius_m) -> np.ndarray:
        """How many points lie within `radius_m` (geodesic) of each target."""
        return np.array([len(found) for found in self.within(lon, lat, radius_m)], dtype=np.int64)


def nearest_distances(*, units: Units, points: PointSet) -> np.ndarray:
    """Geodesic distance (m) from each unit's reference point to the nearest point (+inf if none)."""
    distances, _idx = points.nearest(units.lon, units.lat)
    return distances
