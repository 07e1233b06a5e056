"""Sphere maths and the WGS84 geodesic, written once for every app.

Nearest-neighbour questions over many points are asked in memory on unit-sphere xyz
coordinates (a KD-tree: chord length grows with great-circle distance), then decided with the
exact WGS84 geodesic of `GEOD`. On WGS84 a geodesic is between 0.9944 and 1.0045 times the
great-circle distance on the mean sphere (meridian radius of curvature at the equator / at the
poles): callers inflate their sphere radii by 1 % to stay on the safe side.
"""

from __future__ import annotations

import math

import numpy as np
from pyproj import Geod

# The one geodesic calculator (pyproj's Geod is thread-safe and costs nothing to share).
GEOD = Geod(ellps="WGS84")

EARTH_MEAN_RADIUS_M = 6_371_008.8  # IUGG mean radius R1 of WGS84


def unit_xyz(lon, lat) -> np.ndarray:
    """(n, 3) unit vectors of WGS84 lon/lat degrees on the unit sphere."""
    lon_r = np.radians(lon)
    lat_r = np.radians(lat)
    cos_lat = np.cos(lat_r)
    return np.column_stack((cos_lat * np.cos(lon_r), cos_lat * np.sin(lon_r), np.sin(lat_r)))


def chord_from_metres(metres):
    """Straight-line distance on the unit sphere for a great-circle distance in metres."""
    return 2.0 * np.sin(
        np.minimum(np.asarray(metres, dtype=np.float64), math.pi * EARTH_MEAN_RADIUS_M) / (2.0 * EARTH_MEAN_RADIUS_M)
    )


def metres_from_chord(chord):
    """Great-circle distance in metres on the mean sphere for a unit-sphere chord."""
    return 2.0 * EARTH_MEAN_RADIUS_M * np.arcsin(np.clip(np.asarray(chord, dtype=np.float64) / 2.0, 0.0, 1.0))


def geodesic_m(lon1, lat1, lon2, lat2) -> np.ndarray:
    """Exact WGS84 geodesic metres between paired points (arrays of one shape)."""
    if np.size(lon2) == 0:
        return np.zeros(0)
    _fwd, _back, dist = GEOD.inv(lon1, lat1, lon2, lat2)
    return np.asarray(dist, dtype=np.float64)
