"""What the directory does not know: AMAPs that stated no products (imported lists often don't).

A product filter cannot match them; the search page says how many there are around the place,
so that they are not silently dropped.
"""

from django.contrib.gis.geos import Point
from django.contrib.gis.measure import D

from ..models import Amap


def amaps_without_products_count(*, point: Point, radius_km: float) -> int:
    """Active AMAPs within `radius_km` (true metres on geography) that stated no product."""
    return (
        Amap.objects.active()
        .filter(location__dwithin=(point, D(km=radius_km)), products__isnull=True)  # GiST index on location
        .count()
    )
