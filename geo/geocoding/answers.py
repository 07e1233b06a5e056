"""What geocoding answers: `Candidate`s with a precision and a score, or a `GeocodingError`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.contrib.gis.geos import Point

from geo.models import Commune

if TYPE_CHECKING:
    from .gazetteer import _Gazetteer, _Place
    from .names import _Match


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
    from geo.selectors import commune_at_point

    commune = commune_at_point(point=point)
    label = f"{point.y:.5f}, {point.x:.5f}"
    if commune is not None:
        label = f"{label} ({commune.name})"
    return Candidate(label=label, point=point, commune=commune, precision=PRECISION_EXACT, score=SCORE_EXACT)
