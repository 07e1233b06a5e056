"""The coverage cache: one version bumped whenever the directory changes, plus a fingerprint.

Coverage listens to the directory's model signals and to `rows_written`, which the importer's bulk
writes send once per batch (connected in `CoverageConfig.ready()`); the directory does not know
coverage exists. Other bulk writes (demo data) send no signal: a cheap fingerprint of the directory
tables (counts and last changes) is part of every key as well.
"""

from __future__ import annotations

import hashlib

from django.core.cache import cache
from django.db import connection
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.utils import timezone

from directory.models import Amap, Farm, Network, Partnership
from directory.signals import rows_written

CACHE_VERSION_KEY = "coverage:version"
CACHE_TIMEOUT = 24 * 3600

_CACHE_VERSION = 2  # bump when the shape of the cached dict changes


def coverage_cache_bump(**_kwargs) -> None:
    """Invalidate every cached coverage (the directory changed)."""
    try:
        cache.incr(CACHE_VERSION_KEY)
    except ValueError:
        cache.set(CACHE_VERSION_KEY, int(timezone.now().timestamp() * 1000), None)


def _on_directory_change(**_kwargs) -> None:
    """The directory changed: cached figures go, stored ones are marked stale and one refresh job is
    queued (the queueing lock turns a burst of changes into one job), in the same transaction."""
    # Imported here: tasks.py needs the job queue's app, which is set up after this module loads.
    from .models import CoverageSnapshot
    from .snapshots import snapshots_mark_stale
    from .tasks import coverage_refresh_stale_enqueue

    coverage_cache_bump()
    snapshots_mark_stale()
    if CoverageSnapshot.objects.exists():
        coverage_refresh_stale_enqueue()


def _on_m2m_changed(sender, instance, action, **_kwargs) -> None:
    if action in {"post_add", "post_remove", "post_clear"}:
        _on_directory_change()


def connect_signals() -> None:
    """Called from CoverageConfig.ready(): any change to the directory invalidates coverage."""
    for model in (Amap, Farm, Partnership, Network):
        post_save.connect(_on_directory_change, sender=model, dispatch_uid=f"coverage-save-{model.__name__}")
        post_delete.connect(_on_directory_change, sender=model, dispatch_uid=f"coverage-delete-{model.__name__}")
    for through in (
        Amap.products.through,
        Amap.networks.through,
        Farm.products.through,
        Farm.networks.through,
        Network.departments.through,
        Network.regions.through,
    ):
        m2m_changed.connect(_on_m2m_changed, sender=through, dispatch_uid=f"coverage-m2m-{through.__name__}")
    # The importer writes in bulk (no save()): one signal per batch of rows.
    rows_written.connect(_on_directory_change, dispatch_uid="coverage-rows-written")


def directory_fingerprint() -> str:
    # Bulk writes of demo data send no signal: counts and last changes catch them.
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT (SELECT count(*) || '/' || coalesce(max(updated_at)::text, '') FROM directory_amap),
                   (SELECT count(*) || '/' || coalesce(max(updated_at)::text, '') FROM directory_farm),
                   (SELECT count(*) || '/' || coalesce(max(updated_at)::text, '') FROM directory_partnership),
                   (SELECT count(*) || '/' || coalesce(max(updated_at)::text, '') FROM directory_network)
            """
        )
        return "|".join(cursor.fetchone())


def coverage_cache_key(*, network: Network, radius_km: float, product: str | None, min_population: int) -> str:
    """The key of one network's coverage for these parameters, under the current version."""
    version = cache.get(CACHE_VERSION_KEY)
    if version is None:
        coverage_cache_bump()
        version = cache.get(CACHE_VERSION_KEY)
    fingerprint = hashlib.sha1(directory_fingerprint().encode(), usedforsecurity=False).hexdigest()[:12]
    params = f"{network.pk}:{radius_km:g}:{product or '-'}:{min_population}"
    return f"coverage:{_CACHE_VERSION}:{version}:{fingerprint}:{params}"
