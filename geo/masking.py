"""Stable location masking: a private point becomes a public one a few hundred metres away."""

import hashlib

from django.contrib.gis.geos import Point

from geo.sphere import GEOD


def mask_point(point: Point, *, seed: str, min_m: float = 500.0, max_m: float = 1500.0) -> Point:
    """Move `point` by a distance and bearing drawn from `seed`: same seed, same public point.

    The offset never depends on the clock or a secret, so it is computed once, stored, and
    cannot be averaged away by reloading a page.
    """
    digest = hashlib.sha256(seed.encode("utf-8")).digest()
    bearing = int.from_bytes(digest[:4], "big") / 2**32 * 360.0
    # sqrt keeps the masked points evenly spread over the ring's area.
    fraction = (int.from_bytes(digest[4:8], "big") / 2**32) ** 0.5
    distance = min_m + (max_m - min_m) * fraction
    lon, lat, _ = GEOD.fwd(point.x, point.y, bearing, distance)
    return Point(round(lon, 6), round(lat, 6), srid=4326)
