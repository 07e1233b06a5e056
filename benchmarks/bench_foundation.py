"""Foundation (issue 2): loading France's territories and generating the demo directory."""

import io

from django.core.management import call_command
from django.db import connection, transaction

from benchmarks.common import note, report, timed
from directory.models import Amap, Farm, Partnership


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


def bench_load_demo(*, amaps: int, farms: int, seed: int = 1) -> None:
    """`load_demo --clear --amaps N --farms M` (the clear timed apart); the directory stays for later modules."""
    with timed() as cleared:
        call_command("load_demo", clear=True, verbosity=0)
    with timed() as loaded:
        call_command("load_demo", amaps=amaps, farms=farms, seed=seed, verbosity=0)
    partnerships = Partnership.objects.filter(amap__is_demo=True).count()
    assert Amap.objects.filter(is_demo=True).count() == amaps
    assert Farm.objects.filter(is_demo=True).count() == farms
    note(f"load_demo --amaps {amaps} --farms {farms} --seed {seed}: {partnerships} partnerships")
    report("foundation.load_demo_clear_previous", cleared.seconds, "s")
    report(f"foundation.load_demo_{amaps}_amaps_{farms}_farms", loaded.seconds, "s")
    report("foundation.load_demo_rows_per_s", (amaps + farms + partnerships) / loaded.seconds, "rows/s")


def run(ctx) -> None:
    bench_load_territories()
    size = ctx.size(100_000, 10_000)
    bench_load_demo(amaps=size, farms=size)
