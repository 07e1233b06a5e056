"""The directory's places as map data, built in PostGIS: filters, GeoJSON (`json_agg`), networks'
territories, and the keyword arguments of a network's map (`network_map_data`).

The directory's network page draws its map from here; `maps` builds its pages, vector tiles
and exports on top of it. Filtering is the directory's own (`selectors.amaps_filtered` /
`farms_filtered`), so the map, the search and the API agree on what "légumes, le mardi,
accepte des membres" means. Farms are only ever read at their masked `public_location`: no
query here selects `Farm.location`.
"""

# SQL here is assembled from identifiers (model meta) and ORM-compiled SQL only; every value
# travels as a query parameter.
# ruff: noqa: S608

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from urllib.parse import urlencode

from django.db import connection
from django.db.models import QuerySet
from django.urls import reverse
from django.utils.translation import gettext as _

from .models import Amap, Farm, Network
from .search import parse_search_params
from .selectors import amaps_filtered, farms_filtered

# Up to this many points a map carries its data inline as one GeoJSON (clustered in the
# browser); beyond, it loads grid-clustered vector tiles for what is in view.
INLINE_LIMIT = 3000
FILTER_NAMES = ("products", "weekday", "accepting", "network")
FARM_FILTER_NAMES = ("products", "network")


@dataclass(frozen=True)
class MapFilters:
    """What the visitor asked the map to show (the same words as the API's query parameters)."""

    products: tuple[str, ...] = ()
    weekday: int | None = None
    accepting: bool | None = None
    network: str | None = None

    def amap_kwargs(self) -> dict:
        return {
            "products": list(self.products) or None,
            "weekday": self.weekday,
            "accepting": self.accepting,
            "network": self.network,
        }

    def farm_kwargs(self) -> dict:
        # Weekday and membership describe AMAPs; a farm layer follows products and network.
        return {"products": list(self.products) or None, "network": self.network}

    def query(self) -> dict[str, str]:
        """The filters as query parameters (for tile URLs and download links)."""
        query: dict[str, str] = {}
        if self.products:
            query["products"] = ",".join(self.products)
        if self.weekday is not None:
            query["weekday"] = str(self.weekday)
        if self.accepting is not None:
            query["accepting"] = "true" if self.accepting else "false"
        if self.network:
            query["network"] = self.network
        return query

    def cache_key(self) -> str:
        return "|".join(f"{k}={v}" for k, v in sorted(self.query().items()))


class MapFilterError(ValueError):
    def __init__(self, errors: dict[str, list[str]]):
        super().__init__(errors)
        self.errors = errors


def parse_map_filters(query) -> MapFilters:
    """Map filters from a query string; raises `MapFilterError` (errors by parameter) on bad input."""
    params = parse_search_params(query, allowed=FILTER_NAMES)
    if params.errors:
        raise MapFilterError(params.errors)
    return MapFilters(
        products=tuple(params.products or ()),
        weekday=params.weekday,
        accepting=params.accepting,
        network=params.network,
    )


def data_version() -> str:
    """Changes whenever an AMAP, a farm or a network is added, edited or removed.

    Row counts catch deletions; the latest `updated_at` (indexed) and `id` catch edits and
    additions. One round trip, a few milliseconds at 100k rows.
    """
    parts = []
    for model in (Amap, Farm, Network):
        table = model._meta.db_table
        parts.append(
            f"(SELECT count(*) FROM {table}), (SELECT max(updated_at) FROM {table}), (SELECT max(id) FROM {table})"
        )
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(parts))
        row = cursor.fetchone()
    return hashlib.blake2b(repr(row).encode(), digest_size=6).hexdigest()


def detail_url_template(name: str) -> str:
    """`/amap/{id}/` for `directory:amap_detail` (the map script fills in the id)."""
    marker = 987654321
    return reverse(name, args=[marker]).replace(str(marker), "{id}")


# --- SQL pieces shared with the vector tiles (maps.selectors) ---------------------------------


def _weekday_names() -> list[str]:
    return [_("lundi"), _("mardi"), _("mercredi"), _("jeudi"), _("vendredi"), _("samedi"), _("dimanche")]


def _accepting_labels() -> dict[str, str]:
    return {value: str(label) for value, label in Amap.Accepting.choices}


def amap_property_sql(alias: str = "a") -> tuple[str, list]:
    """SQL columns (name, commune, delivery, products, accepting) of one AMAP and their params."""
    through = Amap.products.through._meta.db_table
    sql = f"""
        {alias}.name AS name,
        co.name AS commune,
        concat_ws(', ',
            nullif(array_to_string(ARRAY(
                SELECT (%s::text[])[d] FROM unnest({alias}.delivery_weekdays) AS d ORDER BY d), ', '), ''),
            CASE WHEN {alias}.delivery_start IS NOT NULL AND {alias}.delivery_end IS NOT NULL
                 THEN replace(to_char({alias}.delivery_start, 'HH24"h"MI'), 'h00', 'h')
                      || '–' || replace(to_char({alias}.delivery_end, 'HH24"h"MI'), 'h00', 'h') END
        ) AS delivery,
        (SELECT string_agg(pc.name, ', ' ORDER BY pc.position, pc.name)
           FROM {through} ap JOIN directory_productcategory pc ON pc.id = ap.productcategory_id
          WHERE ap.amap_id = {alias}.id) AS products,
        (%s::jsonb ->> {alias}.accepting_members) AS accepting
    """
    return sql, [_weekday_names(), json.dumps(_accepting_labels())]


def farm_property_sql(alias: str = "f") -> tuple[str, list]:
    through = Farm.products.through._meta.db_table
    sql = f"""
        {alias}.name AS name,
        co.name AS commune,
        (SELECT string_agg(pc.name, ', ' ORDER BY pc.position, pc.name)
           FROM {through} fp JOIN directory_productcategory pc ON pc.id = fp.productcategory_id
          WHERE fp.farm_id = {alias}.id) AS products
    """
    return sql, []


def layer_queryset(layer: str, filters: MapFilters) -> QuerySet:
    """The AMAPs (`layer` = "amaps") or farms with a public point that the filters keep."""
    if layer == "amaps":
        return amaps_filtered(**filters.amap_kwargs())
    return farms_filtered(**filters.farm_kwargs()).exclude(public_location=None)


def layer_point_field(layer: str) -> str:
    # The only point of a farm that ever leaves the database is the masked public one.
    return "location" if layer == "amaps" else "public_location"


# --- GeoJSON ---------------------------------------------------------------------------------


def feature_collection(*, layer: str, filters: MapFilters | None = None, limit: int | None = None) -> dict:
    """AMAPs or farms (`layer` = "amaps" | "farms") as a GeoJSON FeatureCollection dict."""
    return json.loads(feature_collection_json(layer=layer, filters=filters, limit=limit))


def feature_collection_json(*, layer: str, filters: MapFilters | None = None, limit: int | None = None) -> str:
    """The same FeatureCollection as JSON text, built in one PostGIS query (`json_agg`)."""
    filters = filters or MapFilters()
    ids_sql, ids_params = layer_queryset(layer, filters).order_by().values("id").query.sql_with_params()
    field = layer_point_field(layer)
    if layer == "amaps":
        table, alias, (props_sql, props_params) = Amap._meta.db_table, "a", amap_property_sql("a")
        url = detail_url_template("directory:amap_detail")
    else:
        table, alias, (props_sql, props_params) = Farm._meta.db_table, "f", farm_property_sql("f")
        url = detail_url_template("directory:farm_detail")
    limit_sql = "LIMIT %s" if limit else ""
    sql = f"""
        SELECT json_build_object('type', 'FeatureCollection', 'features', coalesce(json_agg(
            json_build_object(
                'type', 'Feature',
                'id', p.id,
                'geometry', ST_AsGeoJSON(p.geom, 6)::json,
                'properties', json_build_object(
                    'kind', %s, 'id', p.id, 'name', p.name, 'url', replace(%s, '{{id}}', p.id::text),
                    'commune', p.commune, 'products', p.products
                    {", 'delivery', p.delivery, 'accepting', p.accepting" if layer == "amaps" else ""}
                )
            ) ORDER BY p.name, p.id), '[]'::json))::text
        FROM (
            SELECT {alias}.id, {alias}.{field}::geometry AS geom, {props_sql}
            FROM {table} {alias}
            LEFT JOIN geo_commune co ON co.code = {alias}.commune_id
            WHERE {alias}.id IN ({ids_sql}) AND {alias}.{field} IS NOT NULL
            ORDER BY {alias}.name, {alias}.id
            {limit_sql}
        ) AS p
    """
    kind = "amap" if layer == "amaps" else "farm"
    params = [kind, url, *props_params, *ids_params] + ([limit] if limit else [])
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def layer_count(*, layer: str, filters: MapFilters | None = None) -> int:
    return layer_queryset(layer, filters or MapFilters()).count()


# --- territories -----------------------------------------------------------------------------


def territories_json(*, network: str | None = None, tolerance: float = 0.005) -> str:
    """Networks' territories (their départements, régions or drawn area), simplified, as GeoJSON text."""
    network_table = Network._meta.db_table
    dep_through = Network.departments.through._meta.db_table
    reg_through = Network.regions.through._meta.db_table
    where = "WHERE n.slug = %s" if network else ""
    sql = f"""
        WITH parts AS (
            SELECT n.id, n.name, n.slug, d.geom FROM {network_table} n
              JOIN {dep_through} nd ON nd.network_id = n.id JOIN geo_department d ON d.code = nd.department_id
              {where}
            UNION ALL
            SELECT n.id, n.name, n.slug, r.geom FROM {network_table} n
              JOIN {reg_through} nr ON nr.network_id = n.id JOIN geo_region r ON r.code = nr.region_id
              {where}
            UNION ALL
            SELECT n.id, n.name, n.slug, n.custom_territory FROM {network_table} n
              {where + " AND" if where else "WHERE"} n.custom_territory IS NOT NULL
        )
        SELECT json_build_object('type', 'FeatureCollection', 'features', coalesce(json_agg(json_build_object(
            'type', 'Feature',
            'geometry', ST_AsGeoJSON(ST_SimplifyPreserveTopology(geom, %s), 4)::json,
            'properties', json_build_object('name', name, 'slug', slug)
        )), '[]'::json))::text
        FROM parts WHERE geom IS NOT NULL
    """
    params = ([network] * 3 if network else []) + [tolerance]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def territories(*, network: str | None = None) -> dict:
    return json.loads(territories_json(network=network))


# --- a network's map -------------------------------------------------------------------------


def network_map_data(*, network: Network, filters: MapFilters | None = None, inline_limit: int = INLINE_LIMIT) -> dict:
    """Keyword arguments for `cartography.builders.build_network_map` for one network's page.

    Up to `inline_limit` points per layer the data is inline; beyond, the map loads tiles
    filtered on the network. Other `filters` (products…) narrow the points, not the territory.
    """
    filters = replace(filters or MapFilters(), network=network.slug)
    version = data_version()
    data: dict = {
        "territory": territories(network=network.slug),
        "amap_url": detail_url_template("directory:amap_detail"),
        "farm_url": detail_url_template("directory:farm_detail"),
    }
    if not data["territory"]["features"]:
        data["territory"] = None
    for layer, key in (("amaps", "amaps"), ("farms", "farms")):
        if layer_count(layer=layer, filters=filters) <= inline_limit:
            data[key] = feature_collection(layer=layer, filters=filters)
        else:
            data[f"{key[:-1]}_tiles"] = tile_url_template(layer=layer, filters=filters, version=version)
    return data


def tile_url_template(*, layer: str, filters: MapFilters, version: str) -> str:
    """`/carte/tuiles/amaps/{z}/{x}/{y}.pbf?v=…&products=…` for the map script."""
    path = reverse("maps:tile", kwargs={"layer": layer, "z": 0, "x": 0, "y": 0})
    path = path.replace("/0/0/0.pbf", "/{z}/{x}/{y}.pbf")
    return f"{path}?{urlencode({'v': version, **filters.query()})}"
