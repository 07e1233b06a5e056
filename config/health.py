"""Health endpoints for a load balancer or an orchestrator.

`/healthz` answers as long as the process serves requests (no database: a database outage
must not get every web process restarted); `/readyz` says whether this process can do its
work: the database answers and the job queue's tables are there.
"""

import logging

from django.db import DatabaseError, connection, transaction
from django.http import HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)


def _plain(text: str, status: int = 200) -> HttpResponse:
    return HttpResponse(f"{text}\n", status=status, content_type="text/plain; charset=utf-8")


@never_cache
@require_GET
def healthz(request):
    return _plain("ok")


@never_cache
@require_GET
def readyz(request):
    # Each check in a savepoint: a failed one leaves no aborted transaction behind.
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        logger.exception("readyz: database unreachable")
        return _plain("base de données injoignable", status=503)
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            # The queue's table, read the way a worker reads it (LIMIT 0: no rows, just access).
            cursor.execute("SELECT 1 FROM procrastinate_jobs LIMIT 0")
    except DatabaseError:
        logger.exception("readyz: job queue unreachable")
        return _plain("file de tâches injoignable (migrations appliquées ?)", status=503)
    return _plain("ok")
