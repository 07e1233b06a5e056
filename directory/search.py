"""Search parameters shared by the search pages and the API: parsing, limits, French messages.

Every parser takes the raw text of one query parameter and returns a clean value, or raises
`SearchParameterError` whose message says what is wrong, for a person (in French).
`parse_search_params` reads a whole query string and collects the errors by parameter name,
ready to become a 400 body such as `{"near": ["la latitude doit être comprise entre -90 et 90"]}`.
"""

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field

from django.contrib.gis.geos import Point
from django.utils.translation import gettext as _

from geo.coordinates import CoordinateError, parse_number, validate_lon_lat

from .models import Network, ProductCategory

MAX_LIMIT = 100  # page size cap: a page never holds more than this many AMAPs or farms
DEFAULT_LIMIT = 10
MAX_OFFSET = 1_000  # a deep page of a nearest search costs its whole depth; past this, narrow with bbox
MAX_RADIUS_KM = 500.0
MAX_BBOX_SPAN_DEG = 20.0  # mainland France spans about 15.5° of longitude and 10° of latitude
MAX_PRODUCTS = 10
MAX_TEXT = 200  # longer raw values are refused before any parsing

_TRUE = {"true", "1", "oui", "yes", "on"}
_FALSE = {"false", "0", "non", "no", "off"}


class SearchParameterError(ValueError):
    """One bad query parameter; the message is for people."""


def _text(value) -> str:
    text = "" if value is None else str(value).strip()
    if len(text) > MAX_TEXT:
        raise SearchParameterError(_("valeur trop longue (%(max)s caractères au plus)") % {"max": MAX_TEXT})
    # Control characters (NUL above all) never belong in a parameter and PostgreSQL refuses NUL.
    if any(unicodedata.category(char) == "Cc" for char in text):
        raise SearchParameterError(_("caractère de contrôle interdit"))
    return text


def parse_near(value) -> Point:
    """`<lon>,<lat>` in WGS84 degrees (decimal point), in France or its overseas territories."""
    parts = _text(value).split(",")
    if len(parts) != 2:
        raise SearchParameterError(_("attendu « longitude,latitude », par exemple « -0.5792,44.8378 »"))
    try:
        lon, lat = (parse_number(part) for part in parts)
        return validate_lon_lat(lon, lat, require_france=True)
    except CoordinateError as error:
        raise SearchParameterError(str(error)) from None


def parse_bbox(value) -> tuple[float, float, float, float]:
    """`<minlon>,<minlat>,<maxlon>,<maxlat>`: a lon/lat rectangle no wider than MAX_BBOX_SPAN_DEG."""
    parts = _text(value).split(",")
    if len(parts) != 4:
        raise SearchParameterError(_("attendu « minlon,minlat,maxlon,maxlat », par exemple « -1,44,0,45 »"))
    try:
        min_lon, min_lat, max_lon, max_lat = (parse_number(part) for part in parts)
        validate_lon_lat(min_lon, min_lat)
        validate_lon_lat(max_lon, max_lat)
    except CoordinateError as error:
        raise SearchParameterError(str(error)) from None
    if min_lon >= max_lon or min_lat >= max_lat:
        raise SearchParameterError(_("rectangle inversé ou vide : il faut minlon < maxlon et minlat < maxlat"))
    if max_lon - min_lon > MAX_BBOX_SPAN_DEG or max_lat - min_lat > MAX_BBOX_SPAN_DEG:
        raise SearchParameterError(
            _("rectangle trop grand : %(max)s degrés au plus de côté") % {"max": int(MAX_BBOX_SPAN_DEG)}
        )
    return (min_lon, min_lat, max_lon, max_lat)


def parse_radius_km(value) -> float:
    """A search radius in kilometres, above 0 and at most MAX_RADIUS_KM."""
    try:
        radius = parse_number(_text(value))
    except CoordinateError as error:
        raise SearchParameterError(str(error)) from None
    if radius <= 0:
        raise SearchParameterError(_("le rayon doit être positif"))
    if radius > MAX_RADIUS_KM:
        raise SearchParameterError(_("le rayon ne peut dépasser %(max)s km") % {"max": int(MAX_RADIUS_KM)})
    return radius


def _parse_int(value, *, minimum: int, maximum: int, message: str) -> int:
    text = _text(value)
    if not re.fullmatch(r"[+-]?\d{1,9}", text):
        raise SearchParameterError(_("« %(value)s » n'est pas un nombre entier") % {"value": text})
    number = int(text)
    if not minimum <= number <= maximum:
        raise SearchParameterError(message)
    return number


def parse_weekday(value) -> int:
    """ISO weekday: 1 = lundi … 7 = dimanche."""
    return _parse_int(
        value, minimum=1, maximum=7, message=_("le jour doit être compris entre 1 (lundi) et 7 (dimanche)")
    )


def parse_limit(value, *, maximum: int = MAX_LIMIT) -> int:
    return _parse_int(
        value,
        minimum=1,
        maximum=maximum,
        message=_("le nombre de résultats doit être compris entre 1 et %(max)s") % {"max": maximum},
    )


def parse_offset(value) -> int:
    return _parse_int(
        value,
        minimum=0,
        maximum=MAX_OFFSET,
        message=_("le décalage doit être compris entre 0 et %(max)s") % {"max": MAX_OFFSET},
    )


def parse_accepting(value) -> bool:
    text = _text(value).lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise SearchParameterError(_("attendu « true » ou « false »"))


def parse_products(value) -> list[str]:
    """Comma-separated product category slugs, each one known (at most MAX_PRODUCTS)."""
    slugs = list(dict.fromkeys(part.strip().lower() for part in _text(value).split(",") if part.strip()))
    if not slugs:
        raise SearchParameterError(_("aucun produit indiqué"))
    if len(slugs) > MAX_PRODUCTS:
        raise SearchParameterError(_("%(max)s produits au plus") % {"max": MAX_PRODUCTS})
    known = set(ProductCategory.objects.filter(slug__in=slugs).values_list("slug", flat=True))
    unknown = [slug for slug in slugs if slug not in known]
    if unknown:
        raise SearchParameterError(_("produit inconnu : %(slugs)s") % {"slugs": ", ".join(unknown)})
    return slugs


def parse_network(value) -> str:
    """The slug of a known network."""
    slug = _text(value).lower()
    if not slug:
        raise SearchParameterError(_("aucun réseau indiqué"))
    if not Network.objects.filter(slug=slug).exists():
        raise SearchParameterError(_("réseau inconnu : %(slug)s") % {"slug": slug})
    return slug


@dataclass(frozen=True)
class SearchParams:
    """A validated search; the keyword arguments of `amaps_near` / `farms_near` and their page."""

    near: Point | None = None
    radius_km: float | None = None
    bbox: tuple[float, float, float, float] | None = None
    products: list[str] | None = None
    weekday: int | None = None
    accepting: bool | None = None
    network: str | None = None
    limit: int = DEFAULT_LIMIT
    offset: int = 0
    errors: dict[str, list[str]] = field(default_factory=dict)

    def filters(self) -> dict:
        """Keyword arguments for the selectors, without the point and the page."""
        return {
            "radius_km": self.radius_km,
            "bbox": self.bbox,
            "products": self.products,
            "weekday": self.weekday,
            "accepting": self.accepting,
            "network": self.network,
        }


PARSERS = {
    "near": parse_near,
    "radius_km": parse_radius_km,
    "bbox": parse_bbox,
    "products": parse_products,
    "weekday": parse_weekday,
    "accepting": parse_accepting,
    "network": parse_network,
    "limit": parse_limit,
    "offset": parse_offset,
}
AMAP_PARAMETERS = ("near", "radius_km", "bbox", "products", "weekday", "accepting", "network", "limit", "offset")
FARM_PARAMETERS = ("near", "radius_km", "bbox", "products", "network", "limit", "offset")


# Numbers and yes/no: an empty value says nothing (`?limit=`), which the API answers with a 400.
VALUED_PARAMETERS = frozenset({"radius_km", "weekday", "accepting", "limit", "offset"})


def parse_search_params(
    query: Mapping, *, allowed: tuple[str, ...] = tuple(PARSERS), empty_means_absent: bool = True
) -> SearchParams:
    """Parse the parameters named in `allowed` from a query string (QueryDict or dict).

    Absent parameters keep their defaults; so do empty ones when `empty_means_absent` (a page's
    form sends its blank fields), else an empty number or yes/no is an error (the API, whose
    schema says "integer"). Errors are collected, not raised: `params.errors` maps each bad
    parameter to its messages.
    """
    values: dict = {}
    errors: dict[str, list[str]] = {}
    for name in allowed:
        raw = query.get(name)
        if raw is None:
            continue
        if isinstance(raw, str) and raw.strip() == "":
            if not empty_means_absent and name in VALUED_PARAMETERS:
                errors[name] = [_("valeur vide : donnez une valeur ou retirez le paramètre")]
            continue
        try:
            values[name] = PARSERS[name](raw)
        except SearchParameterError as error:
            errors[name] = [str(error)]
    if "radius_km" in values and "near" not in values and "near" not in errors:
        errors["radius_km"] = [_("un rayon demande un point de départ (paramètre near)")]
    return SearchParams(**values, errors=errors)
