"""Reads on the directory: the nearest search, filtered lists and pages, single entries.

`nearest` is the one search behind the pages and the API (hand-written SQL, KNN shortlist then
exact geodesic ranking); `filtered` holds the ORM filters and the pages without a point;
`entries` the detail pages and networks.
"""

from .entries import amap_detail, farm_detail, network_amaps, network_detail, network_farms, networks_with_counts
from .filtered import NetworkRef, ProductRef, amaps_filtered, amaps_page, farms_filtered, farms_page
from .nearest import Found, amap_features_near, amaps_near, farm_features_near, farms_near, shortlist_size
from .unstated import amaps_without_products_count
from .version import public_version

__all__ = [
    "Found",
    "NetworkRef",
    "ProductRef",
    "amap_detail",
    "amap_features_near",
    "amaps_filtered",
    "amaps_near",
    "amaps_page",
    "amaps_without_products_count",
    "farm_detail",
    "farm_features_near",
    "farms_filtered",
    "farms_near",
    "farms_page",
    "network_amaps",
    "network_detail",
    "network_farms",
    "networks_with_counts",
    "public_version",
    "shortlist_size",
]
