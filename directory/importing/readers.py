"""Reading an import file into rows of text: CSV (any delimiter, UTF-8 or a named encoding), XLSX, GeoJSON, GPKG."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..csv_export import csv_cell_value
from .geometry import GeometryInvalid, GeometryMissing, check_geojson_geometry, check_shape


class ImportFileError(Exception):
    """The file as a whole cannot be read; `row` is the line at fault when known."""

    def __init__(self, message: str, *, row: int | None = None):
        super().__init__(message)
        self.row = row


@dataclass
class Table:
    headers: list[str]
    rows: list[tuple[int, dict[str, str]]]  # (row number in the file, header → text)
    row_word: str = "ligne"
    # GeoJSON/GeoPackage: header of the pseudo-columns holding the geometry's lon/lat.
    geometry_columns: tuple[str, str] | None = None
    # GeoJSON/GeoPackage: feature number → why its geometry was refused; features without one.
    geometry_problems: dict[int, str] = field(default_factory=dict)
    geometry_missing: set[int] = field(default_factory=set)


GEOMETRY_LON = "geometry (longitude)"
GEOMETRY_LAT = "geometry (latitude)"


def cell_text(value: Any) -> str:
    """A spreadsheet or GeoDataFrame value as the text a person would read in the cell."""
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0, 0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.strftime("%Hh%M")
    text = str(value).strip()
    return "" if text.lower() in {"nan", "none", "null", "nat"} and not isinstance(value, str) else text


def read_table(path: Path, *, encoding: str | None = None) -> Table:
    """Rows of a CSV, XLSX, GeoJSON or GeoPackage file; ImportFileError when it cannot be read."""
    if not path.exists():
        raise ImportFileError(f"fichier introuvable : {path}")
    suffix = path.suffix.lower()
    if path.stat().st_size == 0:
        raise ImportFileError("le fichier est vide")
    if suffix in {".csv", ".tsv", ".txt"}:
        return _read_csv(path, encoding=encoding)
    if suffix in {".xlsx", ".xlsm"}:
        return _read_xlsx(path)
    if suffix in {".geojson", ".json", ".gpkg"}:
        return _read_geo(path)
    if suffix in {".xls", ".ods"}:
        raise ImportFileError(f"format {suffix} non pris en charge : enregistrez le tableau en .xlsx ou en .csv")
    raise ImportFileError(f"format « {suffix or path.name} » non reconnu (attendu : .csv, .xlsx, .geojson, .gpkg)")


def _decode(data: bytes, encoding: str | None) -> str:
    if encoding:
        try:
            return data.decode(encoding)
        except LookupError as error:
            raise ImportFileError(f"encodage « {encoding} » inconnu (essayez utf-8 ou cp1252)") from error
        except UnicodeDecodeError as error:
            line = data[: error.start].count(b"\n") + 1
            raise ImportFileError(
                f"le fichier n'est pas lisible en {encoding} (octet 0x{data[error.start]:02X})", row=line
            ) from error
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ImportFileError(
            f"le fichier n'est pas en UTF-8 (octet 0x{data[error.start]:02X} illisible). "
            "S'il a été enregistré par Excel sous Windows, relancez avec --encoding cp1252.",
            row=line,
        ) from error


def _sniff_delimiter(text: str) -> str:
    first_line = next((line for line in text.splitlines() if line.strip()), "")
    counts = {delimiter: first_line.count(delimiter) for delimiter in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _read_csv(path: Path, *, encoding: str | None) -> Table:
    text = _decode(path.read_bytes(), encoding)
    if not text.strip():
        raise ImportFileError("le fichier est vide")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_sniff_delimiter(text))
    headers: list[str] | None = None
    rows: list[tuple[int, dict[str, str]]] = []
    start_line = 1
    try:
        for record in reader:
            row_number, start_line = start_line, reader.line_num + 1
            if not any(cell.strip() for cell in record):
                continue
            if headers is None:
                headers = [cell.strip() for cell in record]
                continue
            if len(record) > len(headers) and any(cell.strip() for cell in record[len(headers) :]):
                raise ImportFileError(
                    f"{len(record)} valeurs pour {len(headers)} colonnes (une virgule ou un point-virgule "
                    "en trop, ou une valeur à mettre entre guillemets ?)",
                    row=row_number,
                )
            # csv_cell_value: our own exports' neutralised formulas ('=…) read back as written.
            cells = [csv_cell_value(cell.strip()) for cell in record]
            values = {header: (cells[i] if i < len(cells) else "") for i, header in enumerate(headers)}
            rows.append((row_number, values))
    except csv.Error as error:
        raise ImportFileError(f"CSV illisible : {error}", row=start_line) from error
    if headers is None:
        raise ImportFileError("le fichier est vide")
    return Table(headers=headers, rows=rows)


def _read_xlsx(path: Path) -> Table:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as error:  # openpyxl raises many types for a damaged file
        raise ImportFileError(f"classeur XLSX illisible : {error}") from error
    try:
        sheet = workbook.active
        headers: list[str] | None = None
        rows: list[tuple[int, dict[str, str]]] = []
        for row_number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            cells = [cell_text(value) for value in values]
            if not any(cells):
                continue
            if headers is None:
                headers = cells
                while headers and not headers[-1]:
                    headers.pop()
                continue
            rows.append((row_number, {h: (cells[i] if i < len(cells) else "") for i, h in enumerate(headers) if h}))
    finally:
        workbook.close()
    if headers is None:
        raise ImportFileError("le classeur est vide")
    return Table(headers=[h for h in headers if h], rows=rows)


def _read_geo(path: Path) -> Table:
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
