"""A task for tests/test_two_workers.py, loaded by its worker processes (PROCRASTINATE_IMPORT_PATHS)."""

import os
import time

from django.db import connection
from procrastinate.contrib.django import app

QUEUE = "two_workers_test"
TABLE = "test_two_workers_done"


@app.task(queue=QUEUE)
def record_once(*, n: int) -> None:
    """Write down that job `n` ran, and in which process; a second run of `n` would fail (primary key)."""
    time.sleep(0.05)  # long enough for both workers to take turns
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {TABLE} (n, pid) VALUES (%s, %s)", [n, os.getpid()])  # noqa: S608 (constant)
