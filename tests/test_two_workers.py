"""Two worker processes on one queue: each job is done exactly once.

The workers are real `manage.py procrastinate worker` processes on the test database (its name
passed through the environment), so the jobs and the table they write to must be committed:
the set-up and the clean-up run on a connection of their own (as in
tests/contracts/test_concurrency.py), and remove exactly what this test made.
"""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from tests import two_workers_tasks
from tests.two_workers_tasks import QUEUE, TABLE

pytestmark = pytest.mark.django_db

JOBS = 40
WORKERS = 2


def in_own_connection(function, *args):
    """Run `function` in a thread of its own: its own connection, autocommit, closed at the end."""
    outcome: dict = {}

    def run():
        try:
            outcome["value"] = function(*args)
        except BaseException as error:  # handed back to the caller
            outcome["error"] = error
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def _sql(statement: str, params=()) -> list:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


def _cleanup() -> None:
    _sql(f"DROP TABLE IF EXISTS {TABLE}")
    _sql("DELETE FROM procrastinate_jobs WHERE queue_name = %s", [QUEUE])


def _set_up() -> None:
    _cleanup()
    _sql(f"CREATE TABLE {TABLE} (n integer PRIMARY KEY, pid integer NOT NULL)")


def _defer_jobs() -> None:
    for n in range(JOBS):
        two_workers_tasks.record_once.defer(n=n)


def _worker_env() -> dict[str, str]:
    """The environment that points a worker process at this run's test database."""
    env = {**os.environ, "PROCRASTINATE_IMPORT_PATHS": "tests.two_workers_tasks", "DEBUG": "1"}
    database = connection.settings_dict
    if os.environ.get("DATABASE_URL"):
        user_part = database["USER"] + (f":{database['PASSWORD']}" if database["PASSWORD"] else "")
        env["DATABASE_URL"] = (
            f"postgis://{user_part}@{database['HOST'] or 'localhost'}:{database['PORT'] or 5432}/{database['NAME']}"
        )
    else:
        env["ATLAS_DB_NAME"] = database["NAME"]
    return env


def _read(statement: str, params=()) -> list:
    """Read on a connection of our own: the test's transaction must hold no lock on TABLE."""
    return in_own_connection(_sql, statement, params)


def _workers_registered() -> int:
    return _read("SELECT count(*) FROM procrastinate_workers")[0][0]


def test_two_worker_processes_on_one_queue_do_each_job_exactly_once(tmp_path: Path):
    in_own_connection(_set_up)
    already_registered = _workers_registered()
    logs = [tmp_path / f"worker{i}.log" for i in range(WORKERS)]
    workers = [
        subprocess.Popen(  # noqa: S603 (our own manage.py)
            [sys.executable, "manage.py", "procrastinate", "worker", "--queues", QUEUE, "--name", f"w{i}"],
            cwd=settings.BASE_DIR,
            env=_worker_env(),
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
        )
        for i, log in enumerate(logs)
    ]
    try:
        # Both workers up (each registers itself) before any job exists: they compete for all of them.
        deadline = time.monotonic() + 120
        while _workers_registered() < already_registered + WORKERS:
            assert all(worker.poll() is None for worker in workers), [log.read_text() for log in logs]
            assert time.monotonic() < deadline, "the workers did not start"
            time.sleep(0.2)
        in_own_connection(_defer_jobs)

        deadline = time.monotonic() + 120
        while True:
            statuses = dict(
                _read("SELECT status, count(*) FROM procrastinate_jobs WHERE queue_name = %s GROUP BY status", [QUEUE])
            )
            if statuses.get("todo", 0) + statuses.get("doing", 0) == 0:
                break
            assert time.monotonic() < deadline, statuses
            time.sleep(0.2)
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            worker.wait(timeout=60)

    try:
        assert statuses == {"succeeded": JOBS}
        done = _read(f"SELECT n, pid FROM {TABLE} ORDER BY n")  # noqa: S608 (constant)
        assert [n for n, _ in done] == list(range(JOBS))  # every job once: n is the primary key
        pids = {pid for _, pid in done}
        assert pids <= {worker.pid for worker in workers}
        assert len(pids) == WORKERS, f"one worker did everything: {[log.read_text() for log in logs]}"
    finally:
        in_own_connection(_cleanup)
