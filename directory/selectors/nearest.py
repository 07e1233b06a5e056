"""The nearest search: the one search that serves the pages and the API.

Nearest-N walks the GiST index with the KNN operator (`<->`, sphere distances) to shortlist,
then ranks and displays by exact geodesic distance (WGS84 ellipsoid), in one SQL statement
(see "Nearest search" below). `order_by(Distance())` computes the spheroid distance of every
row and is never used here.
"""

from __future__ import annotations

import datetime
import functools
import json
from dataclasses import dataclass
from typing import TypedDict, Unpack

import psycopg
from django.contrib.gis.geos import Point
from django.db import DEFAULT_DB_ALIAS, connection
from django.db.models import DEFERRED
from django.urls import get_script_prefix, reverse

from geo.models import Commune

from ..models import Amap, Farm
from .filtered import NetworkRef, ProductRef

# PostGIS's `<->` on geography measures on a sphere of mean radius; the exact distance is on
# the WGS84 ellipsoid. Between two points the two differ by less than 0.6 % (flattening
# 1/298 ≈ 0.34 % plus the mean-radius choice); we allow 1 % to stay clear of that bound.
SPHERE_ERROR = 0.01
MAX_SHORTLIST_ROUNDS = 6


# --- Nearest search: one SQL statement behind the pages and the API ----------------------------
#
# The nearest search is the platform's busiest read, so it is one hand-written, parameterised
# statement rather than an ORM query: compiling the equivalent queryset, building model
# instances and serializing them cost several times the search itself (measured in
# benchmarks/bench_search.py). The statement's text depends only on the table, the set of
# filters and the shortlist's length (cached); every value is a bind parameter. In PostgreSQL, it:
#   1. shortlists the N nearest rows on the sphere, `<->` walking the GiST index (KNN);
#   2. ranks them by exact WGS84 geodesic distance (`ST_Distance` on geography: Karney's
#      algorithm, as pyproj's Geod), ties by id;
#   3. builds the GeoJSON Feature of each row of the page, commune, products and networks
#      included, exactly as the API publishes it (STYLE.md: GeoJSON is built in the database);
#      the API sends that text as it is, the pages read it back into model instances.
# Each row also carries the shortlist's length and the sphere distance of its last row, which
# tell whether the shortlist was long enough (see `_nearest`).

_ORIGIN = "ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)::geography"

# Filters, as `amaps_filtered` / `farms_filtered` write them: the planner estimates these forms
# well (array statistics for `@>`, a semi-join for EXISTS) and keeps walking the location index
# in KNN order, checking each row as it comes.
_FILTERS = {
    # filter name → condition on `place`, the searched row; values are bind parameters
    "radius_km": "ST_DWithin(place.{location}, " + _ORIGIN + ", %(radius_m)s)",  # geography: true metres
    "weekday": "place.delivery_weekdays @> ARRAY[%(weekday)s]::smallint[]",
    "accepting": "place.accepting_members = %(open)s",
    "not_accepting": "place.accepting_members <> %(open)s",
    "network": (
        "EXISTS (SELECT FROM {table}_networks AS link WHERE link.{owner} = place.id"
        " AND link.network_id = (SELECT id FROM directory_network WHERE slug = %(network)s))"
    ),
    # A viewport is a lon/lat rectangle, compared as planar lon/lat geometry (see filtered._in_bbox).
    "bbox": (
        "ST_CoveredBy(place.{location}::geometry,"
        " ST_MakeEnvelope(%(min_lon)s, %(min_lat)s, %(max_lon)s, %(max_lat)s, 4326))"
    ),
}
# One EXISTS per listed product (every one must be offered), `%(product)s` becoming `%(product_<n>)s`.
_PRODUCT_FILTER = (
    "EXISTS (SELECT FROM {table}_products AS link WHERE link.{owner} = place.id"
    " AND link.productcategory_id = (SELECT id FROM directory_productcategory WHERE slug = %(product)s))"
)

# Feature properties, in the order of AmapFeatureSerializer / FarmFeatureSerializer (a test
# compares the documents). `distance_m` is rounded to the decimetre, as the API shows it.
_COMMUNE = (
    "CASE WHEN commune.code IS NULL THEN NULL"
    " ELSE json_build_object('code', commune.code, 'name', commune.name, 'department', commune.department_id) END"
)
_PRODUCTS = """COALESCE((
            SELECT json_agg(json_build_object('slug', product.slug, 'name', product.name, 'family', product.family)
                            ORDER BY product.position, product.name)
            FROM directory_productcategory AS product
            WHERE product.id = ANY(ARRAY(
                SELECT link.productcategory_id FROM {table}_products AS link WHERE link.{owner} = place.id))
        ), '[]')"""
_NETWORKS = """COALESCE((
            SELECT json_agg(json_build_object('slug', network.slug, 'name', network.name) ORDER BY network.name)
            FROM directory_network AS network
            WHERE network.id = ANY(ARRAY(
                SELECT link.network_id FROM {table}_networks AS link WHERE link.{owner} = place.id))
        ), '[]')"""
_AMAP_PROPERTIES = f"""
        'name', place.name,
        'distance_m', round(ranked.distance_m::numeric, 1),
        'status', place.status,
        'kind', place.kind,
        'accepting_members', place.accepting_members,
        'address', place.address,
        'postal_code', place.postal_code,
        'commune', {_COMMUNE},
        'delivery_weekdays', to_json(place.delivery_weekdays),
        'delivery_start', place.delivery_start,
        'delivery_end', place.delivery_end,
        'delivery_frequency', place.delivery_frequency,
        'delivery_notes', place.delivery_notes,
        'products', {_PRODUCTS},
        'networks', {_NETWORKS},
        'website', place.website,
        'page_url', %(url_prefix)s::text || place.id || %(url_suffix)s::text,
        'is_demo', place.is_demo"""
_FARM_PROPERTIES = f"""
        'name', place.name,
        'distance_m', round(ranked.distance_m::numeric, 1),
        'is_active', place.is_active,
        'commune', {_COMMUNE},
        'products', {_PRODUCTS},
        'product_details', place.product_details,
        'labels', to_json(place.labels),
        'delivery_radius_km', place.delivery_radius_km,
        'networks', {_NETWORKS},
        'website', place.website,
        'page_url', %(url_prefix)s::text || place.id || %(url_suffix)s::text,
        'is_demo', place.is_demo"""

_NEAREST_SQL = """
WITH shortlist AS MATERIALIZED (
    SELECT place.id,
           place.{location} <-> {origin} AS sphere_m,
           ST_Distance(place.{location}, {origin}) AS distance_m
    FROM {table} AS place
    WHERE {conditions}
    ORDER BY place.{location} <-> {origin}
    LIMIT {size}
), ranked AS (
    SELECT id, distance_m,
           row_number() OVER (ORDER BY distance_m, id) AS rank,
           count(*) OVER () AS fetched,
           max(sphere_m) OVER () AS last_sphere_m
    FROM shortlist
)
SELECT ranked.fetched, ranked.last_sphere_m, place.id, ranked.distance_m, json_build_object(
    'id', place.id,
    'type', 'Feature',
    'geometry', json_build_object(
        'type', 'Point',
        'coordinates', json_build_array(ST_X(place.{location}::geometry), ST_Y(place.{location}::geometry))),
    'properties', json_build_object({properties})
)::text
FROM ranked
JOIN {table} AS place ON place.id = ranked.id
LEFT JOIN geo_commune AS commune ON commune.code = place.commune_id
WHERE ranked.rank > %(offset)s AND ranked.rank <= %(needed)s
ORDER BY ranked.rank
"""


class NearFilters(TypedDict, total=False):
    """The filters of a nearest search of farms; AMAPs have two more (`AmapNearFilters`)."""

    radius_km: float | None
    products: list[str] | None
    network: str | None
    bbox: tuple[float, float, float, float] | None
    include_inactive: bool


class AmapNearFilters(NearFilters, total=False):
    weekday: int | None
    accepting: bool | None


# What a result list shows of each row, read back from its Feature's properties.
_AMAP_FIELDS = ("name", "status", "kind", "accepting_members", "address", "postal_code", "delivery_weekdays")
_AMAP_FIELDS += ("delivery_frequency", "delivery_notes", "website", "is_demo")
_FARM_FIELDS = ("name", "is_active", "product_details", "labels", "delivery_radius_km", "website", "is_demo")


@dataclass(frozen=True)
class _Layer:
    """What the nearest search needs to know about a searchable table."""

    table: str
    location: str  # the point searched, measured and published
    owner: str  # the column of the link tables ({table}_products, {table}_networks) naming the row
    active: str  # the condition for "active"
    always: str  # what every result satisfies, whatever the filters
    properties: str
    detail_url: str  # URL name of the public page
    model: type[Amap] | type[Farm]
    filters: frozenset[str]  # the keyword filters this table accepts
    fields: tuple[str, ...]  # the model fields a result list shows, read from the properties
    times: tuple[str, ...] = ()  # those of `fields` that are times of day (ISO text in JSON)


_AMAPS = _Layer(
    table="directory_amap",
    location="location",
    owner="amap_id",
    active="place.status = %(active_status)s",
    always="TRUE",
    properties=_AMAP_PROPERTIES,
    detail_url="directory:amap_detail",
    model=Amap,
    filters=frozenset(AmapNearFilters.__annotations__),
    fields=(*_AMAP_FIELDS, "delivery_start", "delivery_end"),
    times=("delivery_start", "delivery_end"),
)
# Farms are searched, measured and shown at their masked public point; the exact one is private.
_FARMS = _Layer(
    table="directory_farm",
    location="public_location",
    owner="farm_id",
    active="place.is_active",
    always="place.public_location IS NOT NULL",
    properties=_FARM_PROPERTIES,
    detail_url="directory:farm_detail",
    model=Farm,
    filters=frozenset(NearFilters.__annotations__),
    fields=_FARM_FIELDS,
)


@functools.lru_cache(maxsize=256)
def _nearest_sql(layer: _Layer, filters: frozenset[str], include_inactive: bool, size: int) -> str:
    """The statement for this table, set of filters and shortlist size (constant text: values are parameters).

    The size is written in the statement: a prepared statement's generic plan then knows its
    LIMIT and keeps the index walk (with a `LIMIT $n` it would sort the whole table).
    """
    conditions = [layer.always] + ([] if include_inactive else [layer.active])
    for name in sorted(filters):
        product = name.startswith("product_")
        conditions.append(_PRODUCT_FILTER.replace("%(product)s", f"%({name})s") if product else _FILTERS[name])
    names = {"table": layer.table, "location": layer.location, "owner": layer.owner}
    return _NEAREST_SQL.format(
        origin=_ORIGIN,
        conditions=" AND ".join(conditions).format(**names),
        properties=layer.properties.format(**names),
        size=int(size),
        **names,
    )


@dataclass(frozen=True)
class _NearestQuery:
    layer: _Layer
    filters: frozenset[str]
    include_inactive: bool
    params: dict

    def sql(self, size: int) -> str:
        return _nearest_sql(self.layer, self.filters, self.include_inactive, size)

    def cursor(self):
        """A cursor for this statement.

        The plain search (no filter: the most frequent, by far) goes through server-side binding,
        so that psycopg prepares it after a few runs (settings: `prepare_threshold`) and PostgreSQL
        then skips its planning, a third of its cost. Its plan is the same whatever the point.
        With filters, the best plan depends on their values (a rare weekday or a small radius is
        best read through its own index, then sorted): those are planned afresh at each run, with
        the values, like Django's own queries, which bind client-side and are never prepared.
        """
        if self.filters:
            return connection.cursor()
        connection.ensure_connection()
        cursor = psycopg.Cursor(connection.connection)
        return connection.make_debug_cursor(cursor) if connection.queries_logged else connection.make_cursor(cursor)


def _nearest_query(
    layer: _Layer,
    *,
    point: Point,
    limit: int,
    offset: int,
    radius_km: float | None = None,
    products: list[str] | None = None,
    weekday: int | None = None,
    accepting: bool | None = None,
    network: str | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    include_inactive: bool = False,
) -> _NearestQuery:
    """The statement and parameters of a nearest search (see `_nearest`)."""
    url_prefix, url_suffix = _page_url_parts(layer.detail_url, get_script_prefix())
    params = {"lon": point.x, "lat": point.y, "offset": offset, "needed": offset + limit}
    params.update(url_prefix=url_prefix, url_suffix=url_suffix, active_status=Amap.Status.ACTIVE.value)
    filters = set()
    if radius_km is not None:
        filters.add("radius_km")
        params["radius_m"] = radius_km * 1000.0
    for n, slug in enumerate(dict.fromkeys(products or ())):
        filters.add(f"product_{n}")
        params[f"product_{n}"] = slug
    if weekday is not None:
        filters.add("weekday")
        params["weekday"] = weekday
    if accepting is not None:
        filters.add("accepting" if accepting else "not_accepting")
        params["open"] = Amap.Accepting.OPEN.value
    if network:
        filters.add("network")
        params["network"] = network
    if bbox is not None:
        filters.add("bbox")
        params.update(zip(("min_lon", "min_lat", "max_lon", "max_lat"), bbox, strict=True))
    return _NearestQuery(layer=layer, filters=frozenset(filters), include_inactive=include_inactive, params=params)


@functools.lru_cache(maxsize=64)
def _page_url_parts(url_name: str, script_prefix: str) -> tuple[str, str]:
    """What comes before and after the id in a public page's URL (`reverse` costs a search's worth)."""
    sentinel = "987654321"
    return tuple(reverse(url_name, args=[sentinel]).split(sentinel))


@dataclass(frozen=True)
class Found:
    """One result of a nearest search."""

    id: int
    distance_m: float  # exact geodesic metres on the WGS84 ellipsoid
    geojson: str  # its GeoJSON Feature as PostGIS wrote it, published as is by the API

    @functools.cached_property
    def feature(self) -> dict:
        """The Feature as a dict (its `distance_m` rounded to the decimetre, as the API shows it)."""
        return json.loads(self.geojson)


def _nearest(layer: _Layer, *, limit: int, offset: int, **search) -> list[Found]:
    """Rows `offset`…`offset+limit` of `layer` by exact geodesic distance from `point`.

    The shortlist comes from the GiST index in sphere-distance order. It is long enough once the
    sphere distance of its last row, shrunk by SPHERE_ERROR, exceeds the exact distance of the
    Nth best row in it: any row not fetched is at least that far on the sphere, so at least that
    far minus SPHERE_ERROR on the ellipsoid, hence strictly behind the Nth. Otherwise the
    shortlist doubles and the statement runs again (rarely: 1.5 N + 5 rows almost always suffice).
    """
    if limit <= 0:
        return []
    query = _nearest_query(layer, limit=limit, offset=offset, **search)
    size = shortlist_size(offset + limit)
    with query.cursor() as cursor:
        for _round in range(MAX_SHORTLIST_ROUNDS):
            cursor.execute(query.sql(size), query.params)
            rows = cursor.fetchall()
            if len(rows) < limit:
                break  # the shortlist holds every matching row
            fetched, last_sphere_m, nth_exact_m = rows[0][0], rows[0][1], rows[-1][3]
            if fetched < size or last_sphere_m * (1 - SPHERE_ERROR) > nth_exact_m:
                break
            size *= 2
        else:  # pragma: no cover - would need a pathological cluster of equidistant points
            raise RuntimeError("nearest shortlist did not converge")
    return [Found(id=pk, distance_m=distance_m, geojson=text) for _fetched, _last, pk, distance_m, text in rows]


def shortlist_size(needed: int) -> int:
    """The first shortlist's length for the `needed` nearest rows."""
    return needed + needed // 2 + 5


def _features_near(layer: _Layer, *, point: Point, limit: int, offset: int, **filters) -> list[Found]:
    unknown = set(filters) - layer.filters
    if unknown:
        raise TypeError(f"{layer.model.__name__} searches take no filter {', '.join(sorted(unknown))}")
    return _nearest(layer, point=point, limit=limit, offset=offset, **filters)


def amap_features_near(
    *, point: Point, limit: int = 10, offset: int = 0, **filters: Unpack[AmapNearFilters]
) -> list[Found]:
    """The AMAPs nearest `point` by true geodesic distance: the one search of the API and the pages.

    One query whatever `limit` is. The API publishes the features as they are; the pages get
    the same results as model instances through `amaps_near`.
    """
    return _features_near(_AMAPS, point=point, limit=limit, offset=offset, **filters)


def farm_features_near(
    *, point: Point, limit: int = 10, offset: int = 0, **filters: Unpack[NearFilters]
) -> list[Found]:
    """The farms whose PUBLIC (masked) point is nearest `point`, `distance_m` measured to that point."""
    return _features_near(_FARMS, point=point, limit=limit, offset=offset, **filters)


def _as_model(model, found: Found, fields: dict):
    """A `model` instance holding `fields` (the others deferred) and what a result list shows.

    `distance_m` (exact metres), the commune, `product_list`, `network_list` and `feature`.
    """
    properties = found.feature["properties"]
    commune = properties["commune"]
    fields |= {"id": found.id, "commune_id": commune and commune["code"]}
    values = [fields.get(field.attname, DEFERRED) for field in model._meta.concrete_fields]
    row = model.from_db(DEFAULT_DB_ALIAS, list(fields), values)
    if commune is not None:
        row.commune = Commune.from_db(
            DEFAULT_DB_ALIAS, _COMMUNE_FIELDS, (commune["code"], commune["name"], commune["department"])
        )
    row.distance_m = found.distance_m
    row.product_list = [ProductRef(**product) for product in properties["products"]]
    row.network_list = [NetworkRef(**network) for network in properties["networks"]]
    row.feature = found.feature
    return row


_COMMUNE_FIELDS = ("code", "name", "department_id")


def _time(text: str | None) -> datetime.time | None:
    return None if text is None else datetime.time.fromisoformat(text)


def _near(layer: _Layer, *, point: Point, limit: int, offset: int, **filters) -> list:
    """`_features_near` as `layer.model` instances for templates (see `amaps_near`)."""
    rows = []
    for found in _features_near(layer, point=point, limit=limit, offset=offset, **filters):
        properties = found.feature["properties"]
        fields = {name: properties[name] for name in layer.fields}
        fields[layer.location] = Point(found.feature["geometry"]["coordinates"], srid=4326)
        for name in layer.times:
            fields[name] = _time(fields[name])
        rows.append(_as_model(layer.model, found, fields))
    return rows


def amaps_near(*, point: Point, limit: int = 10, offset: int = 0, **filters: Unpack[AmapNearFilters]) -> list[Amap]:
    """`amap_features_near` (same arguments, same results) as Amap instances, for templates.

    Each has `distance_m` (exact metres), its commune, `product_list` and `network_list` (use
    these in result lists: `products.all()` would query once per AMAP) and `feature`. Fields no
    result list shows (description, contacts…) are deferred.
    """
    return _near(_AMAPS, point=point, limit=limit, offset=offset, **filters)


def farms_near(*, point: Point, limit: int = 10, offset: int = 0, **filters: Unpack[NearFilters]) -> list[Farm]:
    """`farm_features_near` as Farm instances; the exact `location` is never read (deferred: private)."""
    return _near(_FARMS, point=point, limit=limit, offset=offset, **filters)
