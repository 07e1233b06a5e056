"""Opportunities: farms without an AMAP partner near AMAPs lacking their products, and AMAPs lacking
the products most AMAPs of the network offer."""

from __future__ import annotations

from collections import Counter

import numpy as np

from geo import coverage as geo_coverage

from .numbers import km

# A product is "common" when at least this share of the network's AMAPs offer it.
COMMON_PRODUCT_SHARE = 0.5
LIST_LIMIT = 100
# A farm that never stated its delivery radius (null): "AMAPs in reach" counts within this distance.
UNKNOWN_DELIVERY_RADIUS_KM = 30


def coverage_opportunities(*, amaps, farms, offered, offers, amap_points, category_names) -> dict:
    """Farms without an AMAP partner, closest first to an AMAP lacking one of their products, and
    AMAPs lacking the products most AMAPs of the network offer (with the farms around them).

    The distances rank every row; the counts within reach are computed for the listed rows only
    (in a dense area a farm has thousands of AMAPs within its delivery radius)."""
    farm_products = {f["id"]: f["products"] for f in farms}
    free, free_rows = _farms_without_partner(
        amaps=amaps,
        farms=farms,
        farm_products=farm_products,
        offered=offered,
        offers=offers,
        amap_points=amap_points,
        category_names=category_names,
    )
    informed = [a for a in amaps if offered.get(a["id"])]
    counts = Counter(slug for a in informed for slug in offered[a["id"]])
    common = sorted(
        (slug for slug, n in counts.items() if informed and n / len(informed) >= COMMON_PRODUCT_SHARE),
        key=lambda s: (-counts[s], s),
    )
    lacking_amaps, lacking_rows = _amaps_lacking_common_products(
        informed=informed,
        common=common,
        farms=farms,
        farm_products=farm_products,
        offered=offered,
        category_names=category_names,
    )
    return {
        "farms_without_partner_total": len(free),
        "farms_without_partner": free_rows,
        "common_products": [
            {
                "slug": s,
                "name": category_names.get(s, s),
                "amaps": counts[s],
                "share": round(counts[s] / len(informed), 4),
            }
            for s in common
        ],
        "common_product_share": COMMON_PRODUCT_SHARE,
        "amaps_without_products": len(amaps) - len(informed),
        "amaps_lacking_total": len(lacking_amaps),
        "amaps_lacking": lacking_rows,
    }


def _farms_without_partner(
    *, amaps, farms, farm_products, offered, offers, amap_points, category_names
) -> tuple[list[dict], list[dict]]:
    """(every farm without a current partnership, the first LIST_LIMIT of them as rows): closest
    first to an AMAP that does not offer one of their products, with the AMAPs within their reach."""
    free = [f for f in farms if not f["partnered"]]
    free_lon = np.array([f["lon"] for f in free], dtype=np.float64)
    free_lat = np.array([f["lat"] for f in free], dtype=np.float64)
    lacking_m = np.full(len(free), np.inf)
    if free and amaps:
        by_product: dict[str, list[int]] = {}
        for i, farm in enumerate(free):
            for slug in farm_products.get(farm["id"], ()) or ("",):
                by_product.setdefault(slug, []).append(i)
        for slug, rows in by_product.items():
            # AMAPs that do not offer this product (any AMAP for a farm without listed products).
            mask = ~offers[slug] if slug in offers else np.ones(len(amaps), dtype=bool)
            points = geo_coverage.PointSet(amap_points.lon[mask], amap_points.lat[mask])
            rows = np.array(rows)
            distances, _idx = points.nearest(free_lon[rows], free_lat[rows])
            lacking_m[rows] = np.minimum(lacking_m[rows], distances)
    order = sorted(range(len(free)), key=lambda i: (lacking_m[i], free[i]["name"]))[:LIST_LIMIT]
    radii = np.array(
        [(free[i]["delivery_radius_km"] or UNKNOWN_DELIVERY_RADIUS_KM) * 1000.0 for i in order], dtype=np.float64
    )
    reach = amap_points.within(free_lon[order], free_lat[order], radii) if order else []
    free_rows = []
    for i, in_reach in zip(order, reach, strict=True):
        farm = free[i]
        products = farm_products.get(farm["id"], set())
        lacking = [j for j in in_reach if not products or not products <= offered.get(amaps[j]["id"], set())]
        free_rows.append(
            {
                "id": farm["id"],
                "name": farm["name"],
                "commune": farm["commune"],
                "department": farm["department"],
                "products": sorted(category_names.get(s, s) for s in products),
                "delivery_radius_km": farm["delivery_radius_km"],
                "nearest_amap_lacking_km": km(lacking_m[i]),
                "amaps_in_reach": len(in_reach),
                "amaps_lacking_its_products": len(lacking),
            }
        )
    return free, free_rows


def _amaps_lacking_common_products(
    *, informed, common, farms, farm_products, offered, category_names
) -> tuple[list, list[dict]]:
    """(every AMAP lacking some common products, with them; the first LIST_LIMIT as rows): most
    products missing first, with the farms producing each within 30 km."""
    lacking_amaps = []
    for amap in informed:
        missing = [slug for slug in common if slug not in offered[amap["id"]]]
        if missing:
            lacking_amaps.append((amap, missing))
    lacking_amaps.sort(key=lambda item: (-len(item[1]), item[0]["name"]))
    shown = lacking_amaps[:LIST_LIMIT]
    nearby: list[dict[str, int]] = [{} for _ in shown]
    for slug in common:
        rows = [k for k, (_amap, missing) in enumerate(shown) if slug in missing]
        if not rows:
            continue
        producers = [f for f in farms if slug in farm_products.get(f["id"], ())]
        points = geo_coverage.PointSet([f["lon"] for f in producers], [f["lat"] for f in producers])
        found = points.count_within(
            np.array([shown[k][0]["lon"] for k in rows]), np.array([shown[k][0]["lat"] for k in rows]), 30_000.0
        )
        for k, n in zip(rows, found, strict=True):
            nearby[k][category_names.get(slug, slug)] = int(n)
    lacking_rows = [
        {
            "id": amap["id"],
            "name": amap["name"],
            "commune": amap["commune"],
            "missing": [category_names.get(s, s) for s in missing],
            # Farms producing it within 30 km (a common delivery radius).
            "farms_within_30km": near,
        }
        for (amap, missing), near in zip(shown, nearby, strict=True)
    ]
    return lacking_amaps, lacking_rows
