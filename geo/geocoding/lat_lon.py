"""Coordinates typed as text: "44.84, -0.58", "44,84 -0,58", "44.84,-0.58"."""

from __future__ import annotations

import re

from django.contrib.gis.geos import Point
from django.utils.translation import gettext as _

from geo.coordinates import CoordinateError, validate_lon_lat

from .answers import GeocodingError

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
