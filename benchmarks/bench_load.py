"""Load (issue 13): mixed public reads against the production server, then a soak for worker memory.

First, in this process (Django's test client, production settings), the CPU time of each of the five
reads (kinds home, search, api, tile, amap): load.page_cpu_<kind>_cold (nothing kept in the cache),
load.page_cpu_<kind>_miss (pages kept, each URL asked for the first time) and load.page_cpu_<kind>_warm
(asked again: the kept page).

Then the production path as `scripts/serve.sh` runs it (collectstatic, gunicorn with its defaults,
`DEBUG=0`), on 127.0.0.1 and a free port, serving the benchmark database. After a warm-up (40 s; 20 s
with `--quick`), wrk (2 threads, 8 connections) sends an even mix of five reads for 20 s (10 s), each
request another URL of its kind (200 of each):
home `/`, the search page `/recherche/?q=<town>` (towns drawn by population), the nearest API
`/api/v1/amaps/?near=…&limit=10`, a vector tile `/carte/tuiles/amaps/z/x/y.pbf?v=<data version>` (as the
map asks), an AMAP page.

Figures:
- load.mixed_rps (goal ≥ 300 req/s on the 2 cores), load.mixed_non2xx and load.mixed_socket_errors
  (goal 0), load.mixed_p50 / load.mixed_p99;
- load.mixed_app_cpu_per_request / load.mixed_db_cpu_per_request / load.mixed_wrk_cpu_per_request: CPU
  time of the gunicorn workers, of the PostgreSQL server (when local) and of wrk itself per request, and
  load.mixed_capacity_two_cores_estimate = 2000 ms / (app + db): what two cores of its own would serve
  (the machine is shared: compare with load.load_average_* printed beside);
- load.soak_seconds (10 minutes; BENCH_SOAK_SECONDS, or 60 s with `--quick`), load.soak_requests,
  load.soak_non2xx (goal 0);
- load.soak_rss_start / load.soak_rss_end / load.soak_rss_max: the gunicorn workers' resident memory
  summed (MB), sampled after the throughput run (warm), at the end of the soak and its highest;
  load.soak_rss_growth (goal ≤ 10 %) and load.soak_rss_growth_max_worker (the worst single worker).
  The soak runs without gunicorn's worker recycling (`--max-requests`, on in production) so that a
  leak shows: `--set max_requests=N` soaks with it.

Options (`--set key=value`): collectstatic=0 (already collected), load_amaps / load_farms (directory
size, default: the `make demo` directory, 2,000 AMAPs and 3,000 farms), workers, threads (serve.sh's
defaults otherwise), warm_up_duration, rps_duration, soak_duration (seconds), max_requests, server=0 (the in-process
figures only).
Traffic goes only to 127.0.0.1 and every run is bounded in time.
"""

from __future__ import annotations

import logging
import math
import os
import resource
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np

from benchmarks.bench_search import query_points
from benchmarks.common import (
    ROOT,
    children,
    cpu_by_process,
    cpu_since,
    database_cpu_seconds,
    ensure_demo,
    free_port,
    note,
    production_env,
    production_server,
    report,
    run_wrk,
)

KINDS = ("home", "search", "api", "tile", "amap")
SOAK_SECONDS = 600


def search_towns(count: int, *, seed: int) -> list[str]:
    """Town names as people type them, drawn by population (Paris and Lyon often, small towns sometimes)."""
    from geo.models import Commune

    rows = list(Commune.objects.municipalities().values_list("name", "population"))
    rng = np.random.default_rng(seed)
    weights = np.array([max(population, 1) for _, population in rows], dtype=float)
    return [rows[i][0] for i in rng.choice(len(rows), size=count, p=weights / weights.sum())]


def mixed_paths(count: int = 200) -> dict[str, list[str]]:
    """`count` URLs of each kind: home, search page, nearest API, tile, AMAP page."""
    from directory.models import Amap
    from maps import selectors

    points = query_points(count, seed=7)
    towns = search_towns(count, seed=11)
    version = selectors.data_version()
    amap_ids = list(Amap.objects.filter(status=Amap.Status.ACTIVE).order_by("?").values_list("pk", flat=True)[:count])
    paths: dict[str, list[str]] = {kind: [] for kind in KINDS}
    for i, (lon, lat) in enumerate(points):
        z = 6 + i % 6  # zoom 6 to 11: from a région to a town, as people browse the map
        x, y = tile_of(lon, lat, z)
        paths["home"].append("/")
        paths["search"].append("/recherche/?" + urllib.parse.urlencode({"q": towns[i]}))
        paths["api"].append(f"/api/v1/amaps/?near={lon},{lat}&limit=10")
        paths["tile"].append(f"/carte/tuiles/amaps/{z}/{x}/{y}.pbf?v={version}")
        paths["amap"].append(f"/amap/{amap_ids[i % len(amap_ids)]}/")
    return paths


def interleaved(paths: dict[str, list[str]]) -> list[str]:
    """One URL of each kind in turn: an even mix."""
    return [path for group in zip(*(paths[kind] for kind in KINDS), strict=True) for path in group]


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    """The XYZ (Web Mercator) tile holding a point."""
    n = 2**z
    return int((lon + 180.0) / 360.0 * n), int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)


def _rss_kb(pid: int) -> int:
    """Resident memory of a process (VmRSS in /proc; psutil is not a dependency)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def page_cpu(paths: dict[str, list[str]], *, requests: int) -> None:
    """CPU time per request of each kind in this process: cold, first asked, and asked again.

    cold: nothing kept (PAGE_CACHE_SECONDS=0), each page drawn from scratch; miss: pages kept, each URL
    asked for the first time (what other pages keep, e.g. the search filters' choices, is warm);
    warm: each URL asked again, answered from the kept page.
    """
    from django.conf import settings
    from django.core.cache import cache
    from django.test import Client, override_settings

    logging.getLogger("atlas.requests").setLevel(logging.WARNING)  # as the server below runs (LOG_LEVEL)
    client = Client()
    rates = {"anon": "1000000/second", "user": "1000000/second"}
    throttles = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    kept = settings.PAGE_CACHE_SECONDS or 600

    def cpu_per_request(urls: list[str]) -> float:
        started = time.process_time()
        for url in urls:
            assert client.get(url).status_code == 200, url
        return (time.process_time() - started) / len(urls) * 1000

    for kind in KINDS:
        urls, others = paths[kind][:requests], paths[kind][-5:]  # others: connections, statements, imports
        with override_settings(REST_FRAMEWORK=throttles, PAGE_CACHE_SECONDS=0):
            cache.clear()
            cpu_per_request(others)
            report(f"load.page_cpu_{kind}_cold", cpu_per_request(urls), "ms")
        with override_settings(REST_FRAMEWORK=throttles, PAGE_CACHE_SECONDS=kept):
            cache.clear()
            cpu_per_request(others)
            unique = list(dict.fromkeys(urls))
            report(f"load.page_cpu_{kind}_miss", cpu_per_request(unique), "ms")
            report(f"load.page_cpu_{kind}_warm", cpu_per_request(urls), "ms")


def run(ctx) -> None:
    from django.db import connections

    amaps = int(ctx.options.get("load_amaps", 2000))
    farms = int(ctx.options.get("load_farms", 3000))
    ensure_demo(amaps=amaps, farms=farms, seed=1)
    paths = mixed_paths()
    page_cpu(paths, requests=int(ctx.options.get("page_requests", 40)))
    if ctx.options.get("server", "1") == "0":
        return
    if shutil.which("wrk") is None:
        note("wrk not installed: load test skipped (scripts/system-deps.sh installs it)")
        return
    mix = interleaved(paths)
    connections.close_all()  # the workers open their own connections

    port = int(ctx.options.get("port", 0)) or free_port()
    env = production_env(port)
    env["GUNICORN_MAX_REQUESTS"] = ctx.options.get("max_requests", "0")
    for option, variable in (("workers", "WEB_CONCURRENCY"), ("threads", "GUNICORN_THREADS")):
        if option in ctx.options:
            env[variable] = ctx.options[option]
    # serve.sh's first step, timed on its own (whitenoise compresses every file again each time:
    # minutes on a loaded machine), so that the server's start is not mistaken for a hang.
    started = time.perf_counter()
    if ctx.options.get("collectstatic", "1") == "1":
        subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
            cwd=ROOT,
            env=env,
            check=True,
            timeout=900,
            stdout=subprocess.DEVNULL,
        )
        report("load.collectstatic_seconds", time.perf_counter() - started, "s")
    rps_seconds = int(ctx.options.get("rps_duration", 10 if ctx.quick else 20))
    warm_seconds = int(ctx.options.get("warm_up_duration", 20 if ctx.quick else 40))
    soak_default = 60 if ctx.quick else int(os.environ.get("BENCH_SOAK_SECONDS", SOAK_SECONDS))
    soak_seconds = int(ctx.options.get("soak_duration", soak_default))
    load_before = os.getloadavg()[0]  # the machine's load from other work, before the server adds its own
    command = ["bash", str(ROOT / "scripts" / "serve.sh")]
    log_path = ROOT / ".var" / "log" / "bench_load_server.log"
    with production_server(command, env={**env, "COLLECTSTATIC": "0"}, log_path=log_path) as server:
        base = f"http://127.0.0.1:{port}"
        for path in mix[: len(KINDS) * 4]:  # every kind answers before wrk starts
            urllib.request.urlopen(f"{base}{path}", timeout=30).read()
        # Steady state, as a site that has been up a while: each worker has kept the pages it serves
        # (each process has its own cache: every worker draws each page once).
        warm_up = run_wrk(base=base, paths=mix, seconds=warm_seconds)
        report("load.warm_up_rps", warm_up["rps"], "req/s")
        workers = sorted(children(server.pid))  # serve.sh execs gunicorn: server.pid is the master
        cpu_before = (cpu_by_process(workers), database_cpu_seconds(), _children_cpu())
        mixed = run_wrk(base=base, paths=mix, seconds=rps_seconds)
        cpu_app = cpu_since(cpu_before[0], workers)
        cpu_db = database_cpu_seconds() - cpu_before[1]
        cpu_wrk = _children_cpu() - cpu_before[2]
        load_during = os.getloadavg()[0]
        rss_start = {pid: _rss_kb(pid) for pid in workers}
        soak, rss_max = _soak(base, mix, soak_seconds, server.pid)
        workers_after = sorted(children(server.pid))
        rss_end = {pid: _rss_kb(pid) for pid in workers_after}

    report("load.mixed_rps", mixed["rps"], "req/s")
    met = mixed["rps"] >= 300 and mixed["non2xx"] == 0 and mixed["socket_errors"] == 0
    note(f"goal: load.mixed_rps >= 300 req/s with 0 non-2xx and 0 socket errors: {'met' if met else 'NOT met'}")
    report("load.mixed_requests", mixed["requests"], "requests")
    report("load.mixed_non2xx", mixed["non2xx"], "responses")
    report("load.mixed_socket_errors", mixed["socket_errors"], "errors")
    report("load.mixed_p50", mixed["p50"], "ms")
    report("load.mixed_p99", mixed["p99"], "ms")
    # CPU per request of the app, the database and the load generator: what two cores of its own
    # could serve, whatever else this shared machine runs meanwhile.
    app_ms, db_ms = cpu_app / mixed["requests"] * 1000, cpu_db / mixed["requests"] * 1000
    report("load.mixed_app_cpu_per_request", app_ms, "ms")
    report("load.mixed_db_cpu_per_request", db_ms, "ms")
    report("load.mixed_wrk_cpu_per_request", cpu_wrk / mixed["requests"] * 1000, "ms")
    report("load.mixed_capacity_two_cores_estimate", 2000 / (app_ms + db_ms), "req/s")
    report("load.load_average_before", load_before, "processes")
    report("load.load_average_after", load_during, "processes")
    report("load.soak_seconds", soak_seconds, "s")
    report("load.soak_requests", soak["requests"], "requests")
    report("load.soak_rps", soak["rps"], "req/s")
    report("load.soak_non2xx", soak["non2xx"] + soak["socket_errors"], "responses")
    if workers_after != workers:
        note(f"warning: gunicorn workers changed during the soak ({workers} → {workers_after}): RSS not comparable")
    start_mb, end_mb = sum(rss_start.values()) / 1024, sum(rss_end.values()) / 1024
    growth = (end_mb / start_mb - 1) * 100
    report("load.soak_rss_start", start_mb, "MB")
    report("load.soak_rss_end", end_mb, "MB")
    report("load.soak_rss_max", max(rss_max, end_mb), "MB")
    report("load.soak_rss_growth", growth, "%")
    worst = max((rss_end.get(pid, 0) / rss_start[pid] - 1) * 100 for pid in workers)
    report("load.soak_rss_growth_max_worker", worst, "%")
    soak_met = growth <= 10 and soak["non2xx"] + soak["socket_errors"] == 0
    note(f"goal: load.soak_rss_growth <= 10 % and load.soak_non2xx 0: {'met' if soak_met else 'NOT met'}")
    note(
        f"directory {amaps} AMAPs + {farms} farms; gunicorn {len(workers)} workers (scripts/serve.sh"
        f", {env.get('GUNICORN_THREADS', '4')} threads each); wrk 2 threads, "
        f"8 connections; load average {os.getloadavg()} on {os.cpu_count()} cores"
    )


def _children_cpu() -> float:
    """CPU seconds of this process's finished children (wrk runs as one)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _soak(base: str, mix: list[str], seconds: int, master: int) -> tuple[dict, float]:
    """wrk for `seconds`, in slices of at most a minute; the highest summed RSS seen between slices (MB)."""
    totals = {"requests": 0, "non2xx": 0, "socket_errors": 0}
    rss_max = 0.0
    started = time.perf_counter()
    remaining = seconds
    while remaining > 0:
        part = run_wrk(base=base, paths=mix, seconds=min(60, remaining))
        for key in totals:
            totals[key] += part[key]
        rss_max = max(rss_max, sum(_rss_kb(pid) for pid in children(master)) / 1024)
        remaining -= min(60, remaining)
    totals["rps"] = totals["requests"] / (time.perf_counter() - started)
    return totals, rss_max
