"""The entry points: `geocode(text)`, `geocode_parts(...)` (importers) and `commune_codes_matching`
(API, autocomplete); street addresses go to the BAN (or a self-hosted Addok) when it is enabled."""

from __future__ import annotations

import bisect
import logging
import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from geo.coordinates import CoordinateError, validate_lon_lat
from geo.text import normalize_place_name

from .answers import (
    BAN_MIN_SCORE,
    MAX_QUERY_LENGTH,
    PRECISION_COMMUNE,
    SCORE_ADDRESS_FALLBACK,
    SCORE_EXACT,
    Candidate,
    GeocodingError,
    _candidates,
    _exact_point_candidate,
)
from .gazetteer import _by_population, _Gazetteer, _get_gazetteer, _Place
from .lat_lon import parse_lat_lon
from .names import (
    _INSEE,
    _clean,
    _clean_postal_code,
    _commune_in_address,
    _fuzzy,
    _has_street,
    _looks_like_address,
    _Match,
    _match_name,
    _match_place_text,
    _postal_and_name_in_address,
    _postal_matches,
    _query_key,
)

logger = logging.getLogger(__name__)


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
    if not settings.GEOCODER_BAN_ENABLED:
        return []
    from geo import ban  # imported lazily: commune names and postal codes never need it

    try:
        results = ban.ban_search(query=text, limit=limit, postcode=postal)
    except ban.BanPaused:
        return []  # said once, when the pause began
    except ban.BanError as error:
        if error.unavailable:
            logger.warning(
                "BAN geocoder unavailable, falling back to the gazetteer (next try in %s s): %s",
                settings.GEOCODER_BAN_RETRY_AFTER,
                error,
            )
        else:
            # Not the query itself: a visitor's address has no place in the logs.
            logger.warning("BAN geocoder refused a query, falling back to the gazetteer: %s", error)
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


def place_geocode(*, text: str, field: str) -> Candidate:
    """The best candidate for a place typed by a person, or ValidationError on `field` (for forms and services)."""
    try:
        candidates = geocode(text, limit=1)
    except GeocodingError as error:
        raise ValidationError({field: [str(error)]}) from error
    if not candidates:
        raise ValidationError({field: [_("Lieu introuvable : « %(text)s ».") % {"text": text[:80]}]})
    return candidates[0]
