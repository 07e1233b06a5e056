"""What leaves the coverage app as files and payloads: the API figures, the per-commune table (CSV,
GeoJSON) and the white zones (GeoJSON), all derived from one `coverage_for_network` result."""

from __future__ import annotations

import io
import json

from django.core.cache import cache
from django.utils.translation import gettext as _

from directory.csv_export import csv_writer

from .cache import CACHE_TIMEOUT
from .numbers import per_100k
from .selectors import commune_geometries, white_zone_outlines


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
            "amaps_per_100k": per_100k(c["amaps"][i], c["population"][i]),
            "farms": c["farms"][i],
        }
        if c["product_nearest_km"] is not None:
            row["product_nearest_km"] = c["product_nearest_km"][i]
        rows.append(row)
    return rows


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
    outlines = white_zone_outlines(zone_ids=zone_ids, codes=codes) if zones else {}
    features = []
    for i, (kind, zone) in enumerate(zones):
        if i not in outlines:
            continue
        props = {"kind": kind, "rank": i + 1, **zone, "radius_km": result["params"]["radius_km"]}
        features.append(_feature(outlines[i], props))
    text = '{"type":"FeatureCollection","features":[' + ",".join(features) + "]}"
    cache.set(key, text, CACHE_TIMEOUT)
    return text


CSV_COLUMNS = [
    ("code", "code_insee"),
    ("name", "commune"),
    ("department", "departement"),
    ("population", "population_2023"),
    ("nearest_km", "distance_amap_km"),
    ("nearest_amap", "amap_la_plus_proche"),
    ("covered", "couverte_point_de_reference"),
    ("area_share", "part_surface_couverte"),
    ("amaps", "amap"),
    ("amaps_per_100k", "amap_pour_100000_hab"),
    ("farms", "fermes"),
    ("product_nearest_km", "distance_amap_produit_km"),
]


def communes_csv(result: dict) -> str:
    """One row per commune; the radius, product and methods are stated in the header comment."""
    output = io.StringIO()
    params = result["params"]
    output.write(
        "# "
        + _("Couverture du réseau %(name)s à %(r)s km ; méthode : %(method)s ; produit : %(product)s ; %(date)s")
        % {
            "name": result["network"]["name"],
            "r": f"{params['radius_km']:g}",
            "method": result["methods"]["reference_point"],
            "product": params["product_name"] or "—",
            "date": result["generated_at"],
        }
        + "\n"
    )
    rows = commune_rows(result)
    columns = [(key, header) for key, header in CSV_COLUMNS if key != "product_nearest_km" or params["product"]]
    writer = csv_writer(output, lineterminator="\n")  # network and commune names may look like formulas
    writer.writerow([header for _key, header in columns])
    for row in rows:
        values = []
        for key, _header in columns:
            value = row.get(key)
            if isinstance(value, bool):
                value = "oui" if value else "non"
            values.append("" if value is None else value)
        writer.writerow(values)
    return output.getvalue()
