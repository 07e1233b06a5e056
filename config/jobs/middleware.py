"""Worker middleware: every failed attempt of a job leaves its error in `JobError`."""

import traceback
from typing import Any

from asgiref.sync import sync_to_async


def _record(*, job, error: BaseException) -> None:
    from config.jobs.models import JobError  # the app registry is ready once a worker runs

    JobError.objects.create(
        job_id=job.id,
        task_name=job.task_name,
        attempt=job.attempts + 1,
        error=f"{type(error).__name__}: {error}"[:2000],
        traceback="".join(traceback.format_exception(error))[-20000:],
    )


async def record_job_errors(call_next, context, worker) -> Any:
    """Keep the error, then let Procrastinate decide (retry or fail) as usual."""
    try:
        return await call_next()
    except Exception as error:
        # thread_sensitive: Django's connection for the worker's sync work (and, in tests run
        # through async_to_sync, the test's own connection and transaction).
        await sync_to_async(_record, thread_sensitive=True)(job=context.job, error=error)
        raise


def on_app_ready(app) -> None:
    """PROCRASTINATE_ON_APP_READY: every worker of this project records its jobs' errors."""
    middleware = app.worker_defaults.setdefault("worker_middleware", [])
    if record_job_errors not in middleware:
        middleware.append(record_job_errors)
