"""Load (issue 13): mixed public reads against the production server, then a soak for worker memory.

The production path as `scripts/serve.sh` runs it (collectstatic, gunicorn with its default workers,
`DEBUG=0`), on 127.0.0.1 and a free port, serving the benchmark database. wrk (2 threads, 8
connections) sends an even mix of five reads, each request another URL of its kind:
home `/`, the search page `/recherche/?q=<town>`, the nearest API `/api/v1/amaps/?near=…&limit=10`,
a vector tile `/carte/tuiles/amaps/z/x/y.pbf?v=<data version>` (as the map asks), an AMAP page.

Figures (`--quick`: 10 s of throughput, a 60 s soak instead of 10 minutes):
- load.mixed_rps (goal ≥ 300 req/s on the 2 cores), load.mixed_non2xx and load.mixed_socket_errors
  (goal 0), load.mixed_p50 / load.mixed_p99;
- load.soak_seconds, load.soak_requests, load.soak_non2xx (goal 0);
- load.soak_rss_start / load.soak_rss_end: the gunicorn workers' resident memory summed (MB), sampled
  after the throughput run (warm) and at the end of the soak; load.soak_rss_growth (goal ≤ 10 %) and
  load.soak_rss_growth_max_worker (the worst single worker).

Also load.mixed_app_cpu_per_request / load.mixed_db_cpu_per_request (CPU time of the gunicorn workers
and of their PostgreSQL backends per request) and load.mixed_capacity_two_cores_estimate = 2000 ms / their
sum: the throughput two cores of its own would give, on a machine shared with others.

Options (`--set key=value`): collectstatic=0 (already collected), load_amaps (directory size, default:
what the database holds among 100k/10k, else 10k), workers (default: serve.sh's 2 × cores + 1),
rps_duration, soak_duration (seconds).
Traffic goes only to 127.0.0.1 and every run is bounded in time.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from benchmarks.bench_search import (
    HUGE_RATE,
    _children,
    _cpu_seconds,
    _database_backends,
    _free_port,
    _wait_for,
    query_points,
)
from benchmarks.common import ensure_demo, note, report

ROOT = Path(__file__).resolve().parent.parent
TOWNS = ["Bordeaux", "Lyon", "Lille", "Nantes", "Rennes", "Dijon", "Limoges", "Montpellier", "33000", "Brest"]

LUA = """
-- Round-robin over the mixed URLs; statuses other than 200 are counted.
local paths = {%(paths)s}
local threads = {}
function setup(thread)
  thread:set("offset", #threads * 997)
  table.insert(threads, thread)
end
function init(args)
  index = offset
  non200 = 0
end
function request()
  index = index + 1
  return wrk.format("GET", paths[(index %% #paths) + 1])
end
function response(status, headers, body)
  if status ~= 200 then non200 = non200 + 1 end
end
function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do total = total + thread:get("non200") end
  io.write(string.format("non200 %%d\\n", total))
  io.write(string.format("p50_ms %%.3f\\n", latency:percentile(50) / 1000))
  io.write(string.format("p99_ms %%.3f\\n", latency:percentile(99) / 1000))
end
"""


def _directory_size(ctx) -> int:
    from directory.demo import demo_matches

    if "load_amaps" in ctx.options:
        return int(ctx.options["load_amaps"])
    for size in (100_000, 10_000):
        if demo_matches(amaps=size, farms=size, seed=1):
            return size
    return 10_000


def mixed_paths(count: int = 200) -> list[str]:
    """`count` URLs of each kind, interleaved: home, search page, nearest API, tile, AMAP page."""
    from directory.models import Amap
    from maps import selectors

    points = query_points(count, seed=7)
    version = selectors.data_version()
    amap_ids = list(Amap.objects.filter(status=Amap.Status.ACTIVE).order_by("?").values_list("pk", flat=True)[:count])
    paths = []
    for i, (lon, lat) in enumerate(points):
        z = 6 + i % 6  # zoom 6 to 11: from a région to a town, as people browse the map
        x, y = tile_of(lon, lat, z)
        paths += [
            "/",
            f"/recherche/?q={TOWNS[i % len(TOWNS)]}",
            f"/api/v1/amaps/?near={lon},{lat}&limit=10",
            f"/carte/tuiles/amaps/{z}/{x}/{y}.pbf?v={version}",
            f"/amap/{amap_ids[i % len(amap_ids)]}/",
        ]
    return paths


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    """The XYZ (Web Mercator) tile holding a point."""
    n = 2**z
    return int((lon + 180.0) / 360.0 * n), int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)


def _rss_kb(pid: int) -> int:
    """Resident memory of a process (VmRSS in /proc; psutil is not a dependency)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _wrk(wrk: str, base: str, script: str, seconds: int) -> dict[str, float]:
    result = subprocess.run(
        [wrk, "-t2", "-c8", f"-d{seconds}s", "--timeout", "5s", "-s", script, base],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    )
    output = result.stdout
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "requests": int(re.search(r"(\d+) requests in", output).group(1)),
        "non2xx": int(re.search(r"non200 (\d+)", output).group(1)),
        "socket_errors": sum(int(x) for x in socket_errors.groups()) if socket_errors else 0,
        "p50": float(re.search(r"p50_ms ([\d.]+)", output).group(1)),
        "p99": float(re.search(r"p99_ms ([\d.]+)", output).group(1)),
    }


def run(ctx) -> None:
    wrk = shutil.which("wrk")
    if wrk is None:
        note("wrk not installed: load test skipped (scripts/system-deps.sh installs it)")
        return
    from django.db import connections

    size = _directory_size(ctx)
    ensure_demo(amaps=size, farms=size, seed=1)
    paths = mixed_paths()
    connections.close_all()  # the workers open their own connections

    port = int(ctx.options.get("port", 0)) or _free_port()
    env = {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": "benchmark-only-not-secret",
        "LOCATION_MASK_KEY": "benchmark-only-not-secret-either",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0",  # plain HTTP on the loopback, no TLS proxy in front
        "HOST": "127.0.0.1",
        "PORT": str(port),
        # One client makes all the requests: the API's per-visitor throttle would stop it.
        "API_THROTTLE_ANON": HUGE_RATE,
        "API_THROTTLE_USER": HUGE_RATE,
        "LOG_LEVEL": "WARNING",
    }
    if "workers" in ctx.options:
        env["WEB_CONCURRENCY"] = ctx.options["workers"]
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
    log_path = ROOT / ".var" / "log" / "bench_load_server.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            ["bash", str(ROOT / "scripts" / "serve.sh")],
            cwd=ROOT,
            env={**env, "COLLECTSTATIC": "0"},
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    script = None
    try:
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_for(f"{base}/healthz", timeout=120)
        except OSError:
            note(f"the server did not answer: see {log_path}")
            raise
        for path in paths[:100]:  # every worker connects and warms up
            urllib.request.urlopen(f"{base}{path}", timeout=30).read()
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
            handle.write(LUA % {"paths": ",".join(f'"{p}"' for p in paths)})
            script = handle.name

        workers = sorted(_children(server.pid))  # serve.sh execs gunicorn: server.pid is the master
        database_pids = _database_backends()
        cpu_before = (_cpu_seconds(workers), _cpu_seconds(database_pids))
        mixed = _wrk(wrk, base, script, int(ctx.options.get("rps_duration", 10 if ctx.quick else 20)))
        cpu_app = _cpu_seconds(workers) - cpu_before[0]
        cpu_db = _cpu_seconds(database_pids) - cpu_before[1]
        rss_start = {pid: _rss_kb(pid) for pid in workers}
        soak_seconds = int(ctx.options.get("soak_duration", 60 if ctx.quick else 600))
        soak = _wrk(wrk, base, script, soak_seconds)
        workers_after = sorted(_children(server.pid))
        rss_end = {pid: _rss_kb(pid) for pid in workers_after}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        if script:
            os.unlink(script)

    report("load.mixed_rps", mixed["rps"], "req/s")
    note("goal: load.mixed_rps >= 300 req/s with 0 non-2xx and 0 socket errors")
    report("load.mixed_requests", mixed["requests"], "requests")
    report("load.mixed_non2xx", mixed["non2xx"], "responses")
    report("load.mixed_socket_errors", mixed["socket_errors"], "errors")
    report("load.mixed_p50", mixed["p50"], "ms")
    report("load.mixed_p99", mixed["p99"], "ms")
    # CPU per request of the app and of the database: what two cores of its own could serve,
    # whatever else this shared machine runs meanwhile.
    app_ms, db_ms = cpu_app / mixed["requests"] * 1000, cpu_db / mixed["requests"] * 1000
    report("load.mixed_app_cpu_per_request", app_ms, "ms")
    report("load.mixed_db_cpu_per_request", db_ms, "ms")
    report("load.mixed_capacity_two_cores_estimate", 2000 / (app_ms + db_ms), "req/s")
    report("load.soak_seconds", soak_seconds, "s")
    report("load.soak_requests", soak["requests"], "requests")
    report("load.soak_rps", soak["rps"], "req/s")
    report("load.soak_non2xx", soak["non2xx"] + soak["socket_errors"], "responses")
    if workers_after != workers:
        note(f"warning: gunicorn workers changed during the soak ({workers} → {workers_after}): RSS not comparable")
    start_mb, end_mb = sum(rss_start.values()) / 1024, sum(rss_end.values()) / 1024
    report("load.soak_rss_start", start_mb, "MB")
    report("load.soak_rss_end", end_mb, "MB")
    report("load.soak_rss_growth", (end_mb / start_mb - 1) * 100, "%")
    worst = max((rss_end.get(pid, 0) / rss_start[pid] - 1) * 100 for pid in workers)
    report("load.soak_rss_growth_max_worker", worst, "%")
    note("goal: load.soak_rss_growth <= 10 % and load.soak_non2xx 0")
    note(
        f"directory {size} AMAPs + {size} farms; gunicorn {len(workers)} sync workers (scripts/serve.sh); "
        f"wrk 2 threads, 8 connections; load average {os.getloadavg()} on {os.cpu_count()} cores"
    )
