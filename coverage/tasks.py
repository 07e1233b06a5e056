"""Background jobs of the coverage app: figures are computed here, never in a web request.

- `coverage_refresh(network_id, params)`: one network's figures for one set of parameters, queued by
  the dashboard when they are missing or stale (one job per network and parameters: queueing lock).
- `coverage_refresh_stale()`: queued by the directory's signals (debounced by its queueing lock).
- `coverage_refresh_nightly`: every network's default figures each night (cron in UTC).

The work runs in Django's thread for sync code (`thread_sensitive`): in tests run through
`async_to_sync` that is the test's own connection, so the job sees the test's data.
"""

from __future__ import annotations

import logging

from asgiref.sync import sync_to_async
from django.db import transaction
from procrastinate.contrib.django import app
from procrastinate.contrib.django.models import ProcrastinateJob
from procrastinate.exceptions import AlreadyEnqueued

from directory.models import Network

from . import snapshots

logger = logging.getLogger(__name__)

QUEUE = "coverage"
STALE_LOCK = "coverage.refresh_stale"


def _refresh_one(network_id: int, params: dict) -> None:
    network = Network.objects.filter(pk=network_id).first()
    if network is not None:
        snapshots.snapshot_refresh(network=network, params=params)


@app.task(queue=QUEUE)
async def coverage_refresh(network_id: int, params: dict) -> None:
    """One network's figures for these parameters (nothing to do when already fresh)."""
    await sync_to_async(_refresh_one, thread_sensitive=True)(network_id, params)


@app.task(queue=QUEUE, queueing_lock=STALE_LOCK)
async def coverage_refresh_stale() -> None:
    """Every stored snapshot the directory's changes made stale."""
    done = await sync_to_async(snapshots.snapshots_refresh_stale, thread_sensitive=True)()
    logger.info("coverage_refresh_stale: %d snapshots recomputed", done)


@app.periodic(cron="15 3 * * *")  # 04:15 or 05:15 in France, after the matchmaking and retention
@app.task(queue=QUEUE, queueing_lock="coverage.refresh_nightly")
async def coverage_refresh_nightly(timestamp: int) -> None:
    """Every network's default figures (and those visitors asked for lately): visitors rarely wait."""
    await sync_to_async(snapshots.snapshots_refresh_nightly, thread_sensitive=True)()


def refresh_lock(*, network_id: int, params: dict) -> str:
    return f"coverage.refresh:{network_id}:{snapshots.params_key(params)}"


def _defer_once(task, lock: str, **kwargs) -> bool:
    """Queue the job unless one with this lock is waiting; True when queued."""
    if ProcrastinateJob.objects.filter(queueing_lock=lock, status="todo").exists():
        return False
    try:
        with transaction.atomic():  # a savepoint: a lock conflict must not break the caller's transaction
            task.configure(queueing_lock=lock).defer(**kwargs)
    except AlreadyEnqueued:
        return False
    return True


def coverage_refresh_enqueue(*, network_id: int, params: dict) -> bool:
    """Ask for one network's figures (at most one such job waits at a time)."""
    lock = refresh_lock(network_id=network_id, params=params)
    return _defer_once(coverage_refresh, lock, network_id=network_id, params=params)


def coverage_refresh_stale_enqueue() -> bool:
    """Ask for the stale snapshots to be recomputed (at most one such job waits at a time)."""
    return _defer_once(coverage_refresh_stale, STALE_LOCK)


def coverage_refresh_pending(*, network_id: int, params: dict, stale: bool) -> bool:
    """Whether a job that will (re)compute these figures is waiting or running."""
    locks = [refresh_lock(network_id=network_id, params=params)]
    if stale:
        locks.append(STALE_LOCK)
    return ProcrastinateJob.objects.filter(queueing_lock__in=locks, status__in=["todo", "doing"]).exists()
