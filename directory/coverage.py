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

import datetime as dt
import json
import math
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from geo import coverage as geo_coverage

from .models import Amap, Farm, Network, Partnership, ProductCategory

RADIUS_KM_MIN = 0.5
RADIUS_KM_MAX = 50.0
RADIUS_KM_DEFAULT = 10.0
MIN_POPULATION_DEFAULT = 1000
MIN_POPULATION_MAX = 1_000_000
CURVE_RADII_KM = tuple(range(1, 31))
# A product is "common" when at least this share of the network's AMAPs offer it.
COMMON_PRODUCT_SHARE = 0.5
LIST_LIMIT = 100
# A farm that never stated its delivery radius (null): "AMAPs in reach" counts within this distance.
UNKNOWN_DELIVERY_RADIUS_KM = 30
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
HISTORY_RULE = gettext_lazy(
    "Une AMAP compte à une date donnée à partir de sa date de création et jusqu'à sa date de fermeture ; "
    "les AMAP sans date de création, et celles arrêtées sans date de fermeture, ne sont pas comptées."
)
CACHE_VERSION_KEY = "coverage:version"
CACHE_TIMEOUT = 24 * 3600

_CACHE_VERSION = 2  # bump when the shape of the cached dict changes


class TerritoryError(ValueError):
    """The network has no territory to compute on; the message is for people."""


@dataclass(frozen=True)
class Territory:
    department_codes: tuple[str, ...]
    region_codes: tuple[str, ...]
    polygon: object | None  # GEOS MultiPolygon, WGS84
    everywhere: bool

    def where_sql(self, *, commune_alias: str, point_sql: str) -> tuple[str, list]:
        """SQL condition (and params) for rows whose commune / point lies in the territory."""
        if self.everywhere:
            return "TRUE", []
        clauses, params = [], []
        if self.department_codes:
            clauses.append(f"{commune_alias}.department_id = ANY(%s)")
            params.append(list(self.department_codes))
        if self.region_codes:
            clauses.append(f"{commune_alias}.region_id = ANY(%s)")
            params.append(list(self.region_codes))
        if self.polygon is not None:
            clauses.append(f"ST_Intersects(ST_GeomFromEWKB(%s), {point_sql})")
            params.append(bytes(self.polygon.ewkb))
        return ("(" + " OR ".join(clauses) + ")") if clauses else "FALSE", params


def network_territory(*, network: Network) -> Territory:
    """The network's territory: its départements, régions and drawn polygon (all of France for
    a national network without any); TerritoryError when it has none."""
    departments = tuple(sorted(network.departments.values_list("code", flat=True)))
    regions = tuple(sorted(network.regions.values_list("code", flat=True)))
    polygon = network.custom_territory
    if not departments and not regions and polygon is None:
        if network.level == Network.Level.NATIONAL:
            return Territory((), (), None, everywhere=True)
        raise TerritoryError(
            _("Le réseau « %(name)s » n'a pas de territoire : choisissez des départements, des régions ou dessinez-le.")
            % {"name": network.name}
        )
    return Territory(departments, regions, polygon, everywhere=False)


def network_units(*, territory: Territory) -> geo_coverage.Units:
    return geo_coverage.load_units(
        department_codes=territory.department_codes,
        region_codes=territory.region_codes,
        polygon=territory.polygon,
        everywhere=territory.everywhere,
    )


# ---------------------------------------------------------------------------------------------
# Directory rows


# The unit (commune, or arrondissement of Paris/Lyon/Marseille) a point belongs to: the nearest
# arrondissement outline, looked up only for the three cities that have them.
_UNIT_SQL = """
CASE WHEN {commune} IN (SELECT parent_id FROM geo_commune WHERE parent_id IS NOT NULL)
     THEN (SELECT arm.code FROM geo_commune arm WHERE arm.parent_id = {commune} AND arm.geom IS NOT NULL
           ORDER BY arm.geom <-> {point} LIMIT 1)
     ELSE {commune} END
"""

# Current partnerships of an AMAP / a farm (with an active farm / AMAP).
_CURRENT_PARTNERSHIP = "p.is_active AND (p.until IS NULL OR p.until >= %s)"


@contextmanager
def _no_jit():
    """A cursor in a transaction without PostgreSQL's JIT: compiling these one-off queries costs
    more (0.1–0.3 s each) than it saves."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL jit = off")
        yield cursor


def _network_amap_rows(*, network: Network, territory: Territory) -> list[dict]:
    """Every AMAP of the territory or of the network (any status), with its point, unit and, for
    the active ones, what it offers: its current partnerships, else what it declares."""
    point = "a.location::geometry"
    where, params = territory.where_sql(commune_alias="c", point_sql=point)
    today = timezone.localdate()
    # Only constant SQL fragments are interpolated; values go through parameters.
    sql = f"""
        SELECT a.id, a.name, a.status, ST_X({point}), ST_Y({point}), a.founded_on, a.closed_on,
               c.name, c.department_id, {_UNIT_SQL.format(commune="a.commune_id", point=point)} AS unit,
               EXISTS (SELECT 1 FROM directory_amap_networks n WHERE n.amap_id = a.id AND n.network_id = %s),
               CASE WHEN a.status = 'active' THEN ARRAY(
                   SELECT DISTINCT pc.slug FROM directory_partnership p
                   JOIN directory_farm f ON f.id = p.farm_id AND f.is_active
                   JOIN directory_productcategory pc ON pc.id = p.product_id
                   WHERE p.amap_id = a.id AND {_CURRENT_PARTNERSHIP}) END,
               CASE WHEN a.status = 'active' THEN ARRAY(
                   SELECT pc.slug FROM directory_amap_products ap
                   JOIN directory_productcategory pc ON pc.id = ap.productcategory_id
                   WHERE ap.amap_id = a.id) END
        FROM directory_amap a JOIN geo_commune c ON c.code = a.commune_id
        WHERE {where}
           OR a.id IN (SELECT amap_id FROM directory_amap_networks WHERE network_id = %s)
        ORDER BY a.id
    """  # noqa: S608
    with _no_jit() as cursor:
        cursor.execute(sql, [network.pk, today, *params, network.pk])
        rows = cursor.fetchall()
    keys = ("id", "name", "status", "lon", "lat", "founded_on", "closed_on", "commune", "department", "unit", "member")
    result = []
    for row in rows:
        amap = dict(zip(keys, row[:-2], strict=True))
        partnered, declared = row[-2], row[-1]
        amap["products"] = frozenset(partnered or declared or ())
        result.append(amap)
    return result


def _network_farm_rows(*, network: Network, territory: Territory) -> list[dict]:
    """Active farms of the territory or of the network, at their public (masked) location, with
    their products and whether they have a current partnership with an active AMAP."""
    point = "f.public_location::geometry"
    where, params = territory.where_sql(commune_alias="c", point_sql=point)
    today = timezone.localdate()
    sql = f"""
        SELECT f.id, f.name, ST_X({point}), ST_Y({point}), f.delivery_radius_km, c.name, c.department_id,
               CASE WHEN f.commune_id IS NULL THEN NULL
                    ELSE {_UNIT_SQL.format(commune="f.commune_id", point=point)} END AS unit,
               EXISTS (SELECT 1 FROM directory_partnership p JOIN directory_amap a ON a.id = p.amap_id
                       WHERE p.farm_id = f.id AND a.status = 'active' AND {_CURRENT_PARTNERSHIP}),
               ARRAY(SELECT pc.slug FROM directory_farm_products fp
                     JOIN directory_productcategory pc ON pc.id = fp.productcategory_id
                     WHERE fp.farm_id = f.id)
        FROM directory_farm f LEFT JOIN geo_commune c ON c.code = f.commune_id
        WHERE f.is_active AND f.public_location IS NOT NULL
          AND ({where} OR f.id IN (SELECT farm_id FROM directory_farm_networks WHERE network_id = %s))
        ORDER BY f.id
    """  # noqa: S608
    with _no_jit() as cursor:
        cursor.execute(sql, [today, *params, network.pk])
        rows = cursor.fetchall()
    keys = ("id", "name", "lon", "lat", "delivery_radius_km", "commune", "department", "unit", "partnered", "products")
    farms = [dict(zip(keys, row, strict=True)) for row in rows]
    for farm in farms:
        farm["products"] = frozenset(farm["products"])
    return farms


# ---------------------------------------------------------------------------------------------
# Cache


def coverage_cache_bump(**_kwargs) -> None:
    """Invalidate every cached coverage (the directory changed)."""
    try:
        cache.incr(CACHE_VERSION_KEY)
    except ValueError:
        cache.set(CACHE_VERSION_KEY, int(timezone.now().timestamp() * 1000), None)


def _on_m2m_changed(sender, instance, action, **_kwargs) -> None:
    if action in {"post_add", "post_remove", "post_clear"}:
        coverage_cache_bump()


def connect_signals() -> None:
    """Called from DirectoryConfig.ready(): any change to the directory invalidates coverage."""
    for model in (Amap, Farm, Partnership, Network):
        post_save.connect(coverage_cache_bump, sender=model, dispatch_uid=f"coverage-save-{model.__name__}")
        post_delete.connect(coverage_cache_bump, sender=model, dispatch_uid=f"coverage-delete-{model.__name__}")
    for through in (
        Amap.products.through,
        Amap.networks.through,
        Farm.products.through,
        Farm.networks.through,
        Network.departments.through,
        Network.regions.through,
    ):
        m2m_changed.connect(_on_m2m_changed, sender=through, dispatch_uid=f"coverage-m2m-{through.__name__}")


def _directory_fingerprint() -> str:
    # Bulk writes (imports, demo data) send no signal: counts and last changes catch them.
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT (SELECT count(*) || '/' || coalesce(max(updated_at)::text, '') FROM directory_amap),
                   (SELECT count(*) || '/' || coalesce(max(updated_at)::text, '') FROM directory_farm),
                   (SELECT count(*) || '/' || coalesce(max(updated_at)::text, '') FROM directory_partnership),
                   (SELECT count(*) || '/' || coalesce(max(updated_at)::text, '') FROM directory_network)
            """
        )
        return "|".join(cursor.fetchone())


def _cache_key(*, network: Network, radius_km: float, product: str | None, min_population: int) -> str:
    version = cache.get(CACHE_VERSION_KEY)
    if version is None:
        coverage_cache_bump()
        version = cache.get(CACHE_VERSION_KEY)
    import hashlib

    fingerprint = hashlib.sha1(_directory_fingerprint().encode(), usedforsecurity=False).hexdigest()[:12]
    params = f"{network.pk}:{radius_km:g}:{product or '-'}:{min_population}"
    return f"coverage:{_CACHE_VERSION}:{version}:{fingerprint}:{params}"


# ---------------------------------------------------------------------------------------------
# The computation


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
    key = _cache_key(network=network, radius_km=radius_km, product=product, min_population=min_population)
    if use_cache:
        cached = cache.get(key)
        if cached is not None:
            return cached
    result = _compute(network=network, radius_km=radius_km, product=product, min_population=min_population)
    result["cache_key"] = key
    cache.set(key, result, CACHE_TIMEOUT)
    return result


def _km(metres: float) -> float | None:
    return round(float(metres) / 1000.0, 2) if math.isfinite(metres) else None


def _per_100k(count: int, population: int) -> float | None:
    return round(count * 100_000 / population, 2) if population else None


def _compute(*, network: Network, radius_km: float, product: str | None, min_population: int) -> dict:
    territory = network_territory(network=network)
    units = network_units(territory=territory)
    if len(units) == 0:
        raise TerritoryError(
            _("Le territoire du réseau « %(name)s » ne contient aucune commune.") % {"name": network.name}
        )
    all_amaps = _network_amap_rows(network=network, territory=territory)
    amaps = [a for a in all_amaps if a["status"] == Amap.Status.ACTIVE]
    farms = _network_farm_rows(network=network, territory=territory)
    categories = list(ProductCategory.objects.order_by("position", "name").values("slug", "name"))
    category_names = {c["slug"]: c["name"] for c in categories}

    amap_points = geo_coverage.PointSet([a["lon"] for a in amaps], [a["lat"] for a in amaps])
    distances, nearest_index = amap_points.nearest(units.lon, units.lat)
    reference = geo_coverage.population_coverage(units=units, distances_m=distances, radius_km=radius_km)

    area_note = geo_coverage.area_weighted_too_costly(units=units, points=len(amaps))
    area_shares = None
    area_figure = None
    if area_note is None:
        area_shares = geo_coverage.area_weighted_shares(
            units=units, lon=amap_points.lon, lat=amap_points.lat, radius_km=radius_km
        )
        area_figure = geo_coverage.area_weighted_coverage(units=units, shares=area_shares, radius_km=radius_km)
        area_note = _(
            "part de la surface de chaque commune à moins de %(r)s km, population supposée répartie uniformément"
        ) % {"r": f"{radius_km:g}"}

    amap_units = [a["unit"] for a in amaps]
    farm_units = [f["unit"] for f in farms if f["unit"]]
    amap_count_by_unit = Counter(amap_units)
    farm_count_by_unit = Counter(farm_units)

    # Per département / région.
    def groups(level: str) -> list[dict]:
        amap_density = geo_coverage.density_per_100k(units=units, item_unit_codes=amap_units, level=level)
        farm_density = geo_coverage.density_per_100k(units=units, item_unit_codes=farm_units, level=level)
        covered = geo_coverage.covered_population_by_group(
            units=units, distances_m=distances, radius_km=radius_km, level=level
        )
        names = _level_names(level, list(amap_density))
        rows = []
        for key, density in amap_density.items():
            population, covered_population = covered[key]
            rows.append(
                {
                    "code": key,
                    "name": names.get(key, key),
                    "population": density.population,
                    "amaps": density.count,
                    "amaps_per_100k": _per_100k(density.count, density.population),
                    "farms": farm_density[key].count,
                    "farms_per_100k": _per_100k(farm_density[key].count, density.population),
                    "covered_population": covered_population,
                    "share": round(covered_population / population, 6) if population else 0.0,
                }
            )
        rows.sort(key=lambda r: r["code"])
        return rows

    departments = groups("department")
    regions = groups("region")

    # White zones (the largest communes without an AMAP when there is none).
    wz_communes, wz_groups = geo_coverage.white_zones(
        units=units,
        distances_m=distances,
        radius_km=radius_km,
        min_population=min_population,
        adjacency=_adjacency_for(units, distances, radius_km),
    )

    # Product gaps.
    offered = {a["id"]: a["products"] for a in amaps if a["products"]}
    # offers[slug][i]: whether the i-th AMAP offers the product.
    offers = {c["slug"]: np.zeros(len(amaps), dtype=bool) for c in categories}
    for i, amap in enumerate(amaps):
        for slug in offered.get(amap["id"], ()):
            if slug in offers:
                offers[slug][i] = True
    product_rows = []
    product_distances: dict[str, np.ndarray] = {}
    radius_m = radius_km * 1000.0
    for category in categories:
        slug = category["slug"]
        mask = offers[slug]
        pts = geo_coverage.PointSet(amap_points.lon[mask], amap_points.lat[mask])
        if slug == product:
            # The chosen product gets its distances (per-commune table and map layer).
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
                        "nearest_km": _km(distance),
                    }
                    for i, distance in zip(largest, largest_distances, strict=True)
                ],
            }
        )

    opportunities = _opportunities(
        amaps=amaps,
        farms=farms,
        offered=offered,
        offers=offers,
        amap_points=amap_points,
        category_names=category_names,
    )
    history = _history(all_amaps=all_amaps, units=units, radius_km=radius_km)

    selected = None
    if product:
        selected = next(row for row in product_rows if row["slug"] == product)

    communes = {
        "code": units.code.tolist(),
        "name": units.name.tolist(),
        "department": units.department.tolist(),
        "population": units.population.tolist(),
        "nearest_km": [_km(v) for v in distances],
        "nearest_amap": [amaps[i]["name"] if i >= 0 else None for i in nearest_index],
        "covered": (distances <= radius_km * 1000.0).tolist(),
        "area_share": None
        if area_shares is None
        else [None if np.isnan(s) else round(float(s), 4) for s in area_shares],
        "amaps": [amap_count_by_unit.get(c, 0) for c in units.code],
        "farms": [farm_count_by_unit.get(c, 0) for c in units.code],
        "product_nearest_km": [_km(v) for v in product_distances[product]] if product else None,
    }

    population = units.total_population
    amaps_inside = sum(amap_count_by_unit.get(c, 0) for c in units.code)
    farms_inside = sum(farm_count_by_unit.get(c, 0) for c in units.code)
    return {
        "network": {
            "slug": network.slug,
            "name": network.name,
            "level": network.level,
            "level_label": str(network.get_level_display()),
            "status": network.status,
            "status_label": str(network.get_status_display()),
            "territory": {
                "departments": [
                    {"code": d["code"], "name": d["name"]}
                    for d in departments
                    if d["code"] in territory.department_codes
                ],
                "department_codes": list(territory.department_codes),
                "region_codes": list(territory.region_codes),
                "drawn": territory.polygon is not None,
                "everywhere": territory.everywhere,
            },
        },
        "params": {
            "radius_km": radius_km,
            "product": product,
            "product_name": category_names.get(product) if product else None,
            "min_population": min_population,
        },
        "methods": {key: str(label) for key, label in geo_coverage.METHOD_LABELS.items()},
        "amap_selection": str(AMAP_SELECTION),
        "product_rule": str(PRODUCT_RULE),
        "figures": {
            "population": population,
            "communes": len(units),
            "unlocated_communes": [{"code": c, "name": n, "population": p} for c, n, p in units.unlocated],
            "amaps": len(amaps),
            "amaps_in_territory": amaps_inside,
            "amaps_members": sum(1 for a in amaps if a["member"]),
            "amaps_per_100k": _per_100k(amaps_inside, population),
            "farms": len(farms),
            "farms_in_territory": farms_inside,
            "farms_per_100k": _per_100k(farms_inside, population),
            "communes_with_amap": sum(1 for c in units.code if amap_count_by_unit.get(c)),
            "median_nearest_km": _km(float(np.median(distances))) if len(distances) else None,
        },
        "reference_point": reference.as_dict(),
        "area_weighted": area_figure.as_dict() if area_figure else None,
        "area_weighted_note": area_note,
        "selected_product": selected,
        "curve": [
            {"radius_km": f.radius_km, "share": round(f.share, 6), "covered_population": int(f.covered_population)}
            for f in geo_coverage.coverage_curve(units=units, distances_m=distances, radii_km=CURVE_RADII_KM)
        ],
        "departments": departments,
        "regions": regions,
        "white_zones": {
            "min_population": min_population,
            "communes": [z.as_dict() for z in wz_communes],
            "groups": [z.as_dict() for z in wz_groups],
            "uncovered_communes": int((distances > radius_km * 1000.0).sum()),
            "uncovered_population": int(units.population[distances > radius_km * 1000.0].sum()),
        },
        "product_gaps": product_rows,
        "opportunities": opportunities,
        "history": history,
        "communes": communes,
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


def _adjacency_for(units: geo_coverage.Units, distances: np.ndarray, radius_km: float):
    """Adjacent uncovered communes: PostGIS for a few thousand, else France's cached adjacency."""
    uncovered = units.code[distances > radius_km * 1000.0]
    if len(uncovered) <= 3000:
        return None  # geo.coverage asks PostGIS for just these
    return france_adjacency()


def france_adjacency() -> list[tuple[str, str]]:
    """Pairs of touching communes across France (reference data: cached for a day)."""
    key = "coverage:adjacency:v1"
    pairs = cache.get(key)
    if pairs is None:
        pairs = _france_adjacency_compute()
        cache.set(key, pairs, CACHE_TIMEOUT)
    return pairs


def _france_adjacency_compute() -> list[tuple[str, str]]:
    import shapely

    with connection.cursor() as cursor:
        cursor.execute("SELECT code, ST_AsBinary(geom) FROM geo_commune WHERE geom IS NOT NULL ORDER BY code")
        rows = cursor.fetchall()
    codes = np.array([r[0] for r in rows], dtype=object)
    geoms = shapely.from_wkb([bytes(r[1]) for r in rows])
    left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    keep = left < right
    return list(zip(codes[left[keep]], codes[right[keep]], strict=True))


def _level_names(level: str, codes: list[str]) -> dict[str, str]:
    from geo.models import Commune, Department, Region

    if level == "department":
        return dict(Department.objects.filter(code__in=codes).values_list("code", "name"))
    if level == "region":
        return dict(Region.objects.filter(code__in=codes).values_list("code", "name"))
    return dict(Commune.objects.filter(code__in=codes).values_list("code", "name"))


def _opportunities(*, amaps, farms, offered, offers, amap_points, category_names) -> dict:
    """Farms without an AMAP partner, closest first to an AMAP lacking one of their products, and
    AMAPs lacking the products most AMAPs of the network offer (with the farms around them).

    The distances rank every row; the counts within reach are computed for the listed rows only
    (in a dense area a farm has thousands of AMAPs within its delivery radius)."""
    farm_products = {f["id"]: f["products"] for f in farms}
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
                "nearest_amap_lacking_km": _km(lacking_m[i]),
                "amaps_in_reach": len(in_reach),
                "amaps_lacking_its_products": len(lacking),
            }
        )

    informed = [a for a in amaps if offered.get(a["id"])]
    counts = Counter(slug for a in informed for slug in offered[a["id"]])
    common = sorted(
        (slug for slug, n in counts.items() if informed and n / len(informed) >= COMMON_PRODUCT_SHARE),
        key=lambda s: (-counts[s], s),
    )
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


def _history(*, all_amaps: list[dict], units: geo_coverage.Units, radius_km: float) -> dict:
    """AMAPs created and closed per year, and the coverage on 31 December of each year."""
    dated = []
    undated = 0
    for amap in all_amaps:
        if amap["status"] == Amap.Status.CREATING:
            continue
        if amap["founded_on"] is None:
            undated += 1
            continue
        if amap["closed_on"] is None and amap["status"] != Amap.Status.ACTIVE:
            undated += 1  # stopped, but when?
            continue
        dated.append(amap)
    today = timezone.localdate()
    created = Counter(a["founded_on"].year for a in dated)
    closed = Counter(a["closed_on"].year for a in dated if a["closed_on"])
    years = []
    if dated:
        first = min(a["founded_on"].year for a in dated)
        dates = [dt.date(y, 12, 31) if y < today.year else today for y in range(first, today.year + 1)]
        points = geo_coverage.coverage_history(
            units=units,
            lon=np.array([a["lon"] for a in dated]),
            lat=np.array([a["lat"] for a in dated]),
            opened=[a["founded_on"] for a in dated],
            closed=[a["closed_on"] for a in dated],
            dates=dates,
            radius_km=radius_km,
        )
        for point in points:
            years.append(
                {
                    "year": point.date.year,
                    "date": point.date.isoformat(),
                    "created": created.get(point.date.year, 0),
                    "closed": closed.get(point.date.year, 0),
                    "active": point.points,
                    "covered_population": point.covered_population,
                    "share": round(point.share, 6),
                }
            )
    return {"years": years, "dated_amaps": len(dated), "undated_amaps": undated, "rule": str(HISTORY_RULE)}


# ---------------------------------------------------------------------------------------------
# Exports


def coverage_public(result: dict) -> dict:
    """The figures without the per-commune arrays and points (API payload)."""
    return {key: value for key, value in result.items() if key not in {"communes", "amap_points", "cache_key"}}


def commune_rows(result: dict) -> list[dict]:
    """One dict per commune (for CSV/GeoJSON downloads and tables)."""
    c = result["communes"]
    rows = []
    for i, code in enumerate(c["code"]):
        row = {
            "code": code,
            "name": c["name"][i],
            "department": c["department"][i],
            "population": c["population"][i],
            "nearest_km": c["nearest_km"][i],
            "nearest_amap": c["nearest_amap"][i],
            "covered": c["covered"][i],
            "area_share": c["area_share"][i] if c["area_share"] is not None else None,
            "amaps": c["amaps"][i],
            "amaps_per_100k": _per_100k(c["amaps"][i], c["population"][i]),
            "farms": c["farms"][i],
        }
        if c["product_nearest_km"] is not None:
            row["product_nearest_km"] = c["product_nearest_km"][i]
        rows.append(row)
    return rows


def commune_geometries(codes: list[str], *, precision: int = 4) -> dict[str, str]:
    """GeoJSON geometry text of each commune outline, built in PostGIS."""
    if not codes:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT code, ST_AsGeoJSON(geom, %s) FROM geo_commune WHERE code = ANY(%s) AND geom IS NOT NULL",
            [precision, list(codes)],
        )
        return dict(cursor.fetchall())


def department_geometries(codes: list[str], *, precision: int = 3) -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT code, ST_AsGeoJSON(geom, %s) FROM geo_department WHERE code = ANY(%s) AND geom IS NOT NULL",
            [precision, list(codes)],
        )
        return dict(cursor.fetchall())


def _feature(geometry_json: str, properties: dict) -> str:
    return '{"type":"Feature","geometry":' + geometry_json + ',"properties":' + json.dumps(properties) + "}"


def communes_geojson(result: dict) -> str:
    """FeatureCollection of the territory's communes with their coverage figures."""
    rows = commune_rows(result)
    geometries = cached_commune_geometries(result, [r["code"] for r in rows])
    features = [_feature(geometries[r["code"]], r) for r in rows if r["code"] in geometries]
    return '{"type":"FeatureCollection","features":[' + ",".join(features) + "]}"


def cached_commune_geometries(result: dict, codes: list[str]) -> dict[str, str]:
    key = f"{result.get('cache_key', 'coverage')}:geometries"
    geometries = cache.get(key)
    if geometries is None:
        geometries = commune_geometries(codes)
        cache.set(key, geometries, CACHE_TIMEOUT)
    return geometries


def white_zones_geojson(result: dict) -> str:
    """FeatureCollection of the white zones: each commune, and each group as one outline."""
    key = f"{result.get('cache_key', 'coverage')}:white-zones"
    text = cache.get(key)
    if text is not None:
        return text
    zones = [("commune", z) for z in result["white_zones"]["communes"]] + [
        ("group", z) for z in result["white_zones"]["groups"]
    ]
    zone_ids, codes = [], []
    for i, (_kind, zone) in enumerate(zones):
        zone_ids.extend([i] * len(zone["codes"]))
        codes.extend(zone["codes"])
    outlines: dict[int, str] = {}
    if zones:
        with connection.cursor() as cursor:
            cursor.execute(
                """
                SELECT z.zone, ST_AsGeoJSON(ST_Union(c.geom), 4)
                FROM unnest(%s::int[], %s::text[]) AS z(zone, code)
                JOIN geo_commune c ON c.code = z.code AND c.geom IS NOT NULL
                GROUP BY z.zone
                """,
                [zone_ids, codes],
            )
            outlines = dict(cursor.fetchall())
    features = []
    for i, (kind, zone) in enumerate(zones):
        if i not in outlines:
            continue
        props = {"kind": kind, "rank": i + 1, **zone, "radius_km": result["params"]["radius_km"]}
        features.append(_feature(outlines[i], props))
    text = '{"type":"FeatureCollection","features":[' + ",".join(features) + "]}"
    cache.set(key, text, CACHE_TIMEOUT)
    return text
