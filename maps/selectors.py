"""Reads for the maps built in PostGIS: vector tiles (`ST_AsMVT`), their grid and cache, CSV rows.

The data the maps share with the directory's pages (filters, GeoJSON, territories, a network's
map) lives one floor down, in `directory.map_data`; it is re-exported here for the maps' views,
commands and tests. Farms are only ever read at their masked `public_location`: no query here
selects `Farm.location`.
"""

# SQL here is assembled from identifiers (model meta) and ORM-compiled SQL only; every value
# travels as a query parameter.
# ruff: noqa: S608

from __future__ import annotations

import hashlib
import math

import numpy as np
from django.contrib.gis.db.models import GeometryField
from django.contrib.gis.geos import Polygon
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import FloatField, Func
from django.db.models.functions import Cast

from directory.map_data import (  # noqa: F401  (re-exported: see the docstring)
    FARM_FILTER_NAMES,
    FILTER_NAMES,
    INLINE_LIMIT,
    MapFilterError,
    MapFilters,
    amap_property_sql,
    data_version,
    detail_url_template,
    farm_property_sql,
    feature_collection,
    feature_collection_json,
    layer_count,
    layer_point_field,
    layer_queryset,
    network_map_data,
    parse_map_filters,
    territories,
    territories_json,
    tile_url_template,
)
from directory.models import Amap, Farm

TILE_EXTENT = 4096
# The map draws tiles 512 px wide (a tile of zoom z fills 512 px at map zoom z + 1): four times
# fewer requests than 256 px tiles. Grid clustering: cells of 64 px, 8 × 8 per tile.
CELLS_PER_TILE = 8
# From this tile zoom on (a tile is ~1.2 km wide, map zoom 16), every point is drawn on its own.
UNCLUSTERED_ZOOM = 15
MAX_TILE_ZOOM = 20
# Tiles at low zoom gather many rows: they are kept in the cache for this long (seconds),
# keyed by the data version, so a change in the directory shows at the next page load.
TILE_CACHE_SECONDS = 600
TILE_CACHE_MAX_ZOOM = 9

_WEB_MERCATOR_HALF = 20037508.342789244  # metres, half the side of the EPSG:3857 square

# --- vector tiles ----------------------------------------------------------------------------


def tile_bounds_3857(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """(minx, miny, maxx, maxy) of an XYZ tile in Web Mercator metres."""
    size = 2 * _WEB_MERCATOR_HALF / (2**z)
    minx = -_WEB_MERCATOR_HALF + x * size
    maxy = _WEB_MERCATOR_HALF - y * size
    return minx, maxy - size, minx + size, maxy


def _lon_lat(mx: float, my: float) -> tuple[float, float]:
    lon = mx / _WEB_MERCATOR_HALF * 180.0
    lat = math.degrees(2 * math.atan(math.exp(my / _EARTH_RADIUS_M_MERCATOR)) - math.pi / 2)
    return lon, lat


_EARTH_RADIUS_M_MERCATOR = 6378137.0


def _tile_search_area(z: int, x: int, y: int) -> Polygon:
    """A lon/lat polygon around the tile for the geography index (`&&`, bounding boxes only).

    Geography edges are great circles, which cut inside a tile's parallels: the rectangle is
    padded by a tenth of its size and its edges densified, so that no point of the tile
    falls outside the polygon's box. The exact test is then done in Web Mercator.
    """
    minx, miny, maxx, maxy = tile_bounds_3857(z, x, y)
    west, south = _lon_lat(minx, miny)
    east, north = _lon_lat(maxx, maxy)
    pad_lon, pad_lat = (east - west) / 10, (north - south) / 10
    west, east = max(west - pad_lon, -180.0), min(east + pad_lon, 180.0)
    south, north = max(south - pad_lat, -89.9), min(north + pad_lat, 89.9)
    steps = 8
    lons = [west + (east - west) * i / steps for i in range(steps + 1)]
    lats = [south + (north - south) * i / steps for i in range(steps + 1)]
    ring = (
        [(lon, south) for lon in lons]
        + [(east, lat) for lat in lats[1:]]
        + [(lon, north) for lon in reversed(lons[:-1])]
        + [(west, lat) for lat in reversed(lats[:-1])]
    )
    return Polygon(ring, srid=4326)


def tile(*, layer: str, z: int, x: int, y: int, filters: MapFilters | None = None) -> bytes:
    """One Mapbox Vector Tile of AMAPs or farms, grid-clustered below UNCLUSTERED_ZOOM.

    A feature is either a cluster (`count` > 1, at the mean position of its points) or one
    place with its popup properties (`id`, `name`, `commune`, `products`, AMAPs: `delivery`, `accepting`).
    """
    sql, params = tile_sql(layer=layer, z=z, x=x, y=y, filters=filters)
    return _run_tile_sql(sql, params)


def _run_tile_sql(sql: str, params: list) -> bytes:
    with transaction.atomic(), connection.cursor() as cursor:
        # PostGIS functions carry high cost estimates: the planner would JIT-compile this
        # query, which takes longer (~0.5 s) than running it (a few ms).
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(sql, params)
        data = cursor.fetchone()[0]
    return bytes(data) if data is not None else b""


def _points_sql(layer: str, filters: MapFilters, area: Polygon | None = None) -> tuple[str, list]:
    """SQL of the layer's points (`id`, `_lon`, `_lat`), filtered, optionally inside `area` (index)."""
    field = layer_point_field(layer)
    queryset = layer_queryset(layer, filters)
    if area is not None:
        queryset = queryset.filter(**{f"{field}__bboverlaps": area})
    lon_lat = Cast(field, GeometryField(srid=4326))
    return (
        queryset.order_by()
        .annotate(
            _lon=Func(lon_lat, function="ST_X", output_field=FloatField()),
            _lat=Func(lon_lat, function="ST_Y", output_field=FloatField()),
        )
        .values("id", "_lon", "_lat")
        .query.sql_with_params()
    )


# Spherical Web Mercator in plain arithmetic (EPSG:3857's formulas): much cheaper per row than
# ST_Transform, and only cluster centres become geometries.
_PROJECTED_SQL = "SELECT id, %s * radians(_lon) AS mx, %s * ln(tan(pi() / 4 + radians(_lat) / 2)) AS my FROM pts"


def _mvt_sql(layer: str, cells_sql: str, z: int, x: int, y: int) -> tuple[str, list]:
    """SQL turning a `cells` CTE (n, id, mx, my) into the tile, with popup fields for single places."""
    if layer == "amaps":
        table, alias, (props_sql, props_params) = Amap._meta.db_table, "a", amap_property_sql("a")
    else:
        table, alias, (props_sql, props_params) = Farm._meta.db_table, "f", farm_property_sql("f")
    sql = f"""
        {cells_sql}
        SELECT ST_AsMVT(t, %s, {TILE_EXTENT}, 'geom') FROM (
            SELECT ST_AsMVTGeom(ST_SetSRID(ST_MakePoint(c.mx, c.my), 3857), ST_TileEnvelope(%s, %s, %s),
                                {TILE_EXTENT}, 0, false) AS geom,
                   c.n AS count,
                   CASE WHEN c.n = 1 THEN c.id END AS id,
                   {props_sql}
            FROM cells c
            LEFT JOIN {table} {alias} ON c.n = 1 AND {alias}.id = c.id
            LEFT JOIN geo_commune co ON co.code = {alias}.commune_id
        ) AS t
    """
    return sql, [layer, z, x, y, *props_params]


def tile_sql(*, layer: str, z: int, x: int, y: int, filters: MapFilters | None = None) -> tuple[str, list]:
    """The SQL and parameters of `tile()`: the tile's points, clustered in PostGIS."""
    filters = filters or MapFilters()
    # Below zoom 3 a tile spans a continent: no point in an index test.
    area = _tile_search_area(z, x, y) if z >= 3 else None
    points_sql, points_params = _points_sql(layer, filters, area)
    minx, miny, maxx, maxy = tile_bounds_3857(z, x, y)
    if z >= UNCLUSTERED_ZOOM:
        group_sql, group_params = "SELECT 1 AS n, id, mx, my FROM inside", []
    else:
        cell = (maxx - minx) / CELLS_PER_TILE
        group_sql = """
            SELECT count(*) AS n, min(id) AS id, avg(mx) AS mx, avg(my) AS my FROM inside
            GROUP BY floor((mx - %s) / %s), floor((my - %s) / %s)
        """
        group_params = [minx, cell, miny, cell]
    cells_sql = f"""
        WITH pts AS ({points_sql}),
        projected AS ({_PROJECTED_SQL}),
        inside AS (
            SELECT id, mx, my FROM projected WHERE mx >= %s AND mx < %s AND my > %s AND my <= %s
        ),
        cells AS ({group_sql})
    """
    cells_params = [
        *points_params,
        _EARTH_RADIUS_M_MERCATOR,
        _EARTH_RADIUS_M_MERCATOR,
        minx,
        maxx,
        miny,
        maxy,
        *group_params,
    ]
    sql, mvt_params = _mvt_sql(layer, cells_sql, z, x, y)
    return sql, cells_params + mvt_params


# --- low zooms from one grid -----------------------------------------------------------------
#
# At low zoom a tile gathers a large share of the directory, and the tiles of one view overlap
# in what they scan. Instead, the whole (filtered) layer is clustered once into the cells of
# GRID_ZOOM (~20 km) and kept in the cache under the data version; every tile of zoom ≤ GRID_ZOOM
# merges those cells (2^(GRID_ZOOM - z) per side into one of its own), which takes a few
# milliseconds whatever the size of the directory. Cells nest exactly: both are 1/8 of a tile.

GRID_ZOOM = 8
_GRID_CELL = 2 * _WEB_MERCATOR_HALF / (2**GRID_ZOOM * CELLS_PER_TILE)


def layer_grid(*, layer: str, filters: MapFilters) -> dict[str, np.ndarray]:
    """The layer clustered into GRID_ZOOM cells: ix, iy (from the top left), n, sum_x, sum_y, min_id."""
    points_sql, points_params = _points_sql(layer, filters)
    sql = f"""
        WITH pts AS ({points_sql}), projected AS ({_PROJECTED_SQL})
        SELECT floor((mx + %s) / %s)::bigint, floor((%s - my) / %s)::bigint, count(*), sum(mx), sum(my), min(id)
        FROM projected GROUP BY 1, 2
    """
    params = [
        *points_params,
        _EARTH_RADIUS_M_MERCATOR,
        _EARTH_RADIUS_M_MERCATOR,
        _WEB_MERCATOR_HALF,
        _GRID_CELL,
        _WEB_MERCATOR_HALF,
        _GRID_CELL,
    ]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    columns = list(zip(*rows, strict=True)) if rows else [[]] * 6
    return {
        "ix": np.array(columns[0], dtype=np.int64),
        "iy": np.array(columns[1], dtype=np.int64),
        "n": np.array(columns[2], dtype=np.int64),
        "sx": np.array(columns[3], dtype=np.float64),
        "sy": np.array(columns[4], dtype=np.float64),
        "id": np.array(columns[5], dtype=np.int64),
    }


def _cells_from_grid(grid: dict[str, np.ndarray], z: int, x: int, y: int) -> tuple[list, list, list, list]:
    """The tile's cells (n, id, mx, my) merged from the grid's."""
    shift = GRID_ZOOM - z  # grid cells per tile cell, as a power of two
    per_tile = CELLS_PER_TILE.bit_length() - 1  # 8 cells per tile side = 2^3
    cx, cy = grid["ix"] >> shift, grid["iy"] >> shift
    mine = ((cx >> per_tile) == x) & ((cy >> per_tile) == y)
    if not mine.any():
        return [], [], [], []
    keys = cx[mine] * (1 << 40) + cy[mine]
    unique, inverse = np.unique(keys, return_inverse=True)
    n = np.bincount(inverse, weights=grid["n"][mine]).astype(np.int64)
    sx = np.bincount(inverse, weights=grid["sx"][mine])
    sy = np.bincount(inverse, weights=grid["sy"][mine])
    first_id = np.full(unique.size, np.iinfo(np.int64).max)
    np.minimum.at(first_id, inverse, grid["id"][mine])
    return n.tolist(), first_id.tolist(), (sx / n).tolist(), (sy / n).tolist()


def tile_from_grid(*, layer: str, z: int, x: int, y: int, grid: dict[str, np.ndarray]) -> bytes:
    """The same tile as `tile()` for z ≤ GRID_ZOOM, from the layer's grid."""
    n, ids, mx, my = _cells_from_grid(grid, z, x, y)
    cells_sql = """
        WITH cells AS (SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::float8[], %s::float8[]) AS c(n, id, mx, my))
    """
    sql, mvt_params = _mvt_sql(layer, cells_sql, z, x, y)
    return _run_tile_sql(sql, [n, ids, mx, my, *mvt_params])


def _filters_key(filters: MapFilters) -> str:
    return hashlib.blake2b(filters.cache_key().encode(), digest_size=8).hexdigest()


def cached_grid(*, layer: str, filters: MapFilters, version: str) -> dict[str, np.ndarray]:
    key = f"maps:grid:{version}:{layer}:{_filters_key(filters)}"
    grid = cache.get(key)
    if grid is None:
        grid = layer_grid(layer=layer, filters=filters)
        cache.set(key, grid, TILE_CACHE_SECONDS)
    return grid


def cached_tile(*, layer: str, z: int, x: int, y: int, filters: MapFilters, version: str | None) -> bytes:
    """`tile()`, from the layer's grid at low zoom, and kept in the cache, when the request names
    the data version (the page always does; a bare tile URL is computed afresh)."""
    if version is None:
        return tile(layer=layer, z=z, x=x, y=y, filters=filters)
    if z > TILE_CACHE_MAX_ZOOM:
        return tile(layer=layer, z=z, x=x, y=y, filters=filters)
    key = f"maps:tile:{version}:{layer}:{z}/{x}/{y}:{_filters_key(filters)}"
    data = cache.get(key)
    if data is None:
        if z <= GRID_ZOOM:
            grid = cached_grid(layer=layer, filters=filters, version=version)
            data = tile_from_grid(layer=layer, z=z, x=x, y=y, grid=grid)
        else:
            data = tile(layer=layer, z=z, x=x, y=y, filters=filters)
        cache.set(key, data, TILE_CACHE_SECONDS)
    return data


# --- CSV rows --------------------------------------------------------------------------------


def csv_rows(*, layer: str, filters: MapFilters | None = None) -> list[dict]:
    """What the GeoJSON holds, flattened for a spreadsheet (lon/lat: the public point)."""
    collection = feature_collection(layer=layer, filters=filters)
    rows = []
    for feature in collection["features"]:
        lon, lat = feature["geometry"]["coordinates"]
        props = feature["properties"]
        row = {
            "id": props["id"],
            "nom": props["name"],
            "commune": props.get("commune") or "",
            "longitude": lon,
            "latitude": lat,
            "produits": props.get("products") or "",
        }
        if layer == "amaps":
            row["livraison"] = props.get("delivery") or ""
            row["nouveaux_membres"] = props.get("accepting") or ""
        row["fiche"] = props["url"]
        rows.append(row)
    return rows


OUTLINE_CACHE_SECONDS = 24 * 3600


def departments_outline_json(*, tolerance: float = 0.02) -> str:
    """The départements' boundaries as light GeoJSON lines (~0.02° simplified, 3 decimals), cached.

    Drawn under the points when no background tile loads (offline, a blocked tile server), so
    that France's shape stays readable; built from our own territories, in PostGIS.
    """
    key = f"maps:departments-outline:{tolerance}"
    body = cache.get(key)
    if body is None:
        sql = """
            SELECT json_build_object('type', 'FeatureCollection', 'features', coalesce(json_agg(json_build_object(
                'type', 'Feature',
                'geometry', ST_AsGeoJSON(ST_Boundary(ST_SimplifyPreserveTopology(geom, %s)), 3)::json,
                'properties', json_build_object('code', code)
            ) ORDER BY code), '[]'::json))::text
            FROM geo_department WHERE geom IS NOT NULL
        """
        with connection.cursor() as cursor:
            cursor.execute(sql, [tolerance])
            body = cursor.fetchone()[0]
        cache.set(key, body, OUTLINE_CACHE_SECONDS)
    return body
