"""Distances as people read them, in French: one rule for every page, popup and reason.

190 m, 1,2 km, 12 km: metres rounded to the ten under 1 km, one decimal (comma) under 10 km,
whole kilometres beyond; always rounded half up, never cut (186.6 m is « 190 m », not
« 0,1 km »). `maps/static/maps/atlas-map.js` (`formatDistance`) applies the same rule to the
same float arithmetic, so a list and its map popup always agree (a browser test compares them).

A distance is first reduced to an integer *code*, equal codes giving equal text (the matching
engine states a million distances and formats each code once):
  0              under 10 m
  1 … 99         tens of metres (10 m … 990 m)
  110 … 199      100 + tenths of a kilometre (1,0 km … 9,9 km)
  1000 + n       n whole kilometres (10 km and beyond)
"""

from __future__ import annotations

import math

from django.utils.translation import gettext as _

UNDER_10_M = 0
TENTHS_BASE = 100
KM_BASE = 1000


def _half_up(value: float) -> int:
    return math.floor(value + 0.5)


def distance_code(metres: float) -> int:
    """The displayed distance of `metres` as an integer (see the module's table)."""
    if metres < 10:
        return UNDER_10_M
    tens = _half_up(metres / 10)
    if tens < 100:
        return tens
    tenths = _half_up(metres / 100)
    if tenths < 100:
        return TENTHS_BASE + tenths
    return KM_BASE + _half_up(metres / 1000)


def distance_code_text(code: int) -> str:
    """'moins de 10 m', '190 m', '1,2 km', '12 km'."""
    if code <= UNDER_10_M:
        return _("moins de 10 m")
    if code < TENTHS_BASE:
        return _("%(n)s m") % {"n": code * 10}
    if code < KM_BASE:
        tenths = code - TENTHS_BASE
        return _("%(n)s km") % {"n": f"{tenths // 10},{tenths % 10}"}
    return _("%(n)s km") % {"n": f"{code - KM_BASE:,}".replace(",", "\u202f")}


def format_distance(metres) -> str:
    """Metres (a number or a Distance) as French text: 186.6 → '190 m', 1234 → '1,2 km', 12400 → '12 km'."""
    if metres is None:
        return ""
    value = float(getattr(metres, "m", metres))
    if math.isnan(value):
        return ""
    return distance_code_text(distance_code(value))
