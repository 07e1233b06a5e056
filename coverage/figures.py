"""What a network covers: figures, white zones, product gaps, opportunities, history.

`coverage_for_network(network=..., radius_km=10)` returns one JSON-ready dict shared by the
dashboard, the API, the downloads and the `coverage_report` command. It is cached (Django
cache) under a version bumped by signals whenever an AMAP, farm, partnership or network
changes, plus a cheap fingerprint of those tables (bulk imports send no signal).

Which points: the delivery places of the **active** AMAPs located in the network's territory
(by their commune, or inside a drawn territory), plus the active AMAPs attached to the network
wherever they are (`AMAP_SELECTION`). The computations themselves live in `geo.coverage`.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
from django.core.cache import cache
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from directory.models import Amap, Network, ProductCategory
from geo import coverage as geo_coverage

from .cache import CACHE_TIMEOUT, coverage_cache_key
from .history import coverage_history
from .numbers import km, per_100k
from .opportunities import coverage_opportunities
from .selectors import france_adjacency, level_names, network_amap_rows, network_farm_rows
from .territory import Territory, TerritoryError, network_territory, network_units

RADIUS_KM_MIN = 0.5
RADIUS_KM_MAX = 50.0
RADIUS_KM_DEFAULT = 10.0
MIN_POPULATION_DEFAULT = 1000
MIN_POPULATION_MAX = 1_000_000
CURVE_RADII_KM = tuple(range(1, 31))
MISSING_COMMUNES_LIMIT = 10
# Farther than this, a commune-level choropleth is too heavy for a page: départements instead.
COMMUNE_CHOROPLETH_MAX = 6_000

AMAP_SELECTION = gettext_lazy(
    "AMAP actives situées dans le territoire du réseau (par leur commune, ou dans le territoire dessiné), "
    "plus les AMAP actives rattachées au réseau où qu'elles soient."
)
PRODUCT_RULE = gettext_lazy(
    "Une AMAP propose un produit quand un partenariat en cours avec une ferme le porte ; "
    "une AMAP sans partenariat renseigné compte pour les produits qu'elle déclare."
)


def coverage_for_network(
    *,
    network: Network,
    radius_km: float = RADIUS_KM_DEFAULT,
    product: str | None = None,
    min_population: int = MIN_POPULATION_DEFAULT,
    use_cache: bool = True,
) -> dict:
    """Every coverage figure of a network for one radius (and an optional product slug).

    Raises TerritoryError when the network has no territory and ValueError on a bad product.
    """
    # Radii are rounded to 100 m: finer steps change nothing a network decides, and each distinct
    # radius is a full computation (a cache entry).
    radius_km = round(float(radius_km), 1)
    if not math.isfinite(radius_km) or not (RADIUS_KM_MIN <= radius_km <= RADIUS_KM_MAX):
        raise ValueError(f"radius_km must be between {RADIUS_KM_MIN} and {RADIUS_KM_MAX}")
    if product and not ProductCategory.objects.filter(slug=product).exists():
        raise ValueError(f"unknown product {product!r}")
    key = coverage_cache_key(network=network, radius_km=radius_km, product=product, min_population=min_population)
    if use_cache:
        cached = cache.get(key)
        if cached is not None:
            return cached
    result = _compute(network=network, radius_km=radius_km, product=product, min_population=min_population)
    result["cache_key"] = key
    cache.set(key, result, CACHE_TIMEOUT)
    return result


def _compute(*, network: Network, radius_km: float, product: str | None, min_population: int) -> dict:
    """The figures of `coverage_for_network`, computed from the database (no cache)."""
    territory = network_territory(network=network)
    units = _territory_units(network=network, territory=territory)
    all_amaps = network_amap_rows(network=network, territory=territory)
    amaps = [a for a in all_amaps if a["status"] == Amap.Status.ACTIVE]
    farms = network_farm_rows(network=network, territory=territory)
    categories = list(ProductCategory.objects.order_by("position", "name").values("slug", "name"))
    category_names = {c["slug"]: c["name"] for c in categories}

    amap_points = geo_coverage.PointSet([a["lon"] for a in amaps], [a["lat"] for a in amaps])
    distances, nearest_index = amap_points.nearest(units.lon, units.lat)
    reference = geo_coverage.population_coverage(units=units, distances_m=distances, radius_km=radius_km)
    area_shares, area_figure, area_note = _area_weighted(units=units, amap_points=amap_points, radius_km=radius_km)

    amap_units = [a["unit"] for a in amaps]
    farm_units = [f["unit"] for f in farms if f["unit"]]
    amap_count_by_unit = Counter(amap_units)
    farm_count_by_unit = Counter(farm_units)
    departments, regions = (
        _group_rows(
            level=level,
            units=units,
            distances=distances,
            radius_km=radius_km,
            amap_units=amap_units,
            farm_units=farm_units,
        )
        for level in ("department", "region")
    )

    offered, offers = _offers(amaps=amaps, categories=categories)
    product_rows, product_distances = _product_gaps(
        units=units, amap_points=amap_points, offers=offers, categories=categories, radius_km=radius_km, product=product
    )
    return {
        "network": _network_summary(network=network, territory=territory, departments=departments),
        "params": {
            "radius_km": radius_km,
            "product": product,
            "product_name": category_names.get(product) if product else None,
            "min_population": min_population,
        },
        "methods": {key: str(label) for key, label in geo_coverage.METHOD_LABELS.items()},
        "amap_selection": str(AMAP_SELECTION),
        "product_rule": str(PRODUCT_RULE),
        "figures": _headline_figures(
            units=units,
            amaps=amaps,
            farms=farms,
            distances=distances,
            amap_count_by_unit=amap_count_by_unit,
            farm_count_by_unit=farm_count_by_unit,
        ),
        "reference_point": reference.as_dict(),
        "area_weighted": area_figure.as_dict() if area_figure else None,
        "area_weighted_note": area_note,
        "selected_product": next(row for row in product_rows if row["slug"] == product) if product else None,
        "curve": [
            {"radius_km": f.radius_km, "share": round(f.share, 6), "covered_population": int(f.covered_population)}
            for f in geo_coverage.coverage_curve(units=units, distances_m=distances, radii_km=CURVE_RADII_KM)
        ],
        "departments": departments,
        "regions": regions,
        "white_zones": _white_zones(
            units=units, distances=distances, radius_km=radius_km, min_population=min_population
        ),
        "product_gaps": product_rows,
        "opportunities": coverage_opportunities(
            amaps=amaps,
            farms=farms,
            offered=offered,
            offers=offers,
            amap_points=amap_points,
            category_names=category_names,
        ),
        "history": coverage_history(all_amaps=all_amaps, units=units, radius_km=radius_km),
        "communes": _commune_table(
            amaps=amaps,
            nearest_index=nearest_index,
            area_shares=area_shares,
            amap_count_by_unit=amap_count_by_unit,
            farm_count_by_unit=farm_count_by_unit,
            product_distances=product_distances.get(product) if product else None,
            units=units,
            distances=distances,
            radius_km=radius_km,
        ),
        "amap_points": [
            {
                "id": a["id"],
                "name": a["name"],
                "lon": round(a["lon"], 6),
                "lat": round(a["lat"], 6),
                "commune": a["commune"],
            }
            for a in amaps
        ],
        "generated_at": timezone.now().isoformat(timespec="seconds"),
    }


def _territory_units(*, network: Network, territory: Territory) -> geo_coverage.Units:
    """The communes of the territory; TerritoryError when there is none."""
    units = network_units(territory=territory)
    if len(units) == 0:
        raise TerritoryError(
            _("Le territoire du réseau « %(name)s » ne contient aucune commune.") % {"name": network.name}
        )
    return units


def _area_weighted(*, units: geo_coverage.Units, amap_points: geo_coverage.PointSet, radius_km: float):
    """(per-commune shares, figure, note) of the area-weighted method; no shares and no figure, with
    the reason as the note, when it would cost too much for this territory."""
    note = geo_coverage.area_weighted_too_costly(units=units, points=len(amap_points))
    if note is not None:
        return None, None, note
    shares = geo_coverage.area_weighted_shares(
        units=units, lon=amap_points.lon, lat=amap_points.lat, radius_km=radius_km
    )
    figure = geo_coverage.area_weighted_coverage(units=units, shares=shares, radius_km=radius_km)
    note = _("part de la surface de chaque commune à moins de %(r)s km, population supposée répartie uniformément") % {
        "r": f"{radius_km:g}"
    }
    return shares, figure, note


def _group_rows(
    *,
    level: str,
    units: geo_coverage.Units,
    distances: np.ndarray,
    radius_km: float,
    amap_units: list[str],
    farm_units: list[str],
) -> list[dict]:
    """One row per département or région: population, AMAPs and farms (per 100,000), covered share."""
    amap_density = geo_coverage.density_per_100k(units=units, item_unit_codes=amap_units, level=level)
    farm_density = geo_coverage.density_per_100k(units=units, item_unit_codes=farm_units, level=level)
    covered = geo_coverage.covered_population_by_group(
        units=units, distances_m=distances, radius_km=radius_km, level=level
    )
    names = level_names(level, list(amap_density))
    rows = []
    for key, density in amap_density.items():
        population, covered_population = covered[key]
        rows.append(
            {
                "code": key,
                "name": names.get(key, key),
                "population": density.population,
                "amaps": density.count,
                "amaps_per_100k": per_100k(density.count, density.population),
                "farms": farm_density[key].count,
                "farms_per_100k": per_100k(farm_density[key].count, density.population),
                "covered_population": covered_population,
                "share": round(covered_population / population, 6) if population else 0.0,
            }
        )
    rows.sort(key=lambda r: r["code"])
    return rows


def _white_zones(*, units: geo_coverage.Units, distances: np.ndarray, radius_km: float, min_population: int) -> dict:
    """The largest uncovered communes and groups of adjacent ones (the largest communes without an
    AMAP when there is none), with the uncovered totals."""
    communes, groups = geo_coverage.white_zones(
        units=units,
        distances_m=distances,
        radius_km=radius_km,
        min_population=min_population,
        adjacency=_adjacency_for(units, distances, radius_km),
    )
    uncovered = distances > radius_km * 1000.0
    return {
        "min_population": min_population,
        "communes": [z.as_dict() for z in communes],
        "groups": [z.as_dict() for z in groups],
        "uncovered_communes": int(uncovered.sum()),
        "uncovered_population": int(units.population[uncovered].sum()),
    }


def _adjacency_for(units: geo_coverage.Units, distances: np.ndarray, radius_km: float):
    """Adjacent uncovered communes: PostGIS for a few thousand, else France's cached adjacency."""
    uncovered = units.code[distances > radius_km * 1000.0]
    if len(uncovered) <= 3000:
        return None  # geo.coverage asks PostGIS for just these
    return france_adjacency()


def _offers(*, amaps: list[dict], categories: list[dict]) -> tuple[dict, dict]:
    """(products offered by each AMAP id, for the AMAPs that offer any; for each product slug, a
    boolean array over the active AMAPs: whether the i-th AMAP offers it)."""
    offered = {a["id"]: a["products"] for a in amaps if a["products"]}
    offers = {c["slug"]: np.zeros(len(amaps), dtype=bool) for c in categories}
    for i, amap in enumerate(amaps):
        for slug in offered.get(amap["id"], ()):
            if slug in offers:
                offers[slug][i] = True
    return offered, offers


def _product_gaps(
    *,
    units: geo_coverage.Units,
    amap_points: geo_coverage.PointSet,
    offers: dict,
    categories: list[dict],
    radius_km: float,
    product: str | None,
) -> tuple[list[dict], dict[str, np.ndarray]]:
    """One row per product: population within the radius of an AMAP offering it, and the largest
    communes without; plus the chosen product's distance from each commune (table and map layer)."""
    product_rows = []
    product_distances: dict[str, np.ndarray] = {}
    radius_m = radius_km * 1000.0
    for category in categories:
        slug = category["slug"]
        mask = offers[slug]
        pts = geo_coverage.PointSet(amap_points.lon[mask], amap_points.lat[mask])
        if slug == product:
            product_distances[slug], _idx = pts.nearest(units.lon, units.lat)
            covered = product_distances[slug] <= radius_m
        else:
            covered = pts.covered(units.lon, units.lat, radius_m)
        missing = np.nonzero(~covered)[0]
        largest = missing[np.argsort(-units.population[missing], kind="stable")][:MISSING_COMMUNES_LIMIT]
        largest_distances, _idx = pts.nearest(units.lon[largest], units.lat[largest])
        covered_population = int(units.population[covered].sum())
        population = units.total_population
        product_rows.append(
            {
                "slug": slug,
                "name": category["name"],
                "amaps": int(mask.sum()),
                "covered_population": covered_population,
                "share": round(covered_population / population, 6) if population else 0.0,
                "missing_communes": len(missing),
                "missing_population": int(units.population[missing].sum()),
                "largest_missing": [
                    {
                        "code": units.code[i],
                        "name": units.name[i],
                        "population": int(units.population[i]),
                        "nearest_km": km(distance),
                    }
                    for i, distance in zip(largest, largest_distances, strict=True)
                ],
            }
        )
    return product_rows, product_distances


def _network_summary(*, network: Network, territory: Territory, departments: list[dict]) -> dict:
    return {
        "slug": network.slug,
        "name": network.name,
        "level": network.level,
        "level_label": str(network.get_level_display()),
        "status": network.status,
        "status_label": str(network.get_status_display()),
        "territory": {
            "departments": [
                {"code": d["code"], "name": d["name"]} for d in departments if d["code"] in territory.department_codes
            ],
            "department_codes": list(territory.department_codes),
            "region_codes": list(territory.region_codes),
            "drawn": territory.polygon is not None,
            "everywhere": territory.everywhere,
        },
    }


def _headline_figures(
    *,
    units: geo_coverage.Units,
    amaps: list[dict],
    farms: list[dict],
    distances: np.ndarray,
    amap_count_by_unit: Counter,
    farm_count_by_unit: Counter,
) -> dict:
    """The key figures: population, communes, AMAPs and farms (in the territory, per 100,000)."""
    population = units.total_population
    amaps_inside = sum(amap_count_by_unit.get(c, 0) for c in units.code)
    farms_inside = sum(farm_count_by_unit.get(c, 0) for c in units.code)
    return {
        "population": population,
        "communes": len(units),
        "unlocated_communes": [{"code": c, "name": n, "population": p} for c, n, p in units.unlocated],
        "amaps": len(amaps),
        "amaps_in_territory": amaps_inside,
        "amaps_members": sum(1 for a in amaps if a["member"]),
        "amaps_per_100k": per_100k(amaps_inside, population),
        "farms": len(farms),
        "farms_in_territory": farms_inside,
        "farms_per_100k": per_100k(farms_inside, population),
        "communes_with_amap": sum(1 for c in units.code if amap_count_by_unit.get(c)),
        "median_nearest_km": km(float(np.median(distances))) if len(distances) else None,
    }


def _commune_table(
    *,
    units: geo_coverage.Units,
    distances: np.ndarray,
    radius_km: float,
    amaps: list[dict],
    nearest_index: np.ndarray,
    area_shares,
    amap_count_by_unit: Counter,
    farm_count_by_unit: Counter,
    product_distances: np.ndarray | None,
) -> dict:
    """Per-commune columns (for the map, the downloads and `exports.commune_rows`)."""
    return {
        "code": units.code.tolist(),
        "name": units.name.tolist(),
        "department": units.department.tolist(),
        "population": units.population.tolist(),
        "nearest_km": [km(v) for v in distances],
        "nearest_amap": [amaps[i]["name"] if i >= 0 else None for i in nearest_index],
        "covered": (distances <= radius_km * 1000.0).tolist(),
        "area_share": None
        if area_shares is None
        else [None if np.isnan(s) else round(float(s), 4) for s in area_shares],
        "amaps": [amap_count_by_unit.get(c, 0) for c in units.code],
        "farms": [farm_count_by_unit.get(c, 0) for c in units.code],
        "product_nearest_km": [km(v) for v in product_distances] if product_distances is not None else None,
    }
