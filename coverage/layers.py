"""The dashboard map's data layers as GeoJSON, fetched by the page (never inlined in it).

Polygons are simplified for the zoom they are drawn at: a handful of precomputed levels, each with a
tolerance of half a screen pixel at that zoom, so a national map at zoom 5 carries a few hundred
kilobytes instead of every vertex of every commune. The FeatureCollections are built in PostGIS
(`json_agg` of `ST_AsGeoJSON`), and cached with the figures they come from; the white zones'
unions are merged by the refresh job and stored with the snapshot.
"""

from __future__ import annotations

import hashlib
import json
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.gis.db.models import Extent
from django.core.cache import cache
from django.db import connection
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from geo.models import Department

from . import exports, figures
from .cache import CACHE_TIMEOUT
from .maps import (
    MARKER_LIMIT,
    PRODUCT_GAP_COLOR,
    WHITE_ZONE_COLOR,
    _amap_url,
    _bounds,
    _class_color,
    _fmt,
    choropleth_legend,
    default_mode,
)
from .models import CoverageZoneShape

# Zoom levels with their own simplification; a map at zoom z uses the highest level <= z.
LEVELS = (5, 7, 9, 11, 13)
# Département outlines are never worth more than this level (the national map).
DEPARTMENT_MAX_LEVEL = 9
LAYERS = ("choropleth", "zones", "product", "amaps")
_LAYERS_VERSION = 1  # bump when a layer's shape changes (cache keys, ETags)


def level_for(zoom: float | int | None) -> int:
    """The precomputed level used at this zoom (the lowest for missing or tiny zooms)."""
    if zoom is None:
        return LEVELS[0]
    chosen = LEVELS[0]
    for level in LEVELS:
        if zoom >= level:
            chosen = level
    return chosen


def tolerance(level: int) -> float:
    """Half a pixel at this zoom, in degrees of the WGS84 outlines (a Web Mercator tile is 256 px
    for 360° of longitude at zoom 0): the drawing is unchanged, the vertices in between go."""
    return 360.0 / (256 * 2**level) / 2


def precision(level: int) -> int:
    """Decimals kept in coordinates: a tenth of a pixel or better at this level."""
    return 3 if level <= 7 else 4 if level <= 11 else 5


def _by_commune(result: dict) -> bool:
    return len(result["communes"]["code"]) <= figures.COMMUNE_CHOROPLETH_MAX


def _collection(sql: str, params: list) -> str:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return row[0] if row and row[0] else '{"type":"FeatureCollection","features":[]}'


# One SQL per table; only these two constant names are interpolated.
_OUTLINES_SQL = """
SELECT json_build_object(
    'type', 'FeatureCollection',
    'features', COALESCE(json_agg(json_build_object(
        'type', 'Feature',
        'geometry', ST_AsGeoJSON(ST_SimplifyPreserveTopology(t.geom, %s), %s)::json,
        'properties', p.props) ORDER BY p.ord), '[]'::json))::text
FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS p(props, ord)
JOIN {table} t ON t.code = p.props->>'code' AND t.geom IS NOT NULL
"""


def _outlines(table: str, features: list[dict], level: int) -> str:
    """FeatureCollection of commune or département outlines, each with its `properties` (which
    carry the `code` to join on)."""
    assert table in {"geo_commune", "geo_department"}
    sql = _OUTLINES_SQL.format(table=table)
    return _collection(sql, [tolerance(level), precision(level), json.dumps(features)])


def choropleth_json(result: dict, *, mode: str, level: int) -> str:
    """The choropleth: communes (or départements on a national scale) with their class colour."""
    _name, classes = choropleth_legend(result, mode)
    if _by_commune(result):
        features = []
        for row in exports.commune_rows(result):
            if mode == "distance":
                value = row["nearest_km"]
            elif mode == "population":
                value = row["population"]
            else:
                value = row["amaps_per_100k"] or 0.0
            features.append(
                {
                    "code": row["code"],
                    "name": row["name"],
                    "population": row["population"],
                    "nearest_label": "—" if row["nearest_km"] is None else f"{_fmt(row['nearest_km'])} km",
                    "amaps": row["amaps"],
                    "fill": _class_color(value, classes),
                }
            )
        return _outlines("geo_commune", features, level)
    features = []
    for row in result["departments"]:
        value = 1.0 - row["share"] if mode == "distance" else (row["amaps_per_100k"] or 0.0)
        features.append(
            {
                "code": row["code"],
                "name": f"{row['name']} ({row['code']})",
                "population": row["population"],
                "amaps": row["amaps"],
                "nearest_label": f"{round(row['share'] * 100)} %",
                "fill": _class_color(value, classes),
            }
        )
    return _outlines("geo_department", features, min(level, DEPARTMENT_MAX_LEVEL))


_ZONE_SHAPES_SQL = """
SELECT z.zone, ST_AsBinary(ST_Union(c.geom))
FROM unnest(%s::int[], %s::text[]) AS z(zone, code)
JOIN geo_commune c ON c.code = z.code AND c.geom IS NOT NULL
GROUP BY z.zone
"""

# Zones narrower and shorter than four pixels at the level would be a blob of their own outline
# (drawn 2–3 px wide): left out until the map zooms in (demo national network at zoom 5: 1,787 → 218 zones).
_ZONES_SQL = """
WITH shapes AS (
    SELECT s.zone, ST_GeomFromWKB(s.wkb, 4326) AS geom FROM unnest(%s::int[], %s::bytea[]) AS s(zone, wkb)
)
SELECT json_build_object(
    'type', 'FeatureCollection',
    'features', COALESCE(json_agg(json_build_object(
        'type', 'Feature',
        'geometry', ST_AsGeoJSON(ST_SimplifyPreserveTopology(s.geom, %s), %s)::json,
        'properties', p.props) ORDER BY p.ord), '[]'::json))::text
FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS p(props, ord)
JOIN shapes s ON s.zone = (p.props->>'zone')::int
WHERE GREATEST(ST_XMax(s.geom) - ST_XMin(s.geom), ST_YMax(s.geom) - ST_YMin(s.geom)) >= %s
"""


def _zone_list(result: dict) -> list[tuple[str, dict]]:
    zones = [("commune", z) for z in result["white_zones"]["communes"]]
    if result["figures"]["amaps"]:
        # Without any AMAP the whole territory is one group: the largest communes say enough.
        zones += [("group", z) for z in result["white_zones"]["groups"]]
    return zones


def zone_shapes_compute(result: dict) -> dict[int, bytes]:
    """Each white zone's outline (the union of its communes, WKB): the costly part of the layer
    (seconds for a national network's largest group), run by the refresh job (coverage/snapshots.py)."""
    zone_ids, codes = [], []
    for i, (_kind, zone) in enumerate(_zone_list(result)):
        zone_ids.extend([i] * len(zone["codes"]))
        codes.extend(zone["codes"])
    if not codes:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(_ZONE_SHAPES_SQL, [zone_ids, codes])
        return {zone: bytes(wkb) for zone, wkb in cursor.fetchall()}


def _zone_shapes(result: dict) -> dict[int, bytes]:
    """The outlines stored with the snapshot (merged off the request path), else merged now (the
    command's figures, which have no snapshot), computed once for every level."""
    key = f"{result['cache_key']}:layer:v{_LAYERS_VERSION}:zone-shapes"
    shapes = cache.get(key)
    if shapes is None:
        if result.get("snapshot_id"):
            rows = CoverageZoneShape.objects.filter(snapshot_id=result["snapshot_id"]).values_list("zone", "wkb")
            shapes = {zone: bytes(wkb) for zone, wkb in rows}
        else:
            shapes = zone_shapes_compute(result)
        cache.set(key, shapes, CACHE_TIMEOUT)
    return shapes


def zones_json(result: dict, *, level: int) -> str:
    """White zones as outlines: each large uncovered commune, and each group of adjacent ones."""
    zones = _zone_list(result)
    if not zones:
        return '{"type":"FeatureCollection","features":[]}'
    features = []
    for i, (kind, zone) in enumerate(zones):
        names = zone["names"]
        features.append(
            {
                "zone": i,
                "kind": kind,
                "label": ", ".join(names[:5]) + ("…" if len(names) > 5 else ""),
                "population": zone["population"],
                "nearest_label": "—" if zone["nearest_km"] is None else f"{_fmt(zone['nearest_km'])} km",
            }
        )
    shapes = _zone_shapes(result)
    ids = list(shapes)
    params = [ids, [shapes[i] for i in ids], tolerance(level), precision(level), json.dumps(features)]
    return _collection(_ZONES_SQL, [*params, 8 * tolerance(level)])


def product_json(result: dict, *, level: int) -> str:
    """Communes farther than the radius from an AMAP offering the chosen product."""
    selected = result.get("selected_product")
    if not selected or not _by_commune(result):
        return '{"type":"FeatureCollection","features":[]}'
    radius = result["params"]["radius_km"]
    features = []
    for row in exports.commune_rows(result):
        distance = row.get("product_nearest_km")
        if distance is None or distance > radius:
            features.append(
                {
                    "code": row["code"],
                    "name": row["name"],
                    "population": row["population"],
                    "product_label": _("aucune AMAP") if distance is None else f"{_fmt(distance)} km",
                }
            )
    return _outlines("geo_commune", features, level)


def amaps_json(result: dict) -> str:
    """The AMAP delivery places (points: nothing to simplify), up to the marker limit."""
    points = result["amap_points"] if len(result["amap_points"]) <= MARKER_LIMIT else []
    return json.dumps(
        {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "geometry": {"type": "Point", "coordinates": [p["lon"], p["lat"]]},
                    "properties": {"id": p["id"], "name": p["name"], "commune": p["commune"]},
                }
                for p in points
            ],
        },
        separators=(",", ":"),
    )


def layer_version(coverage_key: str) -> str:
    """Changes whenever the figures (hence every layer) change: the page puts it in layer URLs.
    The coverage key already changes with the directory, and a layer is a function of it."""
    return hashlib.sha256(f"{coverage_key}|{_LAYERS_VERSION}".encode()).hexdigest()[:16]


def layer_cache_key(coverage_key: str, *, layer: str, mode: str, level: int) -> str:
    return f"{coverage_key}:layer:v{_LAYERS_VERSION}:{layer}:{mode}:{level}:{get_language()}"


def layer_json(result: dict, *, layer: str, mode: str | None, level: int) -> str:
    """One layer's FeatureCollection text, cached with the figures."""
    mode = mode or default_mode(result)
    key = layer_cache_key(result["cache_key"], layer=layer, mode=mode, level=level)
    body = cache.get(key)
    if body is None:
        if layer == "choropleth":
            body = choropleth_json(result, mode=mode, level=level)
        elif layer == "zones":
            body = zones_json(result, level=level)
        elif layer == "product":
            body = product_json(result, level=level)
        else:
            body = amaps_json(result)
        cache.set(key, body, CACHE_TIMEOUT)
    return body


def first_view_bounds(result: dict) -> list[list[float]] | None:
    """Where the map opens: the territory, but mainland France only when it also has overseas
    départements (a national network would otherwise open on the whole Atlantic at zoom 3)."""
    departments = set(result["communes"]["department"])
    mainland = sorted(code for code in departments if not code.startswith("97"))
    if not mainland or len(mainland) == len(departments):
        return _bounds(result)
    extent = Department.objects.filter(code__in=mainland).aggregate(e=Extent("geom"))["e"]
    if not extent:
        return _bounds(result)
    west, south, east, north = extent
    return [[south, west], [north, east]]


def map_config(result: dict, *, mode: str | None, layer_url: str, query: dict) -> dict:
    """What the page's script needs to draw the map: layer URLs, styles' inputs, legend, texts."""
    mode = mode or default_mode(result)
    radius = result["params"]["radius_km"]
    by_commune = _by_commune(result)
    layer_name, classes = choropleth_legend(result, mode)
    base_query = {k: v for k, v in query.items() if v}
    base_query["carte"] = mode
    base_query["v"] = layer_version(result["cache_key"])

    def url(layer: str) -> str:
        return layer_url.replace("__layer__", layer) + "?" + urlencode(base_query)

    layers = [
        {
            "id": "choropleth",
            "url": url("choropleth"),
            "label": layer_name,
            "maxLevel": LEVELS[-1] if by_commune else DEPARTMENT_MAX_LEVEL,
            "tooltip": [
                ["name", _("Commune") if by_commune else _("Département")],
                ["population", _("Habitants")],
                ["nearest_label", _("AMAP la plus proche") if by_commune else _("Population couverte")],
                ["amaps", _("AMAP")],
            ],
        }
    ]
    extra = []
    zones = result["white_zones"]
    if _zone_list(result):
        layers.append(
            {
                "id": "zones",
                "url": url("zones"),
                "label": _("Zones blanches (plus de %(r)s km, %(p)s hab. et plus)")
                % {"r": _fmt(radius), "p": f"{zones['min_population']:,}".replace(",", "\u202f")},
                "color": WHITE_ZONE_COLOR,
                "maxLevel": LEVELS[-1],
                "tooltip": [
                    ["label", _("Zone blanche")],
                    ["population", _("Habitants")],
                    ["nearest_label", _("AMAP la plus proche")],
                ],
            }
        )
        extra.append(["outline", WHITE_ZONE_COLOR, _("Zone blanche")])
    selected = result.get("selected_product")
    if selected and by_commune:
        label = _("Sans %(product)s à moins de %(r)s km") % {"product": selected["name"].lower(), "r": _fmt(radius)}
        layers.append(
            {
                "id": "product",
                "url": url("product"),
                "label": label,
                "color": PRODUCT_GAP_COLOR,
                "maxLevel": LEVELS[-1],
                "tooltip": [
                    ["name", _("Commune")],
                    ["population", _("Habitants")],
                    ["product_label", selected["name"]],
                ],
            }
        )
        extra.append(["hatched", PRODUCT_GAP_COLOR, label])
    points = None
    if result["amap_points"] and len(result["amap_points"]) <= MARKER_LIMIT:
        points = {"id": "amaps", "url": url("amaps"), "label": _("AMAP"), "detailUrl": _amap_url()}
        extra.append(["pin", "#2f6b2f", _("Lieu de livraison d'une AMAP")])
    return {
        "levels": list(LEVELS),
        "bounds": first_view_bounds(result),
        "layers": layers,
        "points": points,
        "legend": {"title": layer_name, "items": [["fill", c, label] for _b, c, label in classes] + extra},
        "label": _("Carte de couverture du réseau %(name)s") % {"name": result["network"]["name"]},
        "background": {"url": settings.MAP_TILE_URL, "attribution": settings.MAP_TILE_ATTRIBUTION},
        "texts": {
            "amaps": _("AMAP"),
            "open": _("Voir la fiche"),
            "delivery": _("Livraison"),
            "products": _("Produits"),
            "distance": _("Distance"),
            "legend": _("Légende"),
            "loading": _("Chargement de la carte…"),
            "failed": _("La carte n'a pas pu être chargée : rechargez la page."),
            "cluster": _("Groupe de points (nombre)"),
            "weekdays": [_("lundi"), _("mardi"), _("mercredi"), _("jeudi"), _("vendredi"), _("samedi"), _("dimanche")],
        },
    }
