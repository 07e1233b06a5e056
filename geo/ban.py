"""Adapter for the Base Adresse Nationale search API (api-adresse.data.gouv.fr, or a self-hosted Addok).

Used by `geo.geocoding` for street addresses when `settings.GEOCODER_BAN_ENABLED` (the default);
any failure raises `BanError`, and the caller falls back to the offline gazetteer. A server that
cannot reach the service pays for it once: the first failure pauses the adapter for
`GEOCODER_BAN_RETRY_AFTER` seconds (a flag in the Django cache), during which `ban_search` raises
`BanPaused` without sending anything.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import math
import threading
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

# BAN result type → directory.models.LocationPrecision value.
PRECISION_BY_TYPE = {
    "housenumber": "address",
    "street": "street",
    "locality": "street",
    "municipality": "commune",
}

MAX_RESPONSE_BYTES = 1_000_000
# A refused query (400: too short, bad parameter) says nothing about the service; these do.
_STATUSES_OF_A_SERVICE_IN_TROUBLE = {408, 429}


class BanError(Exception):
    """The BAN could not answer (network, HTTP status, malformed JSON).

    `unavailable` is False when only this query was refused (HTTP 4xx): the service itself works.
    """

    def __init__(self, message: str, *, unavailable: bool = True):
        super().__init__(message)
        self.unavailable = unavailable


class BanPaused(BanError):
    """The service failed a moment ago: no request is sent until the pause ends."""


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
    """Search the BAN; raises BanError on any network, HTTP or format problem, BanPaused while paused."""
    params = {"q": query[:200], "limit": str(limit)}
    if postcode:
        params["postcode"] = postcode
    base = settings.GEOCODER_BAN_URL.rstrip("/")
    url = f"{base}/search/?{urllib.parse.urlencode(params)}"
    if not url.startswith(("http://", "https://")):
        raise BanError(f"unsupported URL scheme in GEOCODER_BAN_URL: {base!r}", unavailable=False)
    if ban_is_paused():
        raise BanPaused(f"{base} failed less than {settings.GEOCODER_BAN_RETRY_AFTER} s ago")
    timeout = settings.GEOCODER_BAN_TIMEOUT if timeout is None else timeout
    try:
        body = _fetch_within(url, timeout)
        return _parse(body)
    except BanError as error:
        if error.unavailable:
            _pause(base)
        raise


def ban_is_paused() -> bool:
    """True while the service of GEOCODER_BAN_URL is paused after a failure."""
    return bool(cache.get(_pause_key(settings.GEOCODER_BAN_URL.rstrip("/"))))


def _pause(base: str) -> None:
    if settings.GEOCODER_BAN_RETRY_AFTER > 0:
        cache.set(_pause_key(base), True, timeout=settings.GEOCODER_BAN_RETRY_AFTER)


def _pause_key(base: str) -> str:
    # One flag per URL: pointing GEOCODER_BAN_URL elsewhere (a self-hosted Addok) starts afresh.
    return "geo:ban:paused:" + hashlib.sha256(base.encode()).hexdigest()[:16]


_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _fetch_within(url: str, timeout: float) -> bytes:
    """The answer's body, or BanError after `timeout` seconds whatever hangs.

    urllib's timeout bounds each socket operation but not the DNS lookup, which can hang for
    seconds on a machine without Internet: the request runs in a thread and is abandoned at the deadline.
    """
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="ban")
    future = _executor.submit(_fetch, url, timeout)
    try:
        return future.result(timeout=timeout)
    except FutureTimeout as error:
        future.cancel()
        raise BanError(f"BAN did not answer within {timeout} s") from error


def _fetch(url: str, timeout: float) -> bytes:
    request = urllib.request.Request(url, headers={"Accept": "application/json", "User-Agent": "amap-atlas"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (scheme checked by the caller)
            body = response.read(MAX_RESPONSE_BYTES + 1)
    except urllib.error.HTTPError as error:
        trouble = error.code >= 500 or error.code in _STATUSES_OF_A_SERVICE_IN_TROUBLE
        raise BanError(f"BAN request failed: {error}", unavailable=trouble) from error
    # Timeouts and resets are OSError (URLError is one); a cut-off body is an HTTPException.
    except (OSError, ValueError, http.client.HTTPException) as error:
        raise BanError(f"BAN request failed: {error}") from error
    if len(body) > MAX_RESPONSE_BYTES:
        raise BanError("BAN answer too large")
    return body


def _parse(body: bytes) -> list[BanResult]:
    # A captive portal or a maintenance page answers 200 with HTML: the service is not there.
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
