"""Drive time between an annonce's point and its matches.

By default an *estimate*: geodesic distance × a circuity factor ÷ an average speed
(`ROUTING_CIRCUITY_FACTOR`, `ROUTING_SPEED_KMH`), always labelled as such. With
`ROUTING_BACKEND = "osrm"` the times come from an OSRM-compatible server's table service
(`ROUTING_OSRM_URL`); when it is unreachable, slow or answers nonsense, the estimate is used
for the affected rows and the answer says so.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import requests
from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

logger = logging.getLogger(__name__)

SOURCE_ESTIMATE = "estimation"
SOURCE_OSRM = "osrm"
OSRM_MAX_DESTINATIONS = 99  # OSRM's default --max-table-size is 100 coordinates


@dataclass(frozen=True)
class DriveTime:
    minutes: float
    source: str  # SOURCE_ESTIMATE or SOURCE_OSRM

    @property
    def is_estimate(self) -> bool:
        return self.source == SOURCE_ESTIMATE


def estimate_minutes(distance_m: float) -> float:
    """Geodesic metres → estimated minutes of driving (a straight line is never the road)."""
    circuity = float(getattr(settings, "ROUTING_CIRCUITY_FACTOR", 1.3))
    speed_kmh = float(getattr(settings, "ROUTING_SPEED_KMH", 60.0))
    return distance_m / 1000.0 * circuity / speed_kmh * 60.0


def estimate(distance_m: float) -> DriveTime:
    return DriveTime(minutes=round(estimate_minutes(distance_m), 1), source=SOURCE_ESTIMATE)


def _osrm_durations(origin: tuple[float, float], destinations: list[tuple[float, float]]) -> list[float | None]:
    """Seconds from origin to each destination (None where OSRM has no route)."""
    base = settings.ROUTING_OSRM_URL.rstrip("/")
    profile = getattr(settings, "ROUTING_OSRM_PROFILE", "driving")
    coordinates = ";".join(f"{lon:.6f},{lat:.6f}" for lon, lat in [origin, *destinations])
    response = requests.get(
        f"{base}/table/v1/{profile}/{coordinates}",
        params={"sources": "0", "annotations": "duration"},
        timeout=float(getattr(settings, "ROUTING_TIMEOUT", 2.0)),
    )
    response.raise_for_status()
    payload = response.json()
    if payload.get("code") != "Ok":
        raise ValueError(f"OSRM answered {payload.get('code')!r}")
    row = payload["durations"][0]
    if len(row) != len(destinations) + 1:
        raise ValueError(f"OSRM table has {len(row)} columns for {len(destinations)} destinations")
    return [None if value is None else float(value) for value in row[1:]]


def drive_times(
    *, origin: tuple[float, float], destinations: list[tuple[float, float]], distances_m: list[float]
) -> list[DriveTime]:
    """One DriveTime per destination (lon, lat), in order; never raises for a routing failure."""
    estimates = [estimate(d) for d in distances_m]
    if getattr(settings, "ROUTING_BACKEND", "estimate") != "osrm" or not destinations:
        return estimates
    result = list(estimates)
    for start in range(0, len(destinations), OSRM_MAX_DESTINATIONS):
        chunk = destinations[start : start + OSRM_MAX_DESTINATIONS]
        try:
            seconds = _osrm_durations(origin, chunk)
        except (requests.RequestException, ValueError, KeyError, IndexError, TypeError) as error:
            logger.warning("routing service unavailable, using estimates: %s", error)
            return result
        for offset, value in enumerate(seconds):
            if value is not None and math.isfinite(value) and value >= 0:
                result[start + offset] = DriveTime(minutes=round(value / 60.0, 1), source=SOURCE_OSRM)
    return result


ESTIMATED = gettext_noop("environ %(min)s min de route (estimation)")
ROUTED = gettext_noop("%(min)s min de route (itinéraire calculé)")


def describe(drive: DriveTime, cache: dict | None = None) -> str:
    """'environ 18 min de route (estimation)' / '18 min de route (itinéraire calculé)'."""
    message = ESTIMATED if drive.is_estimate else ROUTED
    if cache is None:
        template = _(message)
    else:
        template = cache.get(("t", message)) or cache.setdefault(("t", message), _(message))
    return template % {"min": max(1, round(drive.minutes))}
