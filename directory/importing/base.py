"""What the three importers share: one row's cells, locating a row, reading common cells, the flow.

An importer checks the rows a chunk at a time (`check`), then writes the chunk's records in bulk
(`write`): nothing of the file is held beyond the chunk but the ids already seen.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.contrib.gis.geos import Point
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator, URLValidator

from geo.coordinates import CoordinateError, parse_number, validate_lon_lat
from geo.geocoding import Candidate, GeocodingError, geocode_parts
from geo.models import Commune, Department
from geo.text import normalize_place_name

from .. import parsing
from ..models import LocationPrecision, ProductCategory
from ..services import Outcome
from .columns import normalize_header
from .lookups import PlaceLookups
from .report import ImportReport
from .table import Row, Table

GEOMETRY_COLUMN = "geometry"

# Place names geocoded, and cells parsed, remembered for the rest of the file, at most (then forgotten at once).
GEOCODED_KEPT = 20_000

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


class RowContext:
    """One row's cells by canonical field, reporting issues against the file's own headers."""

    def __init__(self, importer: Importer, row: int, values: Mapping[str, str]):
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


Progress = Callable[[str, int, int], None]  # (phase, done, total): "read", "check" or "write"


def no_progress(phase: str, done: int, total: int) -> None:
    return None


class Importer:
    kind: str

    def __init__(self, *, table: Table, columns: dict[str, str], source: str, report: ImportReport):
        self.table = table
        self.columns = columns
        self.source = source
        self.report = report
        self.places = PlaceLookups()
        self.seen: dict[str, int] = {}  # external id → the row that first gave it
        self._geocoded: dict[tuple[str, str, str], list[Candidate]] = {}
        self._departments: dict[str, str] | None = None
        self._matcher: parsing.ProductMatcher | None = None
        self._fallback_products: list[ProductCategory] | None = None
        self._memo: dict[tuple[Callable, str], Any] = {}
        # Row → its point and (lon, lat), for the chunk being checked (see `peek_point`).
        self._peeked: dict[int, tuple[Point, tuple[float, float]]] = {}

    # -- shared cell readers -----------------------------------------------------------

    def memo(self, parse: Callable[[str], Any], text: str) -> Any:
        """`parse(text)`, remembered: a column repeats the same few texts ("mardi", "18h-19h30", "légumes").

        For pure functions whose result the caller does not change (copy a list before keeping it).
        """
        key = (parse, text)
        if key not in self._memo:
            if len(self._memo) >= GEOCODED_KEPT:
                self._memo.clear()
            self._memo[key] = parse(text)
        return self._memo[key]

    @property
    def matcher(self) -> parsing.ProductMatcher:
        if self._matcher is None:
            categories = ProductCategory.objects.order_by("position", "pk").values_list("slug", "name", "aliases")
            self._matcher = parsing.ProductMatcher(list(categories))
        return self._matcher

    def commune(self, code: str) -> Commune | None:
        return self.places.commune(code)

    def geocode(self, *, address: str = "", postal_code: str = "", commune: str = "") -> list[Candidate]:
        key = (address, postal_code, commune)
        if key not in self._geocoded:
            if len(self._geocoded) >= GEOCODED_KEPT:
                self._geocoded.clear()
            try:
                self._geocoded[key] = geocode_parts(address=address, postal_code=postal_code, commune=commune)
            except GeocodingError:
                self._geocoded[key] = []
        return self._geocoded[key]

    def coordinates(self, ctx: RowContext) -> Point | None:
        """The row's validated point, None when it has none; reports bad values."""
        if self.table.geometry_columns:
            problem = self.table.geometry_problems.get(ctx.row)
            if problem:
                ctx.failed = True
                self.report.error(ctx.row, GEOMETRY_COLUMN, problem)
                return None
            if ctx.row in self.table.geometry_missing:
                self.report.warn(
                    ctx.row, GEOMETRY_COLUMN, "géométrie absente (null ou vide) : placée d'après les autres colonnes"
                )
                return None
        peeked = self._peeked.get(ctx.row)
        if peeked is not None:
            return peeked[0]  # found sound by `peek_point`: nothing to report
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

    def precision_of_coordinates(self, ctx: RowContext) -> str:
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

    def commune_for_point(self, ctx: RowContext, point: Point) -> Commune | None:
        """The commune of the file's INSEE code when the point agrees with it, else the one at the point."""
        insee_text = ctx.get("insee")
        insee = parsing.normalize_insee(insee_text)
        if insee_text and not insee:
            ctx.warn("insee", f"« {insee_text} » n'est pas un code INSEE : commune déduite des coordonnées")
        peeked = self._peeked.get(ctx.row)
        lonlat = peeked[1] if peeked is not None and peeked[0] is point else (point.x, point.y)
        if not insee:
            return self.places.at_point(lonlat)
        # One outline to test when the file names the commune (the usual case), not a spatial search.
        named, close = self.places.named_commune_near(insee, lonlat)
        if close:
            return named
        at_point = self.places.at_point(lonlat)
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
        self, ctx: RowContext, *, address: str, postal_code: str, commune: str, insee: str
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

    def website(self, ctx: RowContext) -> str:
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

    def email(self, ctx: RowContext, column: str = "email") -> str:
        text = ctx.get(column)
        if not text:
            return ""
        try:
            EmailValidator()(text)
        except ValidationError:
            ctx.warn(column, f"« {text} » n'est pas une adresse e-mail : ignorée")
            return ""
        return text

    def phone(self, ctx: RowContext) -> str:
        text = ctx.get("telephone")
        if len(text) > 30:
            ctx.warn("telephone", "numéro de plus de 30 caractères : ignoré")
            return ""
        return text

    def products(self, ctx: RowContext, *, required: bool) -> list[str] | None:
        """Product slugs from the product text, else from the category column."""
        if not (ctx.has("produits") or ctx.has("categorie")):
            return None
        text, category = ctx.get("produits"), ctx.get("categorie")
        slugs = list(self.memo(self.matcher.match, text) or self.memo(self.matcher.match, category))
        if not slugs and (text or category) and required:
            ctx.warn(
                "produits" if text else "categorie",
                f"produit « {text or category} » non reconnu : classé dans « Autres produits »",
            )
            slugs = ["autres"]
        elif not slugs and (text or category):
            ctx.warn("produits" if text else "categorie", f"produit « {text or category} » non reconnu : ignoré")
        return slugs

    def name(self, ctx: RowContext) -> str:
        name = re.sub(r"\s+", " ", ctx.get("nom"))
        if not name:
            ctx.error("nom", "le nom est vide")
        elif len(name) > 200:
            ctx.error("nom", "le nom dépasse 200 caractères")
        return name

    def external_id(self, ctx: RowContext, *, name: str, place: str, seen: dict[str, int]) -> str:
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

    def check(self, rows: Sequence[Row]) -> list[Prepared]:
        """Check a chunk of rows, reporting their issues; the records of the rows without an error."""
        self.look_up_places(rows)
        prepared: list[Prepared] = []
        for row, values in rows:
            ctx = RowContext(self, row, values)
            record = self.prepare_row(ctx, seen=self.seen)
            if record is not None and not ctx.failed:
                prepared.append(record)
        self.check_links(prepared)
        return prepared

    def look_up_places(self, rows: Sequence[Row]) -> None:
        """Ask the database at once about every INSEE code and point of the chunk (see `lookups`)."""
        codes: set[str] = set()
        named: list[tuple[str, float, float]] = []
        bare: list[tuple[float, float]] = []
        self._peeked = {}
        for row, values in rows:
            ctx = RowContext(self, row, values)
            insee = parsing.normalize_insee(ctx.get("insee"))
            if insee:
                codes.add(insee)
            point = self.peek_point(ctx)
            if point is not None and insee:
                named.append((insee, *point))
            elif point is not None:
                bare.append(point)
        self.places.load(codes=codes, named_points=named, points=bare)

    def peek_point(self, ctx: RowContext) -> tuple[float, float] | None:
        """The point `coordinates` will find in the row, if any, without reporting anything."""
        if self.table.geometry_columns and (
            ctx.row in self.table.geometry_problems or ctx.row in self.table.geometry_missing
        ):
            return None
        if not (ctx.has("lat") and ctx.has("lon")):
            return None
        try:
            lon, lat = parse_number(ctx.get("lon")), parse_number(ctx.get("lat"))
            point = validate_lon_lat(lon, lat, require_france=True)
        except CoordinateError:
            return None
        # The point's own x and y: reading them back from GEOS costs a call each.
        self._peeked[ctx.row] = (point, (lon, lat))
        return lon, lat

    def prepare_row(self, ctx: RowContext, *, seen: dict[str, int]) -> Prepared | None:
        raise NotImplementedError

    def check_links(self, records: Sequence[Prepared]) -> None:
        """Report links to the other side (a chunk's records) that point nowhere."""

    def finish(self) -> None:
        """After the last chunk: what is said of the file as a whole."""

    def write(self, records: Sequence[Prepared]) -> None:
        raise NotImplementedError

    def record_outcome(self, entity: str, record_label: str, row: int, outcome: Outcome, changed=()) -> None:
        self.report.counts[(entity, outcome)] += 1
        if outcome == Outcome.UNCHANGED:
            return
        verb = {Outcome.CREATED: "création", Outcome.UPDATED: "mise à jour"}[outcome]
        detail = f" ({', '.join(changed)})" if changed else ""
        self.report.act(f"{self.table.row_word} {row} : {record_label} — {verb}{detail}")

    def fallback_products(self) -> list[ProductCategory]:
        """« Autres produits », for a partnership with a farm that lists none."""
        if self._fallback_products is None:
            self._fallback_products = list(ProductCategory.objects.filter(slug="autres"))
        return self._fallback_products
