"""Stored coverage figures (`CoverageSnapshot`): reads for the pages, and the refresh the jobs run.

Pages never compute: they read the last snapshot for their parameters and, when it is missing or
stale, ask for a refresh (coverage/tasks.py). A snapshot is stale when a directory signal marked it
(`stale`), or when the directory's fingerprint (counts and last changes, which bulk writes move too)
differs from the one it was computed for.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from directory.models import Network

from . import figures, layers
from .cache import CACHE_TIMEOUT, directory_fingerprint
from .models import CoverageSnapshot, CoverageZoneShape
from .territory import TerritoryError

logger = logging.getLogger(__name__)

# Snapshots for other parameters than the defaults are dropped when nobody asked for them this long.
UNUSED_FOR = dt.timedelta(days=30)


def params_normalise(*, radius_km: float, product: str | None, min_population: int) -> dict:
    """The parameters as stored and as passed to the job (radius in 100 m steps, like the figures)."""
    return {"radius_km": round(float(radius_km), 1), "product": product or None, "min_population": int(min_population)}


def params_default() -> dict:
    return params_normalise(
        radius_km=figures.RADIUS_KM_DEFAULT, product=None, min_population=figures.MIN_POPULATION_DEFAULT
    )


def params_key(params: dict) -> str:
    return f"{params['radius_km']:g}:{params['product'] or '-'}:{params['min_population']}"


def directory_version() -> str:
    """A short digest of the directory's fingerprint (one cheap query)."""
    return hashlib.sha1(directory_fingerprint().encode(), usedforsecurity=False).hexdigest()[:16]


def snapshot_get(*, network: Network, params: dict) -> CoverageSnapshot | None:
    """The stored snapshot for these parameters, without its (large) figures."""
    return CoverageSnapshot.objects.defer("data").filter(network=network, params_key=params_key(params)).first()


def snapshot_is_fresh(snapshot: CoverageSnapshot, *, version: str | None = None) -> bool:
    return not snapshot.stale and snapshot.directory_version == (version or directory_version())


def snapshot_touch(snapshot: CoverageSnapshot) -> None:
    """Remember that someone asked for it (at most one write a day)."""
    now = timezone.now()
    if snapshot.requested_at is None or now - snapshot.requested_at > dt.timedelta(days=1):
        CoverageSnapshot.objects.filter(pk=snapshot.pk).update(requested_at=now)


def snapshot_cache_key(snapshot: CoverageSnapshot) -> str:
    """Changes with every computation: layers, ETags and per-process copies hang on it."""
    return f"coverage:snapshot:{snapshot.pk}:{int(snapshot.computed_at.timestamp() * 1000)}"


def snapshot_result(snapshot: CoverageSnapshot) -> dict:
    """The figures of a snapshot (the `coverage_for_network` dict), decoded once per process."""
    key = snapshot_cache_key(snapshot)
    result = cache.get(key)
    if result is None:
        result = CoverageSnapshot.objects.filter(pk=snapshot.pk).values_list("data", flat=True).get()
        result["cache_key"] = key
        result["snapshot_id"] = snapshot.pk
        result["computed_at"] = snapshot.computed_at.isoformat(timespec="seconds")
        cache.set(key, result, CACHE_TIMEOUT)
    return result


def snapshot_refresh(*, network: Network, params: dict, force: bool = False) -> CoverageSnapshot | None:
    """Compute and store one network's figures (and its white zones' outlines) unless already fresh.

    Returns None when the parameters no longer make sense (a product that was removed)."""
    params = params_normalise(**params)
    version = directory_version()  # before computing: a change meanwhile leaves the snapshot stale
    existing = snapshot_get(network=network, params=params)
    if existing is not None and not force and snapshot_is_fresh(existing, version=version):
        return existing
    data, error = None, ""
    try:
        data = figures.coverage_for_network(network=network, use_cache=False, **params)
    except TerritoryError as territory_error:
        error = str(territory_error)
    except ValueError:
        CoverageSnapshot.objects.filter(network=network, params_key=params_key(params)).delete()
        return None
    if data is not None:
        data.pop("cache_key", None)
    with transaction.atomic():
        snapshot, _created = CoverageSnapshot.objects.update_or_create(
            network=network,
            params_key=params_key(params),
            defaults={
                "params": params,
                "data": data,
                "error": error,
                "computed_at": timezone.now(),
                "directory_version": version,
                "stale": False,
            },
        )
        snapshot.zone_shapes.all().delete()
        if data is not None:
            # The white zones' outlines (seconds of ST_Union for a national network) are merged here.
            shapes = layers.zone_shapes_compute(data)
            CoverageZoneShape.objects.bulk_create(
                [CoverageZoneShape(snapshot=snapshot, zone=zone, wkb=wkb) for zone, wkb in shapes.items()]
            )
    return snapshot


def snapshots_mark_stale() -> int:
    """The directory changed: every snapshot must be recomputed (one UPDATE of those still fresh)."""
    return CoverageSnapshot.objects.filter(stale=False).update(stale=True)


def snapshots_refresh_stale() -> int:
    """Recompute the snapshots that are stale (marked, or computed for another directory version)."""
    version = directory_version()
    done = 0
    for snapshot in CoverageSnapshot.objects.defer("data").select_related("network").order_by("pk"):
        if not snapshot_is_fresh(snapshot, version=version):
            snapshot_refresh(network=snapshot.network, params=snapshot.params)
            done += 1
    return done


def snapshots_refresh_nightly() -> tuple[int, int]:
    """Every network's default figures, plus the other parameters visitors asked for lately; the
    others are dropped. Returns (refreshed or checked, dropped)."""
    cutoff = timezone.now() - UNUSED_FOR
    default_key = params_key(params_default())
    _total, by_model = (
        CoverageSnapshot.objects.exclude(params_key=default_key)
        .exclude(requested_at__gte=cutoff)
        .filter(computed_at__lt=cutoff)
        .delete()
    )
    dropped = by_model.get(CoverageSnapshot._meta.label, 0)
    count = 0
    for network in Network.objects.order_by("pk"):
        snapshot_refresh(network=network, params=params_default())
        count += 1
    count += snapshots_refresh_stale()
    logger.info("coverage nightly refresh: %d networks and parameters, %d unused snapshots dropped", count, dropped)
    return count, dropped
