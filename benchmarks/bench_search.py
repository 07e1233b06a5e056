"""Search (issue 3): nearest-10 API at 1k and 100k AMAPs, KNN against order_by(Distance()), wrk load.

Figures (`--quick`: 1k and 10k AMAPs, shorter runs):
- search.api_nearest10_p50_1k / _p95_1k / _p50_100k / _p95_100k: GET /api/v1/amaps/?near=…&limit=10 through
  Django's test client (full stack: parsing, selector, GeoJSON), a different point of France each time;
- search.api_nearest10_p50_ratio_100k_vs_1k (goal ≤ 1.5) and the p95 ratio;
- search.selector_nearest10_p50_*: `amap_features_near`, the search the API and the pages share (one SQL
  statement: KNN shortlist, exact geodesic rank, GeoJSON features); search.selector_models_nearest10_p50_*:
  `amaps_near`, the same results as model instances for the pages;
- search.naive_order_by_distance_p50_*: the same ten AMAPs with their commune, products and networks through
  the ORM's `order_by(Distance())`; search.knn_speedup_* = naive / selector (goal ≥ 50 at 100k);
- search.naive_same_sql_p50_*: the selector's own statement with its shortlist ordered by the exact
  `ST_Distance` instead of the `<->` index walk; search.knn_speedup_same_sql_* = that / selector;
- search.orm_bare_*: the bare ORM queries (ten rows, nothing joined) ordered each way, and their ratio;
- search.wrk_nearest10_rps_*: requests per second under wrk (2 threads, 8 connections, ~10 s) against
  gunicorn on 127.0.0.1 serving the benchmark database (goal ≥ 300), with its non-2xx count (goal 0).

Options (`--set key=value`): workers, threads (gthread worker), port (default: a free one).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import urllib.request

import numpy as np

from benchmarks.common import (
    HUGE_RATE,
    ROOT,
    children,
    cpu_by_process,
    cpu_since,
    database_cpu_seconds,
    ensure_demo,
    free_port,
    measure,
    note,
    percentile,
    production_env,
    production_server,
    report,
    run_wrk,
)

URL = "/api/v1/amaps/"


def _label(n: int) -> str:
    return f"{n // 1000}k" if n % 1000 == 0 else str(n)


def query_points(count: int, *, seed: int) -> list[tuple[float, float]]:
    """Points where people live: commune reference points drawn by population, jittered by ~1 km."""
    from geo.models import Commune

    rows = list(Commune.objects.municipalities().exclude(point=None).values_list("point", "population"))
    rng = np.random.default_rng(seed)
    weights = np.array([max(population, 1) for _, population in rows], dtype=float)
    picks = rng.choice(len(rows), size=count, p=weights / weights.sum())
    jitter = rng.normal(0, 0.01, size=(count, 2))
    return [
        (round(rows[i][0].x + dx, 5), round(rows[i][0].y + dy, 5)) for i, (dx, dy) in zip(picks, jitter, strict=True)
    ]


def _compact() -> None:
    """Tables as a fresh load leaves them once settled: fresh statistics, no dead rows, files sized to the rows.

    The benchmark database is shared: demo regenerations (here or by other benchmarks) delete
    and insert up to 200k rows, and a 1k directory would otherwise be measured in files and
    indexes sized for 100k dead rows (a seq scan over 90 MB of them, a GiST of 16 MB). Every
    other table the demo loader wrote is vacuumed too, and written out: autovacuum and the
    checkpointer would otherwise do it in the middle of the measurements (seen here: autovacuum
    went through 400k demo rows while the 100k figures were being taken).
    """
    from django.apps import apps
    from django.db import DatabaseError, connection

    tables = {model._meta.db_table for model in apps.get_app_config("directory").get_models(include_auto_created=True)}
    with connection.cursor() as cursor:  # autocommit: VACUUM cannot run inside a transaction
        for table in ("directory_amap", "directory_amap_products", "directory_amap_networks"):
            cursor.execute(f"VACUUM FULL ANALYZE {table}")
        for table in sorted(tables):
            cursor.execute(f"VACUUM ANALYZE {table}")
        with contextlib.suppress(DatabaseError):  # needs the pg_checkpoint role on a managed database
            cursor.execute("CHECKPOINT")


def bench_in_process(points: list[tuple[float, float]], *, label: str, ctx) -> dict[str, float]:
    from django.conf import settings
    from django.contrib.gis.db.models.functions import Distance, GeometryDistance
    from django.contrib.gis.geos import Point
    from django.db import connection
    from django.test import Client, override_settings

    from directory.models import Amap

    # The selector's own building blocks, to time the same query in the naive order.
    from directory.selectors import amap_features_near, amaps_filtered, amaps_near, shortlist_size
    from directory.selectors.filtered import _with_commune, _with_related_lists
    from directory.selectors.nearest import _AMAPS, _ORIGIN, _nearest_query, _nearest_sql

    figures: dict[str, float] = {}
    # Steady state, as a running site is: the directory's pages in PostgreSQL's cache (the tables
    # were just rewritten by _compact) and the search's statement prepared.
    for lon, lat in points:
        amap_features_near(point=Point(lon, lat, srid=4326), limit=10)
    rates = {"anon": HUGE_RATE, "user": HUGE_RATE}
    with override_settings(REST_FRAMEWORK={**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}):
        client = Client()
        cycle = iter(points * 10)

        def api_call():
            lon, lat = next(cycle)
            response = client.get(URL, {"near": f"{lon},{lat}", "limit": "10"})
            assert response.status_code == 200, response.content[:300]
            assert len(response.json()["features"]) == 10

        # Many calls: the p50 of a longer window is less at the mercy of other work on the machine.
        durations = measure(api_call, repeat=ctx.size(1000, 200), warmup=20)
    figures["api_p50"] = percentile(durations, 50) * 1000
    figures["api_p95"] = percentile(durations, 95) * 1000
    report(f"search.api_nearest10_p50_{label}", figures["api_p50"], "ms")
    report(f"search.api_nearest10_p95_{label}", figures["api_p95"], "ms")

    cycle = iter(points * 10)
    selector = measure(
        lambda: amap_features_near(point=Point(*next(cycle), srid=4326), limit=10), repeat=ctx.size(400, 120)
    )
    figures["selector_p50"] = percentile(selector, 50) * 1000
    report(f"search.selector_nearest10_p50_{label}", figures["selector_p50"], "ms")
    cycle = iter(points * 10)
    models = measure(lambda: amaps_near(point=Point(*next(cycle), srid=4326), limit=10), repeat=ctx.size(400, 120))
    report(f"search.selector_models_nearest10_p50_{label}", percentile(models, 50) * 1000, "ms")

    def naive_call():
        # The same rows as the selector's (commune, products, networks, distance), but ordered the
        # way this search avoids: the spheroid distance of every row, then a sort of the whole table.
        point = Point(*next(cycle), srid=4326)
        same_rows = _with_related_lists(_with_commune(amaps_filtered()))
        list(same_rows.annotate(distance=Distance("location", point)).order_by("distance")[:10])

    cycle = iter(points * 10)
    naive = measure(naive_call, repeat=ctx.size(30, 10), warmup=2)
    figures["naive_p50"] = percentile(naive, 50) * 1000
    report(f"search.naive_order_by_distance_p50_{label}", figures["naive_p50"], "ms")
    report(f"search.knn_speedup_{label}", figures["naive_p50"] / figures["selector_p50"], "x")

    # The selector's own statement, its shortlist ordered by the exact distance of every row.
    statement = _nearest_sql(_AMAPS, frozenset(), False, shortlist_size(10))
    knn_order = "ORDER BY place.location <-> " + _ORIGIN
    assert knn_order in statement
    exact_order = statement.replace(knn_order, "ORDER BY ST_Distance(place.location, " + _ORIGIN + ")")

    def naive_sql_call():
        lon, lat = next(cycle)
        query = _nearest_query(_AMAPS, point=Point(lon, lat, srid=4326), limit=10, offset=0)
        with connection.cursor() as cursor:
            cursor.execute(exact_order, query.params)
            assert len(cursor.fetchall()) == 10

    cycle = iter(points * 10)
    naive_sql = percentile(measure(naive_sql_call, repeat=ctx.size(30, 10), warmup=2), 50) * 1000
    report(f"search.naive_same_sql_p50_{label}", naive_sql, "ms")
    report(f"search.knn_speedup_same_sql_{label}", naive_sql / figures["selector_p50"], "x")

    # The bare ORM queries (ten AMAP rows, nothing joined), as in docs/QUALITY.md's reference table:
    # what the index walk itself gains, without the work both ways share.
    def bare(order):
        def call():
            point = Point(*next(cycle), srid=4326)
            list(Amap.objects.active().order_by(order("location", point))[:10])

        return call

    cycle = iter(points * 10)
    bare_knn = percentile(measure(bare(GeometryDistance), repeat=ctx.size(400, 120), warmup=5), 50) * 1000
    bare_naive = percentile(measure(bare(Distance), repeat=ctx.size(30, 10), warmup=2), 50) * 1000
    report(f"search.orm_bare_knn_p50_{label}", bare_knn, "ms")
    report(f"search.orm_bare_naive_p50_{label}", bare_naive, "ms")
    report(f"search.orm_bare_knn_speedup_{label}", bare_naive / bare_knn, "x")

    # Both ways must agree on the ten nearest (ties within 1 m aside).
    point = Point(*points[0], srid=4326)
    knn = [a.pk for a in amaps_near(point=point, limit=10)]
    slow = list(
        Amap.objects.active()
        .annotate(distance=Distance("location", point))
        .order_by("distance", "pk")
        .values_list("pk", flat=True)[:10]
    )
    if knn != slow:
        note(f"warning: KNN and naive top 10 differ at {points[0]}: {knn} vs {slow}")
    return figures


def bench_wrk(points: list[tuple[float, float]], *, label: str, ctx) -> None:
    if shutil.which("wrk") is None:
        note("wrk not installed: load test skipped (scripts/system-deps.sh installs it)")
        return
    from django.db import connections

    connections.close_all()  # the workers open their own connections
    workers = int(ctx.options.get("workers", min(4, max(2, os.cpu_count() or 2))))
    duration = int(ctx.options.get("wrk_duration", 5 if ctx.quick else 10))
    port = int(ctx.options.get("port", 0)) or free_port()
    command = [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{port}"]
    command += ["--workers", str(workers), "--log-level", "warning"]
    if "threads" in ctx.options:
        command += ["--worker-class", "gthread", "--threads", ctx.options["threads"]]
    log_path = ROOT / ".var" / "log" / "bench_search_server.log"
    paths = [f"{URL}?near={lon},{lat}&limit=10" for lon, lat in points]
    with production_server(command, env=production_env(port), log_path=log_path) as server:
        base = f"http://127.0.0.1:{port}"
        for path in paths[: workers * 10]:  # every worker connects and warms up
            urllib.request.urlopen(f"{base}{path}", timeout=10).read()
        workers_pids = [server.pid, *children(server.pid)]
        cpu_before = (cpu_by_process(workers_pids), database_cpu_seconds())
        result = run_wrk(base=base, paths=paths, seconds=duration)
        cpu_app = cpu_since(cpu_before[0], workers_pids)
        cpu_db = database_cpu_seconds() - cpu_before[1]
    total = result["requests"]
    report(f"search.wrk_nearest10_rps_{label}", result["rps"], "req/s")
    report(f"search.wrk_nearest10_requests_{label}", total, "requests")
    report(f"search.wrk_nearest10_non2xx_{label}", result["non2xx"], "responses")
    report(f"search.wrk_nearest10_socket_errors_{label}", result["socket_errors"], "errors")
    report(f"search.wrk_nearest10_p50_{label}", result["p50"], "ms")
    report(f"search.wrk_nearest10_p99_{label}", result["p99"], "ms")
    # CPU spent per request by the app (gunicorn workers) and the database (their backends): what
    # two dedicated cores could serve, whatever else this shared machine is running meanwhile.
    app_ms, db_ms = cpu_app / total * 1000, cpu_db / total * 1000
    report(f"search.wrk_app_cpu_per_request_{label}", app_ms, "ms")
    report(f"search.wrk_db_cpu_per_request_{label}", db_ms, "ms")
    report(f"search.wrk_capacity_two_cores_estimate_{label}", 2000 / (app_ms + db_ms), "req/s")
    kind = f"gthread workers × {ctx.options['threads']} threads" if "threads" in ctx.options else "sync workers"
    note(f"wrk: gunicorn {workers} {kind}; wrk 2 threads, 8 connections, {duration}s; load average {os.getloadavg()}")


def run(ctx) -> None:
    from directory.demo import demo_matches

    small = int(ctx.options.get("search_small", 1000))
    large = int(ctx.options.get("search_large", 10_000 if ctx.quick else 100_000))
    points = query_points(500, seed=42)
    results = {}
    # Start with the size the database already holds: regenerating 100k rows takes minutes.
    for size in sorted((small, large), key=lambda n: not demo_matches(amaps=n, farms=n, seed=1)):
        ensure_demo(amaps=size, farms=size, seed=1)
        _compact()
        results[size] = bench_in_process(points, label=_label(size), ctx=ctx)
        if size == large:
            bench_wrk(points, label=_label(size), ctx=ctx)
    small_label, large_label = _label(small), _label(large)
    for stat in ("p50", "p95"):
        report(
            f"search.api_nearest10_{stat}_ratio_{large_label}_vs_{small_label}",
            results[large][f"api_{stat}"] / results[small][f"api_{stat}"],
            "x",
        )
