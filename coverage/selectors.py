"""Coverage reads from the database: a network's AMAP and farm rows, commune adjacency, names and
outlines of territories (GeoJSON built in PostGIS)."""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from directory.models import Network
from geo.models import Commune, Department, Region

from .cache import CACHE_TIMEOUT
from .territory import Territory

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


def network_amap_rows(*, network: Network, territory: Territory) -> list[dict]:
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


def network_farm_rows(*, network: Network, territory: Territory) -> list[dict]:
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


def level_names(level: str, codes: list[str]) -> dict[str, str]:
    """Names of départements, régions or communes by code."""
    if level == "department":
        return dict(Department.objects.filter(code__in=codes).values_list("code", "name"))
    if level == "region":
        return dict(Region.objects.filter(code__in=codes).values_list("code", "name"))
    return dict(Commune.objects.filter(code__in=codes).values_list("code", "name"))


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


def white_zone_outlines(*, zone_ids: list[int], codes: list[str]) -> dict[int, str]:
    """GeoJSON outline of each white zone (the union of its communes), by zone id."""
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
        return dict(cursor.fetchall())
