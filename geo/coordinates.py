"""Coordinate checks done before PostGIS sees a value (geography silently wraps lon 181)."""

import math
import re

from django.contrib.gis.geos import Point
from django.utils.translation import gettext as _

from geo.sphere import GEOD

# Mainland France with Corsica, then each overseas territory: (min_lon, min_lat, max_lon, max_lat).
FRANCE_BOXES: dict[str, tuple[float, float, float, float]] = {
    "metropole": (-5.6, 41.2, 9.9, 51.3),
    "guadeloupe": (-61.95, 15.8, -60.95, 16.6),
    "martinique": (-61.3, 14.35, -60.75, 14.9),
    "guyane": (-54.7, 2.0, -51.5, 5.9),
    "reunion": (55.15, -21.45, 55.9, -20.8),
    "mayotte": (44.9, -13.1, 45.35, -12.55),
    "saint_pierre_miquelon": (-56.5, 46.7, -56.1, 47.2),
    "saint_barthelemy_saint_martin": (-63.2, 17.85, -62.75, 18.15),
}


class CoordinateError(ValueError):
    """A coordinate pair that cannot be a place in France; the message is for people."""


def in_france(lon: float, lat: float) -> bool:
    return any(a <= lon <= c and b <= lat <= d for a, b, c, d in FRANCE_BOXES.values())


def parse_number(value) -> float:
    """A float from a number or a French-style string ("44,83"); raises CoordinateError."""
    if isinstance(value, (int, float)):
        number = float(value)
    else:
        text = str(value).strip().replace(",", ".").replace("\u2212", "-")
        if not re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", text):
            raise CoordinateError(_("« %(value)s » n'est pas un nombre") % {"value": value})
        number = float(text)
    if not math.isfinite(number):
        raise CoordinateError(_("« %(value)s » n'est pas un nombre fini") % {"value": value})
    return number


def validate_lon_lat(lon: float, lat: float, *, require_france: bool = False) -> Point:
    """A WGS84 point from longitude/latitude, or CoordinateError saying what is wrong."""
    for value in (lon, lat):
        if not math.isfinite(value):
            raise CoordinateError(_("coordonnée non finie (NaN ou infini)"))
    if not -90.0 <= lat <= 90.0:
        raise CoordinateError(_("la latitude doit être comprise entre -90 et 90 (reçu %(lat)s)") % {"lat": lat})
    if not -180.0 <= lon <= 180.0:
        raise CoordinateError(_("la longitude doit être comprise entre -180 et 180 (reçu %(lon)s)") % {"lon": lon})
    if require_france and not in_france(lon, lat):
        if in_france(lat, lon):
            raise CoordinateError(
                _("latitude et longitude semblent inversées (%(lat)s, %(lon)s)") % {"lat": lat, "lon": lon}
            )
        raise CoordinateError(
            _("le point (%(lat)s, %(lon)s) est hors de France et des territoires d'outre-mer")
            % {"lat": lat, "lon": lon}
        )
    return Point(lon, lat, srid=4326)


def geodesic_distance_m(a: Point, b: Point) -> float:
    """True distance in metres on the WGS84 ellipsoid."""
    _fwd, _back, distance = GEOD.inv(a.x, a.y, b.x, b.y)
    return float(distance)
