"""GeoJSON and GeoPackage files as tables: one row per feature, its point in two pseudo-columns.

These files are read whole (a GeoJSON document is one JSON value; GeoPackages come through
geopandas); the spreadsheets people send in their tens of thousands of rows are CSV and XLSX,
which `readers` streams.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from .geometry import GeometryInvalid, GeometryMissing, check_geojson_geometry, check_shape
from .table import GEOMETRY_LAT, GEOMETRY_LON, ImportFileError, Table, cell_text


def read_geo(path: Path) -> Table:
    """Every feature becomes a row; a missing or faulty geometry is noted against the feature, not raised."""
    if path.suffix.lower() == ".gpkg":
        headers, features = _read_gpkg(path)
    else:
        headers, features = _read_geojson(path)
    rows: list[tuple[int, dict[str, str]]] = []
    problems: dict[int, str] = {}
    missing: set[int] = set()
    for index, (values, geometry) in enumerate(features, start=1):
        lon = lat = ""
        try:
            shape = geometry() if callable(geometry) else check_shape(geometry)
        except GeometryMissing:
            missing.add(index)
        except GeometryInvalid as error:
            problems[index] = str(error)
        else:
            point = shape if shape.geom_type == "Point" else shape.representative_point()
            lon, lat = repr(point.x), repr(point.y)
        values[GEOMETRY_LON], values[GEOMETRY_LAT] = lon, lat
        rows.append((index, values))
    return Table(
        headers=headers,
        rows=rows,
        total=len(rows),
        row_word="entité",
        geometry_columns=(GEOMETRY_LON, GEOMETRY_LAT),
        geometry_problems=problems,
        geometry_missing=missing,
    )


def _read_gpkg(path: Path) -> tuple[list[str], list[tuple[dict[str, str], Any]]]:
    import geopandas

    try:
        # An unreadable geometry becomes None here and is reported against its feature below.
        frame = geopandas.read_file(path, on_invalid="ignore")
    except Exception as error:  # pyogrio/GDAL errors carry the reason
        raise ImportFileError(f"fichier géographique illisible : {error}") from error
    headers = [str(column) for column in frame.columns if column != frame.geometry.name]
    if frame.crs is not None and frame.crs.to_epsg() != 4326:
        frame = frame.to_crs(4326)
    features = []
    for _key, record in frame.iterrows():
        values = {str(column): cell_text(record[column]) for column in headers}
        geometry = record[frame.geometry.name]
        features.append((values, geometry if geometry is not None and not _is_nan(geometry) else None))
    return headers, features


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _read_geojson(path: Path) -> tuple[list[str], list[tuple[dict[str, str], Any]]]:
    """GeoJSON read here rather than through GDAL, which drops or rejects a faulty geometry without saying where."""
    try:
        document = json.loads(path.read_bytes().decode("utf-8-sig"))
    except UnicodeDecodeError as error:
        raise ImportFileError("le fichier GeoJSON n'est pas en UTF-8") from error
    except json.JSONDecodeError as error:
        raise ImportFileError(f"JSON illisible : {error.msg}", row=error.lineno) from error
    if not isinstance(document, dict):
        raise ImportFileError("GeoJSON attendu : un objet FeatureCollection")
    if document.get("type") == "FeatureCollection":
        raw_features = document.get("features")
        if not isinstance(raw_features, list):
            raise ImportFileError("FeatureCollection sans liste « features »")
    elif document.get("type") == "Feature":
        raw_features = [document]
    else:
        raise ImportFileError(f"GeoJSON attendu : « FeatureCollection », pas « {document.get('type')} »")
    transform = _legacy_crs_transform(document.get("crs"))
    headers: dict[str, None] = {}
    features: list[tuple[dict[str, str], Any]] = []
    for feature in raw_features:
        properties = feature.get("properties") if isinstance(feature, dict) else None
        properties = properties if isinstance(properties, dict) else {}
        for key in properties:
            headers.setdefault(str(key), None)
        values = {str(key): _property_text(value) for key, value in properties.items()}
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            features.append((values, _raiser(GeometryInvalid("l'entité n'est pas un objet « Feature »"))))
            continue
        features.append((values, _checked(feature.get("geometry"), transform)))
    for values, _geometry in features:
        for header in headers:
            values.setdefault(header, "")
    return list(headers), features


def _raiser(error: Exception):
    def raise_it():
        raise error

    return raise_it


def _checked(geometry: Any, transform):
    def check():
        shape = check_geojson_geometry(geometry)
        return shape if transform is None else transform(shape)

    return check


def _property_text(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return cell_text(value)


def _legacy_crs_transform(crs: Any):
    """Pre-RFC 7946 files may name another CRS (often Lambert-93); RFC 7946 files are WGS84."""
    if not isinstance(crs, dict):
        return None
    name = (crs.get("properties") or {}).get("name") if isinstance(crs.get("properties"), dict) else None
    if not isinstance(name, str) or name.upper().endswith(("CRS84", "EPSG::4326", "EPSG:4326")):
        return None
    from pyproj import CRS, Transformer
    from pyproj.exceptions import CRSError
    from shapely.ops import transform

    try:
        source = CRS.from_user_input(name)
    except CRSError as error:
        raise ImportFileError(f"système de coordonnées « {name} » inconnu") from error
    project = Transformer.from_crs(source, CRS.from_epsg(4326), always_xy=True).transform
    return lambda shape: transform(project, shape)
