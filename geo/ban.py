"""Optional adapter for the Base Adresse Nationale search API (api-adresse.data.gouv.fr).

Used by `geo.geocoding` for street addresses when `settings.GEOCODER_BAN_ENABLED`; any
failure raises `BanError`, and the caller falls back to the offline gazetteer.
"""

from __future__ import annotations

import http.client
import json
import math
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from django.conf import settings

# BAN result type → directory.models.LocationPrecision value.
PRECISION_BY_TYPE = {
    "housenumber": "address",
    "street": "street",
    "locality": "street",
    "municipality": "commune",
}

MAX_RESPONSE_BYTES = 1_000_000


class BanError(Exception):
    """The BAN could not answer (network, HTTP status, malformed JSON)."""


@dataclass(frozen=True)
class BanResult:
    label: str
    lon: float
    lat: float
    score: float
    type: str
    citycode: str
    postcode: str
    city: str


def ban_search(*, query: str, limit: int = 5, postcode: str = "", timeout: float | None = None) -> list[BanResult]:
    """Search the BAN; raises BanError on any network, HTTP or format problem."""
    params = {"q": query[:200], "limit": str(limit)}
    if postcode:
        params["postcode"] = postcode
    base = settings.GEOCODER_BAN_URL.rstrip("/")
    url = f"{base}/search/?{urllib.parse.urlencode(params)}"
    if not url.startswith(("http://", "https://")):
        raise BanError(f"unsupported URL scheme in GEOCODER_BAN_URL: {base!r}")
    timeout = settings.GEOCODER_BAN_TIMEOUT if timeout is None else timeout
    request = urllib.request.Request(url, headers={"Accept": "application/json", "User-Agent": "amap-atlas"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (scheme checked above)
            body = response.read(MAX_RESPONSE_BYTES + 1)
    # HTTPError is a URLError; timeouts and resets are OSError; a cut-off body is an HTTPException.
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as error:
        raise BanError(f"BAN request failed: {error}") from error
    if len(body) > MAX_RESPONSE_BYTES:
        raise BanError("BAN answer too large")
    try:
        payload = json.loads(body.decode("utf-8"))
        return [_result(feature) for feature in payload["features"]]
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError, IndexError) as error:
        raise BanError(f"malformed BAN answer: {error!r}") from error


def _result(feature: dict) -> BanResult:
    properties = feature["properties"]
    lon, lat = (float(v) for v in feature["geometry"]["coordinates"][:2])
    score = float(properties.get("score", 0.0))
    if not (math.isfinite(lon) and math.isfinite(lat) and math.isfinite(score)):
        raise ValueError("non-finite number in BAN feature")
    return BanResult(
        label=str(properties["label"]),
        lon=lon,
        lat=lat,
        score=score,
        type=str(properties.get("type", "")),
        citycode=str(properties.get("citycode", "")),
        postcode=str(properties.get("postcode", "")),
        city=str(properties.get("city", "")),
    )
