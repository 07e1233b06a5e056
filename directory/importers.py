"""Import AMAPs, farms and partnerships from CSV, XLSX, GeoJSON and GeoPackage files.

`directory_import()` reads the whole file, checks and locates every row (coordinates
validated, or geocoded from the postal code and commune), and only then writes, in one
transaction, through the upserts of `directory.services`. Any row error means nothing is
written; the `ImportReport` lists every error and warning by row and column, in French.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.contrib.gis.db.models.functions import Distance
from django.contrib.gis.geos import Point
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator, URLValidator
from django.db import transaction

from geo.coordinates import CoordinateError, parse_number, validate_lon_lat
from geo.geocoding import Candidate, GeocodingError, geocode_parts
from geo.models import Commune, Department
from geo.selectors import commune_at_point
from geo.text import normalize_place_name

from . import parsing
from .csv_export import csv_cell_value
from .models import Amap, Farm, LocationPrecision, ProductCategory
from .services import Outcome, amap_upsert, farm_upsert, partnership_upsert

KINDS = ("amap", "farm", "partnership")
KIND_LABELS = {"amap": "AMAP", "farm": "ferme", "partnership": "partenariat"}

# A point may sit this far outside the commune the file names (simplified outlines, quays).
INSEE_TOLERANCE_M = 1000

# Canonical field → header spellings, after `normalize_header` (accents, case, spaces dropped).
FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("id", "identifiant", "ref", "reference", "code", "uid", "id_amap", "id_ferme", "id_producteur"),
    "nom": ("nom", "name", "nom_amap", "nom_de_l_amap", "nom_ferme", "nom_de_la_ferme", "nom_producteur", "titre"),
    "ville": ("ville", "commune", "localite", "nom_commune", "city", "ville_livraison"),
    "code_postal": ("code_postal", "cp", "codepostal", "postcode", "code_post"),
    "adresse": ("adresse", "adresse_postale", "address", "lieu", "lieu_de_livraison", "lieu_livraison", "rue"),
    "lat": ("lat", "latitude", "y"),
    "lon": ("lon", "lng", "long", "longitude", "x"),
    "insee": ("insee", "code_insee", "code_commune", "codgeo", "citycode", "com_insee"),
    "jour": ("jour", "jours", "jour_de_livraison", "jour_livraison", "jours_de_livraison", "livraison"),
    "horaire": ("horaire", "horaires", "heure", "heures", "creneau", "heure_livraison"),
    "frequence": ("frequence", "frequence_livraison", "periodicite"),
    "precisions_livraison": ("precisions_livraison", "notes_livraison", "remarques_livraison"),
    "produits": ("produits", "produit", "production", "productions", "products"),
    "categorie": ("categorie", "categories", "type_produit", "type_de_produit"),
    "plateforme": ("plateforme", "outil", "outil_de_gestion", "logiciel", "platform"),
    "site_web": ("site_web", "site", "site_internet", "url", "web", "website"),
    "date_creation": ("date_creation", "date_de_creation", "creation", "creee_le", "fondee_le"),
    "etat": ("etat", "statut", "status"),
    "rna_id": ("rna_id", "rna", "numero_rna", "num_rna"),
    "email": ("email", "e_mail", "mail", "courriel", "adresse_mail", "contact_email"),
    "telephone": ("telephone", "tel", "phone", "portable"),
    "producteur_ids": ("producteur_ids", "producteurs", "ferme_ids", "fermes", "farm_ids"),
    "amap_ids": ("amap_ids", "amaps"),
    "societe": ("societe", "structure", "exploitation", "raison_sociale", "entreprise"),
    "precision": ("precision", "precision_localisation", "precision_geocodage"),
    "description": ("description", "presentation"),
    "type": ("type", "type_amap"),
    "labels": ("labels", "label", "certification"),
    "amap_id": ("amap_id", "amap", "id_amap", "code_amap"),
    "producteur_id": ("producteur_id", "producteur", "ferme_id", "ferme", "id_producteur", "id_ferme", "farm_id"),
    "depuis": ("depuis", "date_debut", "debut", "since"),
    "jusqu_au": ("jusqu_au", "date_fin", "fin", "until"),
    "actif": ("actif", "en_cours", "active"),
    "nouveaux_membres": ("nouveaux_membres", "adhesions", "inscriptions", "places"),
    "rayon_livraison_km": ("rayon_livraison_km", "rayon_de_livraison", "rayon_livraison", "delivery_radius_km"),
}

KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "amap": [
        "id",
        "nom",
        "ville",
        "code_postal",
        "adresse",
        "lat",
        "lon",
        "insee",
        "jour",
        "horaire",
        "frequence",
        "precisions_livraison",
        "produits",
        "categorie",
        "plateforme",
        "site_web",
        "date_creation",
        "etat",
        "rna_id",
        "email",
        "telephone",
        "producteur_ids",
        "description",
        "type",
        "precision",
        "nouveaux_membres",
    ],
    "farm": [
        "id",
        "nom",
        "societe",
        "ville",
        "code_postal",
        "adresse",
        "lat",
        "lon",
        "insee",
        "precision",
        "produits",
        "categorie",
        "frequence",
        "site_web",
        "email",
        "telephone",
        "amap_ids",
        "description",
        "labels",
        "rayon_livraison_km",
    ],
    "partnership": ["amap_id", "producteur_id", "produits", "categorie", "depuis", "jusqu_au", "actif"],
}

PRECISION_WORDS: dict[str, str] = {
    "": LocationPrecision.EXACT,
    "exact": LocationPrecision.EXACT,
    "exacte": LocationPrecision.EXACT,
    "gps": LocationPrecision.EXACT,
    "adresse_complete": LocationPrecision.ADDRESS,
    "adresse": LocationPrecision.ADDRESS,
    "address": LocationPrecision.ADDRESS,
    "rue": LocationPrecision.STREET,
    "street": LocationPrecision.STREET,
    "ville": LocationPrecision.COMMUNE,
    "commune": LocationPrecision.COMMUNE,
    "ville_cp": LocationPrecision.POSTAL_CODE,
    "code_postal": LocationPrecision.POSTAL_CODE,
    "postal_code": LocationPrecision.POSTAL_CODE,
    "cp": LocationPrecision.POSTAL_CODE,
    "region": LocationPrecision.UNKNOWN,
    "departement": LocationPrecision.UNKNOWN,
    "approximatif": LocationPrecision.UNKNOWN,
    "approximative": LocationPrecision.UNKNOWN,
    "unknown": LocationPrecision.UNKNOWN,
    "inconnue": LocationPrecision.UNKNOWN,
}

KIND_WORDS = {"etudiante": Amap.Kind.STUDENT, "etudiant": Amap.Kind.STUDENT, "entreprise": Amap.Kind.WORKPLACE}
LABEL_WORDS = {
    "ab": Farm.Label.ORGANIC,
    "bio": Farm.Label.ORGANIC,
    "agriculture biologique": Farm.Label.ORGANIC,
    "nature progres": Farm.Label.NATURE_PROGRES,
    "demeter": Farm.Label.DEMETER,
    "bio coherence": Farm.Label.BIO_COHERENCE,
    "conversion": Farm.Label.CONVERSION,
    "en conversion": Farm.Label.CONVERSION,
    "paysan": Farm.Label.PEASANT,
    "agriculture paysanne": Farm.Label.PEASANT,
}
FREQUENCY_LABELS = {
    "weekly": "chaque semaine",
    "fortnightly": "toutes les deux semaines",
    "monthly": "chaque mois",
    "other": "autre",
}
# Words that never name a commune on their own when guessing one in a free-text address.
_STOP_WORDS = frozenset(
    [
        "a",
        "au",
        "aux",
        "de",
        "des",
        "du",
        "d",
        "l",
        "la",
        "le",
        "les",
        "en",
        "et",
        "dans",
        "sur",
        "sous",
        "un",
        "une",
        "pres",
        "chez",
        "ou",
    ]
)


class ImportFileError(Exception):
    """The file as a whole cannot be read; `row` is the line at fault when known."""

    def __init__(self, message: str, *, row: int | None = None):
        super().__init__(message)
        self.row = row


# --------------------------------------------------------------------------- report


@dataclass(frozen=True)
class Issue:
    row: int | None
    column: str
    message: str
    row_word: str = "ligne"

    def __str__(self) -> str:
        where = []
        if self.row is not None:
            where.append(f"{self.row_word} {self.row}")
        if self.column:
            where.append(f"colonne « {self.column} »")
        return f"{', '.join(where)} : {self.message}" if where else self.message


@dataclass
class ImportReport:
    kind: str
    source: str
    path: str
    row_word: str = "ligne"
    rows_read: int = 0
    errors: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)  # (entity, outcome) → n
    committed: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors

    def error(self, row: int | None, column: str, message: str) -> None:
        self.errors.append(Issue(row, column, message, self.row_word))

    def warn(self, row: int | None, column: str, message: str) -> None:
        self.warnings.append(Issue(row, column, message, self.row_word))

    def count(self, entity: str, outcome: Outcome) -> int:
        return self.counts[(entity, outcome)]

    def summary_lines(self) -> list[str]:
        lines = []
        verbs = {
            Outcome.CREATED: ("créée(s)", "à créer"),
            Outcome.UPDATED: ("mise(s) à jour", "à mettre à jour"),
            Outcome.UNCHANGED: ("inchangée(s)", "inchangée(s)"),
        }
        for entity, label in (("amap", "AMAP"), ("farm", "ferme(s)"), ("partnership", "partenariat(s)")):
            parts = [
                f"{self.counts[(entity, outcome)]} {verbs[outcome][0 if self.committed else 1]}"
                for outcome in Outcome
                if self.counts[(entity, outcome)]
            ]
            if parts:
                lines.append(f"{label} : {', '.join(parts)}")
        return lines

    def as_text(self, *, details: bool = True) -> str:
        what = f"{KIND_LABELS[self.kind]}, source « {self.source} »"
        out = [f"Import de {self.path} ({what}) : {self.rows_read} {self.row_word}(s) lue(s)."]
        out.extend(self.notes)
        if self.errors:
            out.append(f"{len(self.errors)} erreur(s) — rien n'a été enregistré :")
            out.extend(f"  - {issue}" for issue in self.errors)
        if self.warnings:
            out.append(f"{len(self.warnings)} avertissement(s) (lignes gardées) :")
            out.extend(f"  - {issue}" for issue in self.warnings)
        if not self.errors:
            if details and self.actions:
                out.extend(f"  {line}" for line in self.actions)
            out.extend(self.summary_lines() or ["Rien à faire."])
            if not self.committed:
                out.append("Simulation : rien n'a été enregistré. Relancez avec --commit pour enregistrer.")
        return "\n".join(out)


# --------------------------------------------------------------------------- reading files


@dataclass
class Table:
    headers: list[str]
    rows: list[tuple[int, dict[str, str]]]  # (row number in the file, header → text)
    row_word: str = "ligne"
    # GeoJSON/GeoPackage: header of the pseudo-columns holding the geometry's lon/lat.
    geometry_columns: tuple[str, str] | None = None


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
    import geopandas

    try:
        frame = geopandas.read_file(path)
    except Exception as error:  # pyogrio/GDAL errors carry the reason
        raise ImportFileError(f"fichier géographique illisible : {error}") from error
    headers = [str(column) for column in frame.columns if column != frame.geometry.name]
    if frame.crs is not None and frame.crs.to_epsg() != 4326:
        frame = frame.to_crs(4326)
    rows = []
    for index, (_key, record) in enumerate(frame.iterrows(), start=1):
        values = {str(column): cell_text(record[column]) for column in headers}
        geometry = record[frame.geometry.name]
        lon = lat = ""
        if geometry is not None and not geometry.is_empty:
            point = geometry if geometry.geom_type == "Point" else geometry.representative_point()
            lon, lat = repr(point.x), repr(point.y)
        values[GEOMETRY_LON], values[GEOMETRY_LAT] = lon, lat
        rows.append((index, values))
    return Table(headers=headers, rows=rows, row_word="entité", geometry_columns=(GEOMETRY_LON, GEOMETRY_LAT))


# --------------------------------------------------------------------------- columns


def normalize_header(text: str) -> str:
    """'Code postal', 'CODE_POSTAL' and 'code-postal ' all give 'code_postal'."""
    return re.sub(r"[^a-z0-9]+", "_", parsing.fold(text)).strip("_")


def _canonical_field(name: str) -> str | None:
    key = normalize_header(name)
    for canonical, aliases in FIELD_ALIASES.items():
        if key == canonical or key in aliases:
            return canonical
    return None


def resolve_columns(
    *, table: Table, kind: str, mapping: Mapping[str, str] | None, report: ImportReport
) -> dict[str, str]:
    """Canonical field → the file's header, from the explicit mapping first, then the usual names."""
    wanted = KIND_FIELDS[kind]
    by_key: dict[str, str] = {}
    for header in table.headers:
        by_key.setdefault(normalize_header(header), header)
    columns: dict[str, str] = {}
    for target, source_column in (mapping or {}).items():
        canonical = _canonical_field(target)
        if canonical is None or canonical not in wanted:
            report.error(None, target, f"champ inconnu dans --map (champs possibles : {', '.join(sorted(wanted))})")
            continue
        header = by_key.get(normalize_header(source_column))
        if header is None:
            report.error(
                None,
                source_column,
                f"colonne absente du fichier (colonnes trouvées : {', '.join(table.headers)})",
            )
            continue
        columns[canonical] = header
    used = set(columns.values())
    for header in table.headers:
        if header in used:
            continue
        canonical = _canonical_field(header)
        if canonical in wanted and canonical not in columns:
            columns[canonical] = header
            used.add(header)
    if table.geometry_columns:
        columns["lon"], columns["lat"] = table.geometry_columns
    ignored = [h for h in table.headers if h not in used and h not in columns.values()]
    if ignored:
        report.notes.append(f"Colonnes ignorées : {', '.join(ignored)}.")
    _check_required(kind=kind, columns=columns, table=table, report=report)
    return columns


def _check_required(*, kind: str, columns: Mapping[str, str], table: Table, report: ImportReport) -> None:
    found = ", ".join(table.headers) or "aucune"

    def missing(name: str, what: str) -> None:
        report.error(None, name, f"colonne obligatoire absente : {what} (colonnes trouvées : {found})")

    if kind in {"amap", "farm"}:
        if "nom" not in columns:
            missing("nom", "le nom (ou indiquez-la avec --map nom=<colonne>)")
        if ("lat" in columns) != ("lon" in columns):
            present, absent = ("lat", "lon") if "lat" in columns else ("lon", "lat")
            missing(absent, f"« {columns[present]} » est là mais pas sa colonne compagne ({absent})")
        locating = {"lat", "ville", "code_postal", "adresse", "insee"}
        if kind == "amap" and not locating & set(columns):
            missing(
                "ville", "il faut des coordonnées (lat/lon) ou la ville, le code postal, l'adresse ou le code INSEE"
            )
    else:
        for name, what in (("amap_id", "l'identifiant de l'AMAP"), ("producteur_id", "l'identifiant du producteur")):
            if name not in columns:
                missing(name, what)


# --------------------------------------------------------------------------- rows


@dataclass
class Located:
    point: Point | None
    commune: Commune | None
    precision: str


@dataclass
class Prepared:
    row: int
    external_id: str
    fields: dict[str, Any]
    product_slugs: list[str] | None
    links: list[str] = field(default_factory=list)  # external ids of the other side
    label: str = ""


class _RowContext:
    """One row's cells by canonical field, reporting issues against the file's own headers."""

    def __init__(self, importer: _Importer, row: int, values: Mapping[str, str]):
        self.importer = importer
        self.row = row
        self.values = values
        self.failed = False

    def has(self, name: str) -> bool:
        return name in self.importer.columns

    def get(self, name: str) -> str:
        header = self.importer.columns.get(name)
        return (self.values.get(header) or "").strip() if header else ""

    def column(self, name: str) -> str:
        return self.importer.columns.get(name, name)

    def error(self, name: str, message: str) -> None:
        self.failed = True
        self.importer.report.error(self.row, self.column(name) if name else "", message)

    def warn(self, name: str, message: str) -> None:
        self.importer.report.warn(self.row, self.column(name) if name else "", message)


class _Importer:
    kind: str

    def __init__(self, *, table: Table, columns: dict[str, str], source: str, report: ImportReport):
        self.table = table
        self.columns = columns
        self.source = source
        self.report = report
        self._communes: dict[str, Commune | None] = {}
        self._geocoded: dict[tuple[str, str, str], list[Candidate]] = {}
        self._departments: dict[str, str] | None = None
        self._matcher: parsing.ProductMatcher | None = None

    # -- shared cell readers -----------------------------------------------------------

    @property
    def matcher(self) -> parsing.ProductMatcher:
        if self._matcher is None:
            categories = ProductCategory.objects.order_by("position", "pk").values_list("slug", "name", "aliases")
            self._matcher = parsing.ProductMatcher(list(categories))
        return self._matcher

    def commune(self, code: str) -> Commune | None:
        if code not in self._communes:
            self._communes[code] = Commune.objects.filter(code=code).defer("geom").first()
        return self._communes[code]

    def geocode(self, *, address: str = "", postal_code: str = "", commune: str = "") -> list[Candidate]:
        key = (address, postal_code, commune)
        if key not in self._geocoded:
            try:
                self._geocoded[key] = geocode_parts(address=address, postal_code=postal_code, commune=commune)
            except GeocodingError:
                self._geocoded[key] = []
        return self._geocoded[key]

    def coordinates(self, ctx: _RowContext) -> Point | None:
        """The row's validated point, None when it has none; reports bad values."""
        if not (ctx.has("lat") and ctx.has("lon")):
            return None
        lat_text, lon_text = ctx.get("lat"), ctx.get("lon")
        if not lat_text and not lon_text:
            return None
        if not lat_text or not lon_text:
            ctx.error("lat" if not lat_text else "lon", "latitude et longitude doivent être données ensemble")
            return None
        numbers = {}
        for name, text in (("lat", lat_text), ("lon", lon_text)):
            try:
                numbers[name] = parse_number(text)
            except CoordinateError as error:
                ctx.error(name, str(error))
        if len(numbers) < 2:
            return None
        try:
            return validate_lon_lat(numbers["lon"], numbers["lat"], require_france=True)
        except CoordinateError as error:
            lat, lon = numbers["lat"], numbers["lon"]
            name = "lat" if not -90 <= lat <= 90 else "lon" if not -180 <= lon <= 180 else "lat"
            if math.isfinite(lat) and -90 <= lat <= 90 and math.isfinite(lon) and -180 <= lon <= 180:
                column = f"{ctx.column('lat')}/{ctx.column('lon')}"
                ctx.failed = True
                self.report.error(ctx.row, column, str(error))
            else:
                ctx.error(name, str(error))
            return None

    def precision_of_coordinates(self, ctx: _RowContext) -> str:
        text = ctx.get("precision")
        precision = PRECISION_WORDS.get(normalize_header(text))
        if precision is None:
            precision = next(
                (p for p in LocationPrecision if normalize_header(p.label) == normalize_header(text)), None
            )
        if precision is None:
            ctx.warn("precision", f"précision « {text} » non reconnue : coordonnées prises telles quelles")
            precision = LocationPrecision.EXACT
        return precision

    def commune_for_point(self, ctx: _RowContext, point: Point) -> Commune | None:
        """The commune of the file's INSEE code when the point agrees with it, else the one at the point."""
        insee_text = ctx.get("insee")
        insee = parsing.normalize_insee(insee_text)
        if insee_text and not insee:
            ctx.warn("insee", f"« {insee_text} » n'est pas un code INSEE : commune déduite des coordonnées")
        if not insee:
            return commune_at_point(point=point)
        # One outline to test when the file names the commune (the usual case), not a spatial search.
        named = Commune.objects.filter(code=insee).annotate(distance=Distance("geom", point)).defer("geom").first()
        if named is not None and named.distance is not None and named.distance.m <= INSEE_TOLERANCE_M:
            return named
        at_point = commune_at_point(point=point)
        if named is None:
            ctx.warn("insee", f"code INSEE « {insee} » inconnu : commune déduite des coordonnées")
        elif at_point is not None:
            ctx.warn(
                "insee",
                f"le point est dans la commune {at_point.name} ({at_point.code}), "
                f"pas dans celle du code INSEE {insee} ({named.name}) : {at_point.name} est retenue",
            )
        return at_point

    def department_hint(self, text: str) -> str | None:
        """'Criée d'Arcachon 33' → '33'; 'Monbahus (Lot et Garonne)' → '47'."""
        folded = parsing.fold(text)
        match = re.search(r"(?:^|[\s(])(\d{2}|2[ab]|97\d)\s*\)?\s*$", folded)
        if match:
            return match.group(1).upper()
        if self._departments is None:
            self._departments = {
                normalize_place_name(name): code for code, name in Department.objects.values_list("code", "name")
            }
        for inside in re.findall(r"\(([^)]*)\)", text):
            code = self._departments.get(normalize_place_name(inside))
            if code:
                return code
        return None

    def locate_from_text(
        self, ctx: _RowContext, *, address: str, postal_code: str, commune: str, insee: str
    ) -> tuple[Candidate | None, bool]:
        """Best candidate for a row without coordinates, and whether it was only guessed."""
        if insee:
            found = self.commune(insee)
            if found is not None and found.point is not None:
                return Candidate(found.label, found.point, found, LocationPrecision.COMMUNE, 1.0), False
        if postal_code or commune:
            candidates = self.geocode(address=address, postal_code=postal_code, commune=commune)
            return (candidates[0] if candidates else None), False
        if not address:
            return None, False
        candidates = self.geocode(address=address)
        if candidates:
            return candidates[0], candidates[0].score < 0.9
        hint = self.department_hint(address)

        def in_hint(found: list[Candidate]) -> list[Candidate]:
            if hint is None:
                return found
            return [c for c in found if c.commune is not None and c.commune.department_id == hint]

        cleaned = re.sub(r"\([^)]*\)", " ", address)
        cleaned = re.sub(r"(?:^|\s)(\d{2}|2[AaBb]|97\d)\s*$", " ", cleaned).strip(" ,;-")
        for variant in dict.fromkeys([cleaned, *reversed(re.split(r"[,;]", cleaned))]):
            variant = variant.strip(" ,;-")
            if variant:
                found = in_hint(self.geocode(commune=variant))
                if found:
                    return found[0], True
        # Last resort: a commune named inside the text ("Bordeaux dans un blockhaus…"), exact names only.
        words = re.findall(r"[^\W\d_]+", cleaned)
        for size in range(min(4, len(words)), 0, -1):
            for start in range(len(words) - size + 1):
                chunk = words[start : start + size]
                if all(parsing.fold(w) in _STOP_WORDS or len(w) < 3 for w in chunk):
                    continue
                found = [c for c in in_hint(self.geocode(commune=" ".join(chunk))) if c.score >= 0.99]
                if found:
                    return found[0], True
        return None, False

    def website(self, ctx: _RowContext) -> str:
        text = ctx.get("site_web")
        if not text:
            return ""
        # "https://x.fr/ (KO)", "https://www.lachevre desvignes.fr/": notes and stray spaces come off.
        cleaned = re.sub(r"\s*\([^)]*\)\s*$", "", text).strip().replace(" ", "")
        url = cleaned if re.match(r"^[a-z][a-z0-9+.-]*://", cleaned, flags=re.IGNORECASE) else f"http://{cleaned}"
        try:
            URLValidator()(url)
        except ValidationError:
            ctx.warn("site_web", f"« {text} » n'est pas une adresse web : ignorée")
            return ""
        if cleaned != text:
            ctx.warn("site_web", f"adresse web « {text} » lue comme « {url} »")
        if len(url) > 500:
            ctx.warn("site_web", "adresse web de plus de 500 caractères : ignorée")
            return ""
        return url

    def email(self, ctx: _RowContext) -> str:
        text = ctx.get("email")
        if not text:
            return ""
        try:
            EmailValidator()(text)
        except ValidationError:
            ctx.warn("email", f"« {text} » n'est pas une adresse e-mail : ignorée")
            return ""
        return text

    def phone(self, ctx: _RowContext) -> str:
        text = ctx.get("telephone")
        if len(text) > 30:
            ctx.warn("telephone", "numéro de plus de 30 caractères : ignoré")
            return ""
        return text

    def products(self, ctx: _RowContext, *, required: bool) -> list[str] | None:
        """Product slugs from the product text, else from the category column."""
        if not (ctx.has("produits") or ctx.has("categorie")):
            return None
        text, category = ctx.get("produits"), ctx.get("categorie")
        slugs = self.matcher.match(text) or self.matcher.match(category)
        if not slugs and (text or category) and required:
            ctx.warn(
                "produits" if text else "categorie",
                f"produit « {text or category} » non reconnu : classé dans « Autres produits »",
            )
            slugs = ["autres"]
        elif not slugs and (text or category):
            ctx.warn("produits" if text else "categorie", f"produit « {text or category} » non reconnu : ignoré")
        return slugs

    def name(self, ctx: _RowContext) -> str:
        name = re.sub(r"\s+", " ", ctx.get("nom"))
        if not name:
            ctx.error("nom", "le nom est vide")
        elif len(name) > 200:
            ctx.error("nom", "le nom dépasse 200 caractères")
        return name

    def external_id(self, ctx: _RowContext, *, name: str, place: str, seen: dict[str, int]) -> str:
        external_id = ctx.get("id")
        if not external_id:
            # No id column: a stable identity from the name and the place, so re-imports match.
            digest = hashlib.sha256(f"{normalize_place_name(name)}|{place}".encode()).hexdigest()[:16]
            external_id = f"h-{digest}"
        elif len(external_id) > 100:
            ctx.error("id", "identifiant de plus de 100 caractères")
        if external_id in seen:
            column = "id" if ctx.get("id") else "nom"
            ctx.error(column, f"« {external_id} » figure déjà {self.table.row_word} {seen[external_id]}")
        else:
            seen[external_id] = ctx.row
        return external_id

    # -- flow ----------------------------------------------------------------------------

    def prepare(self) -> list[Prepared]:
        prepared: list[Prepared] = []
        seen: dict[str, int] = {}
        for row, values in self.table.rows:
            ctx = _RowContext(self, row, values)
            record = self.prepare_row(ctx, seen=seen)
            if record is not None and not ctx.failed:
                prepared.append(record)
        return prepared

    def prepare_row(self, ctx: _RowContext, *, seen: dict[str, int]) -> Prepared | None:
        raise NotImplementedError

    def write(self, records: Sequence[Prepared]) -> None:
        raise NotImplementedError

    def record_outcome(self, entity: str, record_label: str, row: int, outcome: Outcome, changed=()) -> None:
        self.report.counts[(entity, outcome)] += 1
        if outcome == Outcome.UNCHANGED:
            return
        verb = {Outcome.CREATED: "création", Outcome.UPDATED: "mise à jour"}[outcome]
        detail = f" ({', '.join(changed)})" if changed else ""
        self.report.actions.append(f"{self.table.row_word} {row} : {record_label} — {verb}{detail}")


class AmapImporter(_Importer):
    kind = "amap"

    def prepare_row(self, ctx: _RowContext, *, seen: dict[str, int]) -> Prepared | None:
        name = self.name(ctx)
        postal_code = parsing.normalize_postal_code(ctx.get("code_postal"))
        if ctx.get("code_postal") and not postal_code:
            ctx.warn("code_postal", f"« {ctx.get('code_postal')} » n'est pas un code postal : ignoré")
        located = self.locate(ctx, postal_code=postal_code)
        if located is None:
            return None
        fields: dict[str, Any] = {
            "name": name,
            "location": located.point,
            "location_precision": located.precision,
            "commune": located.commune,
        }
        if ctx.has("adresse"):
            fields["address"] = ctx.get("adresse")[:300]
        if ctx.has("code_postal"):
            fields["postal_code"] = postal_code
        fields.update(self.delivery(ctx))
        if ctx.has("etat"):
            status = parsing.parse_status(ctx.get("etat"))
            if status is None:
                ctx.warn("etat", f"état « {ctx.get('etat')} » non reconnu : AMAP considérée active")
                status = Amap.Status.ACTIVE
            fields["status"] = status
        if ctx.has("type"):
            fields["kind"] = next(
                (kind for word, kind in KIND_WORDS.items() if word in parsing.words_of(ctx.get("type"))),
                Amap.Kind.CLASSIC,
            )
        if ctx.has("nouveaux_membres"):
            text = ctx.get("nouveaux_membres")
            accepting = parsing.parse_accepting(text)
            if accepting is None:
                ctx.warn("nouveaux_membres", f"« {text} » non reconnu (ouvert, liste d'attente, complet) : ignoré")
                accepting = Amap.Accepting.UNKNOWN
            fields["accepting_members"] = accepting
        if ctx.has("plateforme"):
            fields["platform"] = ctx.get("plateforme")[:60]
        if ctx.has("site_web"):
            fields["website"] = self.website(ctx)
        if ctx.has("email"):
            fields["contact_email"] = self.email(ctx)
        if ctx.has("telephone"):
            fields["phone"] = self.phone(ctx)
        if ctx.has("description"):
            fields["description"] = ctx.get("description")
        if ctx.has("date_creation"):
            text = ctx.get("date_creation")
            fields["founded_on"] = parsing.parse_date(text)
            if text and fields["founded_on"] is None:
                ctx.warn("date_creation", f"date « {text} » illisible (attendu AAAA-MM-JJ ou JJ/MM/AAAA) : ignorée")
        if ctx.has("rna_id"):
            rna = ctx.get("rna_id").upper().replace(" ", "")
            if rna and not re.fullmatch(r"W\d{9}", rna):
                ctx.warn("rna_id", f"« {rna} » n'est pas un numéro RNA (W suivi de 9 chiffres) : ignoré")
                rna = ""
            fields["rna_id"] = rna
        products = self.products(ctx, required=False)
        place = located.commune.code if located.commune else ""
        external_id = self.external_id(ctx, name=name, place=place, seen=seen)
        links = parsing.split_ids(ctx.get("producteur_ids"))
        return Prepared(ctx.row, external_id, fields, products, links, label=f"AMAP « {name} »")

    def locate(self, ctx: _RowContext, *, postal_code: str) -> Located | None:
        point = self.coordinates(ctx)
        if ctx.failed:
            return None
        if point is not None:
            commune = self.commune_for_point(ctx, point)
            if commune is None:
                ctx.error("lat", "aucune commune française à cet endroit (point en mer ?)")
                return None
            return Located(point, commune, self.precision_of_coordinates(ctx))
        ville, address = ctx.get("ville"), ctx.get("adresse")
        insee = parsing.normalize_insee(ctx.get("insee"))
        if not (ville or postal_code or address or insee):
            ctx.error("ville", "ni coordonnées, ni ville, ni code postal : impossible de placer l'AMAP")
            return None
        if ctx.get("insee") and (not insee or self.commune(insee) is None):
            ctx.error("insee", f"code INSEE « {ctx.get('insee')} » inconnu")
            return None
        candidate, _guessed = self.locate_from_text(
            ctx, address=address, postal_code=postal_code, commune=ville, insee=insee
        )
        if candidate is None or candidate.commune is None:
            what = " ".join(part for part in (postal_code, ville) if part) or address
            ctx.error(
                "ville" if ville else "code_postal" if postal_code else "adresse", f"commune inconnue : « {what} »"
            )
            return None
        if ville and candidate.score < 0.9:
            ctx.warn("ville", f"« {ville} » compris comme {candidate.commune.name} ({candidate.commune.code})")
        return Located(candidate.point, candidate.commune, candidate.precision)

    def delivery(self, ctx: _RowContext) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        notes: list[str] = []
        frequency: str | None = None
        if ctx.has("jour"):
            days = parsing.parse_weekdays(ctx.get("jour"))
            fields["delivery_weekdays"] = days.weekdays
            frequency = days.frequency
            if days.note:
                notes.append(days.note)
                if not days.weekdays:
                    ctx.warn("jour", f"jour « {days.note} » non reconnu : gardé en précision")
        if ctx.has("horaire"):
            hours = parsing.parse_hours(ctx.get("horaire"))
            fields["delivery_start"], fields["delivery_end"] = hours.start, hours.end
            frequency = frequency or hours.frequency
            if hours.note:
                notes.append(hours.note)
                if hours.start is None:
                    ctx.warn("horaire", f"horaire « {hours.note} » non reconnu : gardé en précision")
        if ctx.has("frequence") and ctx.get("frequence"):
            text = ctx.get("frequence")
            explicit = parsing.frequency_in(text) or next(
                (value for value, label in FREQUENCY_LABELS.items() if parsing.fold(text) == label), None
            )
            if explicit is None:
                ctx.warn("frequence", f"fréquence « {text} » non reconnue : gardée en précision")
                notes.append(text)
            frequency = explicit or frequency
        if ctx.has("jour") or ctx.has("horaire") or ctx.has("frequence"):
            fields["delivery_frequency"] = frequency or Amap.Frequency.WEEKLY
        if ctx.has("precisions_livraison"):
            fields["delivery_notes"] = ctx.get("precisions_livraison")[:300]
        elif ctx.has("jour") or ctx.has("horaire"):
            fields["delivery_notes"] = " ; ".join(notes)[:300]
        return fields

    def write(self, records: Sequence[Prepared]) -> None:
        from .models import Farm

        farms = {f.external_id: f for f in Farm.objects.filter(source=self.source).exclude(external_id="")}
        for record in records:
            result = amap_upsert(
                source=self.source,
                external_id=record.external_id,
                fields=record.fields,
                product_slugs=record.product_slugs,
            )
            self.record_outcome("amap", record.label, record.row, result.outcome, result.changed)
            for farm_id in record.links:
                farm = farms.get(farm_id)
                if farm is not None:
                    for product in farm.products.all() or _fallback_products():
                        link = partnership_upsert(amap=result.obj, farm=farm, product=product, source=self.source)
                        self.record_outcome(
                            "partnership", f"partenariat avec « {farm.name} »", record.row, link.outcome
                        )

    def check_links(self, records: Sequence[Prepared]) -> None:
        known = set(Farm.objects.filter(source=self.source).values_list("external_id", flat=True))
        linked = sum(len(record.links) for record in records)
        if linked and not known:
            self.report.notes.append(
                f"{linked} lien(s) vers des producteurs : ils seront créés à l'import des producteurs "
                f"(--kind farm, même --source « {self.source} »)."
            )
        for record in records:
            unknown = [i for i in record.links if i not in known]
            if unknown and not known:
                continue  # no farm of this source yet: the farms' own import makes the links
            if unknown:
                self.report.warn(
                    record.row,
                    self.columns.get("producteur_ids", "producteur_ids"),
                    f"producteur(s) inconnu(s) dans la source « {self.source} » : {', '.join(unknown)} (lien ignoré)",
                )


def _fallback_products() -> list[ProductCategory]:
    return list(ProductCategory.objects.filter(slug="autres"))


class FarmImporter(_Importer):
    kind = "farm"

    def prepare_row(self, ctx: _RowContext, *, seen: dict[str, int]) -> Prepared | None:
        name = self.name(ctx)
        postal_code = parsing.normalize_postal_code(ctx.get("code_postal"))
        located = self.locate(ctx, postal_code=postal_code)
        if located is None:
            return None
        address = ctx.get("adresse")
        if not postal_code and address:
            match = re.search(r"(?<!\d)(\d{5})(?!\d)", address)
            postal_code = match.group(1) if match else ""
        fields: dict[str, Any] = {
            "name": name,
            "location": located.point,
            "location_precision": located.precision,
            "commune": located.commune,
        }
        if ctx.has("adresse"):
            fields["address"] = address[:300]
        if ctx.has("adresse") or ctx.has("code_postal"):
            fields["postal_code"] = postal_code
        description = []
        if ctx.get("description"):
            description.append(ctx.get("description"))
        if ctx.get("societe"):
            description.append(f"Structure : {ctx.get('societe')}")
        if ctx.get("frequence"):
            description.append(f"Livraisons : {ctx.get('frequence')}")
        if ctx.has("description") or ctx.has("societe") or ctx.has("frequence"):
            fields["description"] = "\n".join(description)
        if ctx.has("produits"):
            fields["product_details"] = ctx.get("produits")[:300]
        if ctx.has("site_web"):
            fields["website"] = self.website(ctx)
        if ctx.has("email"):
            fields["contact_email"] = self.email(ctx)
        if ctx.has("telephone"):
            fields["phone"] = self.phone(ctx)
        if ctx.has("labels"):
            text = " ".join(parsing.words_of(ctx.get("labels")))
            fields["labels"] = sorted({label for word, label in LABEL_WORDS.items() if re.search(rf"\b{word}\b", text)})
        if ctx.has("rayon_livraison_km"):
            # Without the column (or with an empty cell) the radius stays unknown, never a default.
            fields["delivery_radius_km"] = self.delivery_radius(ctx)
        products = self.products(ctx, required=True)
        place = located.commune.code if located.commune else normalize_place_name(address)
        external_id = self.external_id(ctx, name=name, place=place, seen=seen)
        links = parsing.split_ids(ctx.get("amap_ids"))
        return Prepared(ctx.row, external_id, fields, products, links, label=f"ferme « {name} »")

    def delivery_radius(self, ctx: _RowContext) -> int | None:
        text = ctx.get("rayon_livraison_km").lower().removesuffix("km").strip().replace(",", ".")
        if not text:
            return None
        try:
            km = float(text)
        except ValueError:
            km = math.nan
        if not 1 <= km <= 500:
            cell = ctx.get("rayon_livraison_km")
            ctx.error("rayon_livraison_km", f"rayon « {cell} » : un nombre de km entre 1 et 500 est attendu")
            return None
        return round(km)

    def locate(self, ctx: _RowContext, *, postal_code: str) -> Located | None:
        point = self.coordinates(ctx)
        if ctx.failed:
            return None
        if point is not None:
            precision = self.precision_of_coordinates(ctx)
            commune = self.commune_for_point(ctx, point)
            if commune is None:
                ctx.warn("lat", "aucune commune à cet endroit : ferme gardée sans commune")
            return Located(point, commune, precision)
        ville, address = ctx.get("ville"), ctx.get("adresse")
        insee = parsing.normalize_insee(ctx.get("insee"))
        if ctx.get("insee") and (not insee or self.commune(insee) is None):
            ctx.error("insee", f"code INSEE « {ctx.get('insee')} » inconnu")
            return None
        if not (ville or postal_code or address or insee):
            ctx.warn("", "ni coordonnées ni adresse : ferme gardée sans localisation")
            return Located(None, None, LocationPrecision.UNKNOWN)
        candidate, guessed = self.locate_from_text(
            ctx, address=address, postal_code=postal_code, commune=ville, insee=insee
        )
        if candidate is None or candidate.commune is None:
            if ville or postal_code:
                what = " ".join(part for part in (postal_code, ville) if part)
                ctx.error("ville" if ville else "code_postal", f"commune inconnue : « {what} »")
                return None
            ctx.warn("adresse", f"aucune commune reconnue dans « {address} » : ferme gardée sans localisation")
            return Located(None, None, LocationPrecision.UNKNOWN)
        if guessed:
            ctx.warn(
                "adresse",
                f"« {address} » placé approximativement à {candidate.commune.name} ({candidate.commune.code})",
            )
        return Located(candidate.point, candidate.commune, candidate.precision)

    def check_links(self, records: Sequence[Prepared]) -> None:
        known = set(Amap.objects.filter(source=self.source).values_list("external_id", flat=True))
        column = self.columns.get("amap_ids", "amap_ids")
        linked = sum(len(record.links) for record in records)
        if linked and not known:
            self.report.warn(
                None,
                column,
                f"aucune AMAP de la source « {self.source} » n'est encore enregistrée : les {linked} lien(s) "
                "seront ignorés. Importez d'abord les AMAP (--kind amap --commit) avec la même --source.",
            )
            return
        for record in records:
            for amap_id in record.links:
                if parsing.looks_like_url(amap_id):
                    self.report.warn(
                        record.row, column, f"« {amap_id} » est une adresse web, pas un identifiant d'AMAP : ignoré"
                    )
                elif amap_id not in known:
                    self.report.warn(
                        record.row,
                        column,
                        f"AMAP « {amap_id} » inconnue dans la source « {self.source} » : lien ignoré",
                    )

    def write(self, records: Sequence[Prepared]) -> None:
        amaps = {a.external_id: a for a in Amap.objects.filter(source=self.source).exclude(external_id="")}
        for record in records:
            result = farm_upsert(
                source=self.source,
                external_id=record.external_id,
                fields=record.fields,
                product_slugs=record.product_slugs,
            )
            self.record_outcome("farm", record.label, record.row, result.outcome, result.changed)
            products = list(result.obj.products.all()) or _fallback_products()
            for amap_id in record.links:
                amap = amaps.get(amap_id)
                if amap is None:
                    continue
                for product in products:
                    link = partnership_upsert(amap=amap, farm=result.obj, product=product, source=self.source)
                    self.record_outcome("partnership", f"partenariat avec « {amap.name} »", record.row, link.outcome)


class PartnershipImporter(_Importer):
    kind = "partnership"

    def prepare_row(self, ctx: _RowContext, *, seen: dict[str, int]) -> Prepared | None:
        amap_id, farm_id = ctx.get("amap_id"), ctx.get("producteur_id")
        if not amap_id:
            ctx.error("amap_id", "identifiant d'AMAP vide")
        if not farm_id:
            ctx.error("producteur_id", "identifiant de producteur vide")
        fields: dict[str, Any] = {}
        for name, key in (("depuis", "since"), ("jusqu_au", "until")):
            text = ctx.get(name)
            fields[key] = parsing.parse_date(text)
            if text and fields[key] is None:
                ctx.error(name, f"date « {text} » illisible (attendu AAAA-MM-JJ ou JJ/MM/AAAA)")
        if fields["since"] and fields["until"] and fields["until"] < fields["since"]:
            ctx.error("jusqu_au", "la date de fin précède la date de début")
        active_text = parsing.fold(ctx.get("actif"))
        fields["is_active"] = active_text not in {"non", "no", "false", "0", "faux", "inactif", "termine", "fini"}
        products = self.products(ctx, required=False)
        return Prepared(ctx.row, f"{amap_id}|{farm_id}", fields, products, [amap_id, farm_id])

    def check_links(self, records: Sequence[Prepared]) -> None:
        self.amaps = {a.external_id: a for a in Amap.objects.filter(source=self.source).exclude(external_id="")}
        self.farms = {f.external_id: f for f in Farm.objects.filter(source=self.source).exclude(external_id="")}
        for record in records:
            amap_id, farm_id = record.links
            if amap_id not in self.amaps:
                self.report.error(
                    record.row, self.columns["amap_id"], f"AMAP « {amap_id} » inconnue dans la source « {self.source} »"
                )
            if farm_id not in self.farms:
                self.report.error(
                    record.row,
                    self.columns["producteur_id"],
                    f"producteur « {farm_id} » inconnu dans la source « {self.source} »",
                )

    def write(self, records: Sequence[Prepared]) -> None:
        categories = {c.slug: c for c in ProductCategory.objects.all()}
        for record in records:
            amap, farm = self.amaps[record.links[0]], self.farms[record.links[1]]
            slugs = record.product_slugs or list(farm.products.values_list("slug", flat=True)) or ["autres"]
            for slug in slugs:
                result = partnership_upsert(
                    amap=amap, farm=farm, product=categories[slug], source=self.source, **record.fields
                )
                label = f"partenariat « {amap.name} » ↔ « {farm.name} » ({categories[slug].name})"
                self.record_outcome("partnership", label, record.row, result.outcome, result.changed)


IMPORTERS: dict[str, type[_Importer]] = {"amap": AmapImporter, "farm": FarmImporter, "partnership": PartnershipImporter}


def directory_import(
    *,
    path: Path,
    kind: str,
    source: str,
    mapping: Mapping[str, str] | None = None,
    encoding: str | None = None,
    commit: bool = False,
) -> ImportReport:
    """Check every row of `path`, then upsert them all in one transaction (rolled back unless `commit`)."""
    if kind not in IMPORTERS:
        raise ValueError(f"kind must be one of {KINDS}")
    report = ImportReport(kind=kind, source=source, path=str(path))
    try:
        table = read_table(Path(path), encoding=encoding)
    except ImportFileError as error:
        report.error(error.row, "", str(error))
        return report
    report.row_word = table.row_word
    report.rows_read = len(table.rows)
    columns = resolve_columns(table=table, kind=kind, mapping=mapping, report=report)
    if not report.errors and not table.rows:
        report.error(None, "", "aucune ligne de données après l'en-tête")
    if report.errors:
        return report
    importer = IMPORTERS[kind](table=table, columns=columns, source=source, report=report)
    records = importer.prepare()
    importer.check_links(records)
    report.errors.sort(key=lambda issue: issue.row or 0)
    report.warnings.sort(key=lambda issue: issue.row or 0)
    if report.errors:
        return report
    with transaction.atomic():
        importer.write(records)
        if not commit:
            transaction.set_rollback(True)
    report.committed = commit
    return report
