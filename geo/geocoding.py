"""Offline geocoding: France's communes as an in-memory gazetteer, plus an optional BAN adapter.

`geocode("mérignac")`, `geocode("33000")`, `geocode("Lyon 7e")`, `geocode("44.84, -0.58")` and
`geocode_parts(postal_code="33920", commune="Civrac de Blaye")` return ranked `Candidate`s.
The gazetteer is built once per process from the `Commune` table (about 35k rows, under a second,
~20 MB) and answers in well under a millisecond for exact matches, a few milliseconds with typos.
"""

from __future__ import annotations

import bisect
import heapq
import logging
import math
import re
import sys
import threading
from dataclasses import dataclass
from operator import itemgetter
from typing import NamedTuple

from django.conf import settings
from django.contrib.gis.db.models import GeometryField
from django.contrib.gis.geos import Point
from django.core.exceptions import ValidationError
from django.db.models import FloatField, Func
from django.db.models.functions import Cast
from django.utils.translation import gettext as _
from rapidfuzz import fuzz, process

from .coordinates import CoordinateError, validate_lon_lat
from .models import Commune, Department
from .text import normalize_place_name

logger = logging.getLogger(__name__)

# Equal to directory.models.LocationPrecision values (geo never imports directory).
PRECISION_EXACT = "exact"
PRECISION_ADDRESS = "address"
PRECISION_STREET = "street"
PRECISION_POSTAL_CODE = "postal_code"
PRECISION_COMMUNE = "commune"

MAX_QUERY_LENGTH = 200

# Scores: equally good answers share a score; ranking inside a score is by population.
SCORE_EXACT = 1.0
SCORE_POSTAL = 0.9
SCORE_INSEE_AFTER_POSTAL = 0.85
SCORE_BIG_TOWN_PREFIX = 0.98  # "Aix" → Aix-en-Provence, next to the village named Aix
BIG_TOWN_POPULATION = 20_000
BIG_TOWN_RATIO = 10
PREFIX_WHOLE_WORDS = 0.88  # similarity of a name beginning with the typed words, before the population bonus
PREFIX_CUT_WORD = 0.82
PREFIX_KEEP = 50
SCORE_CONFLICT = 0.75  # the name matched, the postal code or département did not
SCORE_FUZZY_MAX = 0.85
SCORE_ADDRESS_FALLBACK = 0.7  # factor: a commune read out of an address is a weaker answer
SCORE_NAME_UNKNOWN = 0.6  # a postal code with a name it does not contain
BAN_MIN_SCORE = 0.4
FUZZY_CUTOFF = 80  # rapidfuzz ratio, 0–100
FUZZY_CUTOFF_IN_AREA = 75  # rapidfuzz WRatio, when a postal code or département narrows the search


class GeocodingError(ValueError):
    """Input that cannot be geocoded at all (empty, absurd, coordinates out of range); message in French."""


@dataclass(frozen=True)
class Candidate:
    label: str  # "Bordeaux (33000)", "Lyon 7e Arrondissement (69007)", "12 rue X 33000 Bordeaux"
    point: Point  # WGS84 srid=4326
    commune: Commune | None
    precision: str  # a directory.models.LocationPrecision value
    score: float  # in [0, 1], higher is better


# --------------------------------------------------------------------------- gazetteer


@dataclass(frozen=True, slots=True)
class _Place:
    code: str
    name: str
    key: str  # normalize_place_name(name)
    kind: str
    parent_code: str | None
    department_code: str
    region_code: str
    postal_codes: tuple[str, ...]
    population: int
    lon: float
    lat: float
    weight: float  # 0 for an empty commune, 1 for a million inhabitants, logarithmic in between


# What a _Place knows, as Commune attributes; the point and the outline are not among them.
_COMMUNE_ATTRIBUTES = {
    "code": "code",
    "name": "name",
    "search_name": "key",
    "kind": "kind",
    "parent_id": "parent_code",
    "department_id": "department_code",
    "region_id": "region_code",
    "postal_codes": "postal_codes",
    "population": "population",
}


class _Gazetteer:
    def __init__(self, places: list[_Place], departments: dict[str, str]):
        self.places = {p.code: p for p in places}
        self.departments = departments  # normalised name → code: "gironde" → "33"
        by_name: dict[str, list[_Place]] = {}
        by_postal: dict[str, list[_Place]] = {}
        by_department: dict[str, list[_Place]] = {}
        self.arrondissements: dict[tuple[str, int], _Place] = {}
        for place in places:
            by_name.setdefault(place.key, []).append(place)
            for postal in place.postal_codes:
                by_postal.setdefault(postal, []).append(place)
            by_department.setdefault(place.department_code, []).append(place)
        by_code_parent = {p.code: p for p in places}
        for place in places:
            if place.kind == Commune.Kind.ARRONDISSEMENT and place.parent_code in by_code_parent:
                number = re.search(r"\d+", place.name)
                if number:
                    self.arrondissements[(by_code_parent[place.parent_code].key, int(number.group()))] = place

        def ranked(groups):
            return {k: tuple(sorted(v, key=_by_population)) for k, v in groups.items()}

        self.by_name = ranked(by_name)
        self.by_postal = ranked(by_postal)
        self.by_department = ranked(by_department)
        self.names = list(self.by_name)  # for fuzzy matching
        self.names_by_initial: dict[str, list[str]] = {}
        for name in self.names:
            self.names_by_initial.setdefault(name[0], []).append(name)
        self.sorted_names = sorted(self.by_name)  # for prefix search
        self.sorted_big_town_names = sorted({p.key for p in places if p.population >= BIG_TOWN_POPULATION})
        self.sorted_postals = sorted(self.by_postal)
        self.sorted_codes = sorted(self.places)

    def commune(self, place: _Place) -> Commune:
        """A Commune as if read from the database (outline deferred: it loads on first access)."""
        fields = [f.attname for f in Commune._meta.concrete_fields if f.attname in _COMMUNE_ATTRIBUTES]
        values = [getattr(place, _COMMUNE_ATTRIBUTES[name]) for name in fields]
        commune = Commune.from_db("default", fields, values)
        commune.postal_codes = list(place.postal_codes)
        commune.point = Point(place.lon, place.lat, srid=4326)
        return commune

    def names_with_prefix(self, prefix: str) -> list[str]:
        return _with_prefix(self.sorted_names, prefix)

    def big_town_names_with_prefix(self, prefix: str) -> list[str]:
        return _with_prefix(self.sorted_big_town_names, prefix)


def _with_prefix(sorted_names: list[str], prefix: str) -> list[str]:
    start = bisect.bisect_left(sorted_names, prefix)
    end = bisect.bisect_left(sorted_names, prefix + "\uffff")
    return sorted_names[start:end]


def _by_population(place: _Place):
    # Most populous first; the code keeps the order stable.
    return (-place.population, place.code)


_gazetteer: _Gazetteer | None = None
_lock = threading.Lock()


def _load() -> _Gazetteer:
    as_geometry = Cast("point", GeometryField(srid=4326))
    rows = (
        Commune.objects.exclude(point=None)
        .annotate(
            _lon=Func(as_geometry, function="ST_X", output_field=FloatField()),
            _lat=Func(as_geometry, function="ST_Y", output_field=FloatField()),
        )
        .values_list(*_COMMUNE_ATTRIBUTES, "_lon", "_lat")
    )
    places = []
    for code, name, search_name, kind, parent, department, region, postal_codes, population, lon, lat in rows.iterator(
        chunk_size=5000
    ):
        places.append(
            _Place(
                code=code,
                name=name,
                key=search_name or normalize_place_name(name),  # the loader normalised it the same way
                kind=sys.intern(kind),
                parent_code=parent,
                department_code=sys.intern(department),
                region_code=sys.intern(region),
                postal_codes=tuple(sys.intern(p) for p in postal_codes or ()),
                population=population or 0,
                lon=lon,
                lat=lat,
                weight=min(1.0, math.log10((population or 0) + 1) / 6),
            )
        )
    departments = {normalize_place_name(name): code for code, name in Department.objects.values_list("code", "name")}
    return _Gazetteer(places, departments)


def _get_gazetteer() -> _Gazetteer:
    global _gazetteer
    gazetteer = _gazetteer
    if gazetteer is not None:
        return gazetteer
    with _lock:
        if _gazetteer is None:
            loaded = _load()
            if not loaded.places:
                return loaded  # territories not loaded yet: do not cache an empty index
            _gazetteer = loaded
        return _gazetteer


def reset_gazetteer_cache() -> None:
    """Forget the in-memory index (after load_territories, or between tests)."""
    global _gazetteer
    with _lock:
        _gazetteer = None


def warm_up() -> None:
    """Build the index now rather than on the first request."""
    _get_gazetteer()


# --------------------------------------------------------------------------- coordinates

_NUMBER = r"[+-]?\d{1,3}(?:[.,]\d+)?"
_DOT_NUMBER = r"[+-]?\d{1,3}(?:\.\d+)?"
_COORDINATE_CHARS = re.compile(r"[\s\d.,;/+\-°]+")
# "44.84, -0.58" · "44,84 -0,58" · "44,84; -0,58" · "44.84 -0.58"
_PAIR_SPACED = re.compile(rf"({_NUMBER})°?\s*(?:[;/]|,\s|\s)\s*({_NUMBER})°?")
# "44.84,-0.58"
_PAIR_DOT_COMMA = re.compile(rf"({_DOT_NUMBER})°?\s*,\s*({_DOT_NUMBER})°?")
# "44,84,-0,58": four comma-separated integers are two French decimals.
_PAIR_FOUR_PARTS = re.compile(r"([+-]?\d{1,3}),(\d+),([+-]?\d{1,3}),(\d+)")


def parse_lat_lon(text: str) -> Point | None:
    """A point from "lat, lon" text, None when the text is not coordinates.

    Raises GeocodingError for coordinates that cannot be a place in France (out of range,
    swapped, unreadable).
    """
    text = text.strip().replace("\u2212", "-")
    if labelled := re.fullmatch(r"([^()]+?)\s*\([^()]*\)", text):
        text = labelled.group(1)  # our own labels: "44.84000, -0.58000 (Bordeaux)"
    if not text or not _COORDINATE_CHARS.fullmatch(text) or not re.search(r"[.,;/\s]", text):
        return None  # "33000", "2A004" and names are not coordinates
    if re.fullmatch(r"\d[\d\s]*", text) and len(re.sub(r"\s", "", text)) == 5:
        return None  # "33 000" is a postal code
    numbers: tuple[str, str] | None = None
    if (match := _PAIR_SPACED.fullmatch(text)) or (match := _PAIR_DOT_COMMA.fullmatch(text)):
        numbers = (match.group(1), match.group(2))
    elif match := _PAIR_FOUR_PARTS.fullmatch(text):
        numbers = (f"{match.group(1)}.{match.group(2)}", f"{match.group(3)}.{match.group(4)}")
    if numbers is None:
        raise GeocodingError(
            _("« %(text)s » : des coordonnées s'écrivent « latitude, longitude », par exemple « 44.84, -0.58 ».")
            % {"text": text[:60]}
        )
    lat, lon = (float(n.replace(",", ".")) for n in numbers)
    try:
        return validate_lon_lat(lon, lat, require_france=True)
    except CoordinateError as error:
        raise GeocodingError(str(error)) from error


# --------------------------------------------------------------------------- text queries

_ARRONDISSEMENT = re.compile(
    r"(paris|lyon|marseille)\s+(\d{1,2})\s*(?:er|ere|eme|ieme|em|e)?"
    r"(?:\s+(?:arr|arrt|ardt|arrdt|arrondissement))?"
)
_POSTAL = re.compile(r"\d{5}")
_INSEE = re.compile(r"(?:\d{5}|2[ab]\d{3})")
_DEPARTMENT = re.compile(r"(?:\d{2}|2[ab]|97\d)")
# Words that make a text a street address ("12 rue …", "lieu-dit …"), normalised.
_STREET_WORDS_TEXT = (
    "rue r avenue av ave bd boulevard bld chemin che chem allee allees place pl impasse imp route rte quai "
    "cours square passage voie sentier esplanade promenade faubourg fg cite residence res lotissement "
    "hameau lieu dit ld parvis rond point zone za zi zac parc domaine mail traverse venelle montee"
)
_STREET_WORDS = frozenset(_STREET_WORDS_TEXT.split())
_HOUSE_NUMBER = re.compile(r"\d{1,4}(?:[a-z]|bis|ter|quater)?")


def geocode(text: str, *, limit: int = 10) -> list[Candidate]:
    """Ranked candidates for a commune name, postal or INSEE code, arrondissement, address or "lat, lon"."""
    if not isinstance(text, str):
        raise GeocodingError(_("Indiquez une ville, un code postal ou une adresse."))
    text = text.strip()
    if not text:
        raise GeocodingError(_("Indiquez une ville, un code postal ou une adresse."))
    if len(text) > MAX_QUERY_LENGTH:
        raise GeocodingError(_("Le texte est trop long (%(max)s caractères au plus).") % {"max": MAX_QUERY_LENGTH})
    limit = max(1, limit)
    point = parse_lat_lon(text)
    if point is not None:
        return [_exact_point_candidate(point)]
    key = _query_key(text)
    if not key:
        raise GeocodingError(_("« %(text)s » ne ressemble ni à un lieu ni à une adresse.") % {"text": text[:60]})
    gazetteer = _get_gazetteer()
    matches = _match_place_text(gazetteer, text, key)
    if matches is None and _looks_like_address(key):
        return _geocode_address(gazetteer, text, key, limit=limit)
    if matches is None:
        matches = _fuzzy(gazetteer, key, pool=None)
    return _candidates(gazetteer, matches, limit=limit)


def place_geocode(*, text: str, field: str) -> Candidate:
    """The best candidate for a place typed by a person, or ValidationError on `field` (for forms and services)."""
    try:
        candidates = geocode(text, limit=1)
    except GeocodingError as error:
        raise ValidationError({field: [str(error)]}) from error
    if not candidates:
        raise ValidationError({field: [_("Lieu introuvable : « %(text)s ».") % {"text": text[:80]}]})
    return candidates[0]


def geocode_parts(*, address: str = "", postal_code: str = "", commune: str = "", limit: int = 5) -> list[Candidate]:
    """Candidates from an importer's columns: the postal code and commune name narrow each other.

    `address` may end with "…, 33920 Civrac de Blaye"; street addresses go to the BAN when enabled.
    """
    address = _clean(address)
    postal = _clean_postal_code(_clean(postal_code))
    name = _clean(commune)
    if not (address or postal or name):
        raise GeocodingError(_("Ni adresse, ni code postal, ni commune : rien à localiser."))
    limit = max(1, limit)
    gazetteer = _get_gazetteer()
    if address and (not postal or not name):
        found_postal, found_name = _postal_and_name_in_address(address)
        postal = postal or found_postal
        name = name or found_name
    address_key = normalize_place_name(address) if address else ""
    if address_key and _has_street(address_key):
        full = " ".join([address] + [part for part in (postal, name) if part and part not in address])
        ban = _ban_candidates(gazetteer, full, postal=postal, limit=limit)
        if ban:
            return ban
    matches: list[_Match] = []
    if name:
        name_key = _query_key(name)
        if _INSEE.fullmatch(name_key) and name_key.upper() in gazetteer.places:
            matches = [_Match(gazetteer.places[name_key.upper()], SCORE_EXACT)]
        elif name_key and postal:
            matches = _match_name(gazetteer, name_key, postal=postal, department=None)
        elif name_key:
            # "Lyon 7e", "Saint-Denis (93)", "Bordeaux 33000" in a commune column.
            matches = _match_place_text(gazetteer, name, name_key)
            if matches is None:
                matches = _match_name(gazetteer, name_key, postal=None, department=None)
    if not matches and postal:
        matches = _postal_matches(gazetteer, postal)
    if not matches and address_key:
        # No usable postal code or commune column: the address may be a bare place ("Le Taillan", "Gours 33").
        found = _match_place_text(gazetteer, address, address_key)
        if found is None and _looks_like_address(address_key):
            found = _commune_in_address(gazetteer, address_key)
        elif found is None:
            found = _fuzzy(gazetteer, address_key, pool=None)
        matches = [m._replace(score=round(m.score * SCORE_ADDRESS_FALLBACK, 3)) for m in found]
    return _candidates(gazetteer, matches, limit=limit)


def _query_key(text: str) -> str:
    """Normalised text without the noise people add: 'Bordeaux Cedex 9', 'Bordeaux, France', '33 000'."""
    key = normalize_place_name(text)
    key = re.sub(r"(?:^| )cedex(?: \d{1,2})?(?= |$)", "", key)
    key = re.sub(r"(?:^| )france$", "", key).strip()
    key = re.sub(r"(?:^| )(\d{2}) (\d{3})(?= |$)", r" \1\2", key).strip()  # "33 000" is one postal code
    return key


def _clean(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if value.is_integer():
            value = int(value)
    return str(value).strip()


def _clean_postal_code(value: str) -> str:
    """'33920', '33 920', '33920.0', and Excel's '1000' (for 01000) all give a five-digit code."""
    digits = re.sub(r"\s", "", value)
    digits = re.sub(r"\.0+$", "", digits)
    if re.fullmatch(r"\d{4}", digits):
        digits = "0" + digits
    return digits if _POSTAL.fullmatch(digits) else ""


# A match: (place, score, postal code to show in the label or "").
class _Match(NamedTuple):
    place: _Place
    score: float
    postal: str = ""  # postal code shown in the label, when the query named one of the commune's
    precision: str = PRECISION_COMMUNE


def _match_text(gazetteer: _Gazetteer, key: str) -> list[_Match] | None:
    """Exact answers for a normalised query; None when only fuzzy matching could help."""
    if key in gazetteer.by_name:
        return _exact_name_matches(gazetteer, key)
    tokens = key.split()
    if len(tokens) == 1:
        token = tokens[0]
        if _POSTAL.fullmatch(token) or _INSEE.fullmatch(token):
            matches = _postal_matches(gazetteer, token) if _POSTAL.fullmatch(token) else []
            place = gazetteer.places.get(token.upper())
            if place is not None and all(m.place.code != place.code for m in matches):
                # An INSEE code that is also someone's postal code ranks after the postal code.
                matches.append(_Match(place, SCORE_EXACT if not matches else SCORE_INSEE_AFTER_POSTAL))
            return matches
        if token.isdigit():
            return []  # a number that is no code
    if match := _ARRONDISSEMENT.fullmatch(key):
        place = gazetteer.arrondissements.get((match.group(1), int(match.group(2))))
        return [_Match(place, SCORE_EXACT)] if place else []
    if len(tokens) >= 2 and not _has_street(key):
        # "33000 Bordeaux", "Bordeaux 33000", "Saint-Denis 93", "Saint-Denis (974)"
        for code, rest in ((tokens[-1], tokens[:-1]), (tokens[0], tokens[1:])):
            is_postal = bool(_POSTAL.fullmatch(code))
            if not (is_postal or _DEPARTMENT.fullmatch(code)) or not rest:
                continue
            rest_key = normalize_place_name(" ".join(rest))
            if is_postal:
                matches = _match_name(gazetteer, rest_key, postal=code, department=None, fuzzy_anywhere=False)
            else:
                matches = _match_name(gazetteer, rest_key, postal=None, department=code.upper(), fuzzy_anywhere=False)
            if matches:
                return matches
            if is_postal and code in gazetteer.by_postal:
                # "Marcillac 33860": a name unknown in that postal code; the code still places it.
                return [m._replace(score=SCORE_NAME_UNKNOWN) for m in _postal_matches(gazetteer, code)]
            if not is_postal:
                return []  # "Bessan 33": Bessan is in Hérault, and the département was explicit
    return None


_TRAILING_PART = re.compile(r"(?P<name>[^(),]+?)\s*(?:\((?P<paren>[^()]*)\)|,(?P<comma>[^(),]*))\s*")
_COMPASS = frozenset(["nord", "sud", "est", "ouest", "centre"])


def _match_with_department_name(gazetteer: _Gazetteer, text: str) -> list[_Match] | None:
    """'Romagne (Gironde)', 'Sillas (sud-Gironde)', 'Monbahus, Lot-et-Garonne'; None without a département name."""
    match = _TRAILING_PART.fullmatch(text.strip())
    if not match:
        return None
    words = normalize_place_name(match.group("paren") or match.group("comma") or "").split()
    department = gazetteer.departments.get(" ".join(words))
    if department is None and len(words) > 1 and words[0] in _COMPASS:
        department = gazetteer.departments.get(" ".join(words[1:]))
    name_key = _query_key(match.group("name"))
    if department is None or not name_key:
        return None
    return _match_name(gazetteer, name_key, postal=None, department=department, fuzzy_anywhere=False)


def _match_place_text(gazetteer: _Gazetteer, text: str, key: str) -> list[_Match] | None:
    found = _match_with_department_name(gazetteer, text)
    return found if found is not None else _match_text(gazetteer, key)


def _match_name(
    gazetteer: _Gazetteer, key: str, *, postal: str | None, department: str | None, fuzzy_anywhere: bool = True
) -> list[_Match]:
    """A commune name, narrowed by a postal code or a département when given.

    With `fuzzy_anywhere`, a misspelt name whose code matches nothing is still looked for in all of France.
    """
    if postal:
        pool = gazetteer.by_postal.get(postal, ())
        departments = {p.department_code for p in pool} or _departments_of_postal(postal)
    elif department:
        pool = gazetteer.by_department.get(department, ())
        departments = {department}
    else:
        pool, departments = None, set()
    exact = gazetteer.by_name.get(key, ())
    if pool is None:
        if exact:
            return _exact_name_matches(gazetteer, key)
        return _fuzzy(gazetteer, key, pool=None)
    pool_codes = {p.code for p in pool}
    in_pool = [p for p in exact if p.code in pool_codes]
    if in_pool:
        return _prefer_arrondissement(gazetteer, [_Match(p, SCORE_EXACT, postal or "") for p in in_pool], postal)
    in_department = [p for p in exact if p.department_code in departments]
    if in_department:
        # Right name and département, but a postal code the commune does not have (old or mistyped).
        return [_Match(p, SCORE_POSTAL) for p in in_department]
    if pool:
        fuzzy = _fuzzy(gazetteer, key, pool=pool, loose=True)
        if fuzzy:
            return _prefer_arrondissement(gazetteer, [m._replace(postal=postal or "") for m in fuzzy], postal)
        if postal:
            # A known postal code, and a name found nowhere in it: a former commune or a hamlet
            # ("Marcillac", merged into Val-de-Livenne in 2019). The postal code is the better guide.
            return []
    if postal:
        # A postal code we do not know (CEDEX, mistyped): look for the name in its département.
        nearby = [p for d in departments for p in gazetteer.by_department.get(d, ())]
        fuzzy = _fuzzy(gazetteer, key, pool=nearby)
        if fuzzy:
            return fuzzy
    if department:
        return []  # "Bessan 33" is no commune of Gironde (Bessan is in Hérault): the département was explicit
    # The name exists elsewhere: a typo in the postal code is likelier than none.
    if exact:
        return [_Match(p, SCORE_CONFLICT) for p in exact]
    if not fuzzy_anywhere:
        return []
    return [m._replace(score=round(m.score * SCORE_CONFLICT, 3)) for m in _fuzzy(gazetteer, key, pool=None)]


def _departments_of_postal(postal: str) -> set[str]:
    if postal.startswith("20"):
        return {"2A", "2B"}
    if postal.startswith(("97", "98")):
        return {postal[:3]}
    return {postal[:2]}


def _postal_matches(gazetteer: _Gazetteer, postal: str) -> list[_Match]:
    places = gazetteer.by_postal.get(postal, ())
    return _prefer_arrondissement(
        gazetteer, [_Match(p, SCORE_POSTAL, postal, PRECISION_POSTAL_CODE) for p in places], postal
    )


def _prefer_arrondissement(gazetteer: _Gazetteer, matches: list[_Match], postal: str | None) -> list[_Match]:
    """'75011' and 'Paris 75011' mean Paris 11e: an arrondissement replaces its city."""
    if not postal:
        return matches
    result = []
    for match in matches:
        if match.place.kind == Commune.Kind.COMMUNE:
            children = [p for p in gazetteer.by_postal.get(postal, ()) if p.parent_code == match.place.code]
            if children:
                result.extend(match._replace(place=child) for child in children)
                continue
        result.append(match)
    seen, unique = set(), []
    for match in result:
        if match.place.code not in seen:
            seen.add(match.place.code)
            unique.append(match)
    return unique


def _fuzzy(gazetteer: _Gazetteer, key: str, *, pool, loose: bool = False) -> list[_Match]:
    """Prefix and typo-tolerant matches, scored below exact ones.

    `loose` (for the few communes of one postal code or département) also accepts a shortened
    name: "Baignes" for Baignes-Sainte-Radegonde.
    """
    if pool is None:
        # Typos rarely hit the first letter: search names sharing it first (~20× fewer), then all.
        name_lists = [gazetteer.names_by_initial.get(key[0], [])]
        if len(key) >= 5:
            name_lists.append(gazetteer.names)  # then all names, for a typo in the first letter
        cutoff = FUZZY_CUTOFF
    else:
        name_lists = [list({p.key for p in pool})]
        cutoff = FUZZY_CUTOFF_IN_AREA if loose else FUZZY_CUTOFF
    scorer = fuzz.WRatio if loose else fuzz.ratio
    scored: dict[str, float] = {}
    for names in name_lists:
        for name, ratio, _index in process.extract(key, names, scorer=scorer, score_cutoff=cutoff, limit=20):
            scored[name] = ratio / 100
        if scored:
            break
    allowed = {p.code for p in pool} if pool is not None else None
    best: dict[str, _Match] = {}
    for name, similarity in scored.items():
        for place in gazetteer.by_name[name]:
            if allowed is None or place.code in allowed:
                best[place.code] = _Match(place, round(SCORE_FUZZY_MAX * similarity, 3))
    if pool is None and len(key) >= 3:
        # The beginning of a name: "chalons" → Châlons-en-Champagne, "le taillan" → Le Taillan-Médoc,
        # "saint eti" → Saint-Étienne. Whole words typed weigh more than a cut word; bigger towns
        # come first (Châlons-en-Champagne before Chalons-du-Maine).
        prefixed = (
            ((PREFIX_WHOLE_WORDS if name[len(key)] == " " else PREFIX_CUT_WORD) + 0.1 * place.weight, place)
            for name in gazetteer.names_with_prefix(key)
            for place in gazetteer.by_name[name]
        )
        # "mon" begins a thousand names: only the best few can make the list.
        for similarity, place in heapq.nlargest(PREFIX_KEEP, prefixed, key=itemgetter(0)):
            score = round(SCORE_FUZZY_MAX * similarity, 3)
            if place.code not in best or best[place.code].score < score:
                best[place.code] = _Match(place, score)
    return list(best.values())


def _exact_name_matches(gazetteer: _Gazetteer, key: str) -> list[_Match]:
    """Communes with exactly this name, plus far bigger towns whose name begins with it.

    "Aix" is a village of Corrèze, but most people typing it mean Aix-en-Provence: the big town
    comes as a close second (score 0.98) so that the search page asks which one is meant.
    """
    exact = gazetteer.by_name.get(key, ())
    matches = [_Match(p, SCORE_EXACT) for p in exact]
    if exact:
        biggest = max(p.population for p in exact)
        threshold = max(BIG_TOWN_POPULATION, BIG_TOWN_RATIO * biggest)
        bigger = [
            p
            for name in gazetteer.big_town_names_with_prefix(key + " ")
            for p in gazetteer.by_name[name]
            if p.population >= threshold
        ]
        matches += [_Match(p, SCORE_BIG_TOWN_PREFIX) for p in bigger]
    return matches


def _looks_like_address(key: str) -> bool:
    tokens = key.split()
    return len(tokens) >= 2 and (_has_street(key) or bool(_HOUSE_NUMBER.fullmatch(tokens[0])))


def _has_street(key: str) -> bool:
    return any(token in _STREET_WORDS for token in key.split())


def _postal_and_name_in_address(address: str) -> tuple[str, str]:
    """'12 rue X, 33920 Civrac de Blaye' → ('33920', 'Civrac de Blaye')."""
    matches = list(re.finditer(r"(?<!\d)(\d{5}|\d{2}\s\d{3})(?!\d)", address))
    if not matches:
        return "", ""
    last = matches[-1]
    postal = re.sub(r"\s", "", last.group(1))
    after = re.sub(r"\bcedex\b.*$", "", address[last.end() :], flags=re.IGNORECASE).strip(" ,;-")
    if not after:
        # "Civrac de Blaye 33920": the name is the segment before the code.
        before = re.split(r"[,;]", address[: last.start()])[-1].strip(" ,;-")
        after = before if not _has_street(normalize_place_name(before)) else ""
    return postal, after


def _commune_in_address(gazetteer: _Gazetteer, key: str) -> list[_Match]:
    """The longest run of trailing words that names a commune: '3 chemin des vignes merignac' → Mérignac."""
    tokens = key.split()
    for start in range(1, len(tokens)):
        suffix = " ".join(tokens[start:])
        if suffix in gazetteer.by_name and not (start == len(tokens) - 1 and suffix in _STREET_WORDS):
            return [_Match(p, SCORE_ADDRESS_FALLBACK) for p in gazetteer.by_name[suffix]]
    return []


def _geocode_address(gazetteer: _Gazetteer, text: str, key: str, *, limit: int) -> list[Candidate]:
    postal, name = _postal_and_name_in_address(text)
    ban = _ban_candidates(gazetteer, text, postal=postal, limit=limit)
    if ban:
        return ban
    matches: list[_Match] = []
    if name:
        name_key = _query_key(name)
        matches = _match_name(gazetteer, name_key, postal=postal or None, department=None) if name_key else []
    if not matches and postal:
        matches = _postal_matches(gazetteer, postal)
    if not matches:
        matches = _commune_in_address(gazetteer, key)
    matches = [m._replace(score=round(m.score * SCORE_ADDRESS_FALLBACK, 3)) for m in matches]
    return _candidates(gazetteer, matches, limit=limit)


def _ban_candidates(gazetteer: _Gazetteer, text: str, *, postal: str, limit: int) -> list[Candidate]:
    """BAN results when the adapter is enabled and answers; [] otherwise (the gazetteer takes over)."""
    if not getattr(settings, "GEOCODER_BAN_ENABLED", False):
        return []
    from . import ban  # imported lazily: most deployments never call it

    try:
        results = ban.ban_search(query=text, limit=limit, postcode=postal)
    except ban.BanError as error:
        logger.warning("BAN geocoder unavailable, falling back to the gazetteer: %s", error)
        return []
    candidates = []
    for result in results:
        if result.score < BAN_MIN_SCORE:
            continue  # the BAN always answers something; a weak guess is worse than the commune
        place = gazetteer.places.get(result.citycode)
        try:
            point = validate_lon_lat(result.lon, result.lat)
        except CoordinateError:
            logger.warning("BAN returned an invalid point for %r: %s, %s", text, result.lon, result.lat)
            continue
        candidates.append(
            Candidate(
                label=result.label,
                point=point,
                commune=gazetteer.commune(place) if place else None,
                precision=ban.PRECISION_BY_TYPE.get(result.type, PRECISION_COMMUNE),
                score=max(0.0, min(1.0, result.score)),
            )
        )
    candidates.sort(key=lambda c: -c.score)
    return candidates[:limit]


def _candidates(gazetteer: _Gazetteer, matches: list[_Match] | None, *, limit: int) -> list[Candidate]:
    best: dict[str, _Match] = {}
    for match in matches or ():
        kept = best.get(match.place.code)
        if kept is None or match.score > kept.score:
            best[match.place.code] = match
    ranked = sorted(best.values(), key=lambda m: (-m.score, -m.place.population, m.place.code))[:limit]
    return [
        Candidate(
            label=_label(match.place, match.postal),
            point=Point(match.place.lon, match.place.lat, srid=4326),
            commune=gazetteer.commune(match.place),
            precision=match.precision,
            score=match.score,
        )
        for match in ranked
    ]


def _label(place: _Place, postal: str) -> str:
    shown = postal or (place.postal_codes[0] if place.postal_codes else place.department_code)
    return f"{place.name} ({shown})"


def _exact_point_candidate(point: Point) -> Candidate:
    from .selectors import commune_at_point

    commune = commune_at_point(point=point)
    label = f"{point.y:.5f}, {point.x:.5f}"
    if commune is not None:
        label = f"{label} ({commune.name})"
    return Candidate(label=label, point=point, commune=commune, precision=PRECISION_EXACT, score=SCORE_EXACT)


# --------------------------------------------------------------------------- commune search (API, autocomplete)


def commune_codes_matching(query: str, *, limit: int = 1000) -> list[str]:
    """INSEE codes of communes whose name, postal code or INSEE code starts with `query`, best first.

    Exact names first, then names starting with the query, most populous first; digits match
    postal codes and INSEE codes by prefix.
    """
    gazetteer = _get_gazetteer()
    raw = query.strip()
    compact = re.sub(r"\s", "", raw).upper()
    codes: list[str] = []
    seen: set[str] = set()

    def add(places):
        for place in places:
            if place.code not in seen:
                seen.add(place.code)
                codes.append(place.code)

    if re.fullmatch(r"\d{1,5}|2[AB]\d{0,3}", compact):
        found: list[_Place] = []
        if compact.isdigit():
            start = bisect.bisect_left(gazetteer.sorted_postals, compact)
            for postal in gazetteer.sorted_postals[start:]:
                if not postal.startswith(compact):
                    break
                found.extend(gazetteer.by_postal[postal])
        start = bisect.bisect_left(gazetteer.sorted_codes, compact)
        for code in gazetteer.sorted_codes[start:]:
            if not code.startswith(compact):
                break
            found.append(gazetteer.places[code])
        exact = [p for p in found if p.code == compact or compact in p.postal_codes]
        add(sorted(exact, key=_by_population))
        add(sorted(found, key=_by_population))
        return codes[:limit]
    key = normalize_place_name(raw)
    if not key:
        return []
    add(gazetteer.by_name.get(key, ()))
    prefixed = [p for name in gazetteer.names_with_prefix(key) for p in gazetteer.by_name[name]]
    add(sorted(prefixed, key=_by_population))
    if not codes and len(key) >= 3:
        fuzzy = sorted(_fuzzy(gazetteer, key, pool=None), key=lambda m: (-m.score, -m.place.population))
        add(m.place for m in fuzzy)
    return codes[:limit]
