"""Offline geocoding: France's communes as an in-memory gazetteer, plus an optional BAN adapter.

`geocode("mérignac")`, `geocode("33000")`, `geocode("Lyon 7e")`, `geocode("44.84, -0.58")` and
`geocode_parts(postal_code="33920", commune="Civrac de Blaye")` return ranked `Candidate`s.
The gazetteer is built once per process from the `Commune` table (about 35k rows, under a second,
~20 MB) and answers in well under a millisecond for exact matches, a few milliseconds with typos.

Modules: `answers` (Candidate, precisions, scores), `gazetteer` (the in-memory communes),
`lat_lon` (coordinates typed as text), `names` (matching names, codes and addresses),
`lookup` (the entry points below).
"""

from .answers import (
    MAX_QUERY_LENGTH,
    PRECISION_ADDRESS,
    PRECISION_COMMUNE,
    PRECISION_EXACT,
    PRECISION_POSTAL_CODE,
    PRECISION_STREET,
    Candidate,
    GeocodingError,
)
from .gazetteer import reset_gazetteer_cache, warm_up
from .lat_lon import parse_lat_lon
from .lookup import commune_codes_matching, geocode, geocode_parts, place_geocode

__all__ = [
    "MAX_QUERY_LENGTH",
    "PRECISION_ADDRESS",
    "PRECISION_COMMUNE",
    "PRECISION_EXACT",
    "PRECISION_POSTAL_CODE",
    "PRECISION_STREET",
    "Candidate",
    "GeocodingError",
    "commune_codes_matching",
    "geocode",
    "geocode_parts",
    "place_geocode",
    "parse_lat_lon",
    "reset_gazetteer_cache",
    "warm_up",
]
