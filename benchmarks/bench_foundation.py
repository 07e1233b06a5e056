"""Foundation (issue 2): loading France's territories and generating the demo directory."""

import io

from django.core.management import call_command
from django.db import connection, transaction

from benchmarks.common import report, timed


class _Rollback(Exception):
    pass


def bench_load_territories() -> None:
    """`load_territories` into empty tables, inside a transaction rolled back afterwards."""
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                # Empties every table that refers to the territories too (demo rows included);
                # all of it comes back with the rollback.
                cursor.execute("TRUNCATE geo_commune, geo_department, geo_region CASCADE")
            with timed() as t:
                call_command("load_territories", verbosity=0, stdout=io.StringIO())
            raise _Rollback
    except _Rollback:
        pass
    report("foundation.load_territories", t.seconds, "s")


def run(ctx) -> None:
    bench_load_territories()
