"""Maps (issue 4): /carte/ at 1k and 100k demo AMAPs (and as many farms), in headless Chromium.

Figures, for each size (`--quick`: 1k and 10k):
- maps.carte_html_kb_*: the /carte/ page's HTML (no point in it: data comes as tiles);
- maps.carte_server_ms_*: server time for that page (data version + template), in process;
- maps.initial_data_kb_* (goal ≤ 500 KB at 100k): the data the browser loads for the first view of France
  (1280×800, zoom 6): the vector tiles of both layers, as counted by the browser; maps.initial_tiles_*;
  maps.static_assets_kb: Leaflet, plugins, the map script and styles (cached by the browser after one visit);
- maps.initial_data_server_ms_*: server time to build those tiles from a cold cache (sum over tiles, in
  process), maps.initial_tile_max_ms_* the slowest tile, maps.initial_data_server_cached_ms_* the same
  from the tile cache;
- maps.points_drawn_cold_ms_* (goal < 3000 at 100k): from navigation start to the first view's markers
  drawn, on a running server whose tile cache is cold (as after a change in the directory), fresh
  browser; maps.points_drawn_ms_* the median of 3 more
  visits with a fresh browser cache; maps.markers_drawn_*: Leaflet markers in the view;
- maps.pan_ms_* and maps.zoom_paris_ms_*: a pan of 640 px, then a jump to Paris at zoom 12, until drawn;
- maps.points_drawn_ratio_100k_vs_1k (goal ≤ 2) and maps.initial_data_ratio_100k_vs_1k;
- maps.geojson_all_ms_* / _mb_*: every AMAP as one GeoJSON built by PostGIS (the download).
Served by gunicorn (DEBUG=0, 2 workers × 4 threads) on 127.0.0.1; tiles point at an unreachable host,
so that only the app is measured.
"""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from benchmarks.common import ensure_demo, note, report, timed

ROOT = Path(__file__).resolve().parent.parent
VIEWPORT = {"width": 1280, "height": 800}
UNREACHABLE_TILES = "http://tiles.invalid/{z}/{x}/{y}.png"

# Resolves with performance.now() (ms since navigation start) once the map's tiled layers have
# drawn their markers for the view, after the next frame is painted.
WAIT_DRAWN = """() => new Promise(resolve => {
    const check = () => {
        const c = window.atlasMaps && window.atlasMaps[0];
        if (c && c.loaded() && c.count('amaps') > 0) {
            requestAnimationFrame(() => requestAnimationFrame(() => resolve(performance.now())));
        } else {
            setTimeout(check, 5);
        }
    };
    check();
})"""


# Moves the map at once (no animation) and returns the time it started.
MOVE = "() => { const t = performance.now(); window.atlasMaps[0].map.%s; return t; }"


def _label(n: int) -> str:
    return f"{n // 1000}k" if n % 1000 == 0 else str(n)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_env() -> dict:
    return {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": "benchmark-only-not-secret",
        "LOCATION_MASK_KEY": "benchmark-only-not-secret",
        "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
        "SECURE_SSL_REDIRECT": "0",
        "LOG_LEVEL": "WARNING",
        "MAP_TILE_URL": UNREACHABLE_TILES,
    }


def _collectstatic() -> None:
    """Production settings serve hashed static files (WhiteNoise manifest): collect them once."""
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=_server_env(),
        check=True,
        stdout=subprocess.DEVNULL,
    )


class Gunicorn:
    def __init__(self):
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{self.port}"]
            + ["--workers", "2", "--threads", "4", "--log-level", "warning"],
            cwd=ROOT,
            env=_server_env(),
            stdout=subprocess.DEVNULL,
            stderr=sys.stderr,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{self.base}/static/vendor/VERSIONS", timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        # Workers answer their first requests slowly (imports, connections): warm them with the
        # page itself, not its tiles, so that "cold" means a cold tile cache on a running server.
        for _ in range(8):
            urllib.request.urlopen(f"{self.base}/carte/", timeout=30).read()
        return self

    def __exit__(self, *exc):
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=30)


def _visit(browser, base: str) -> dict:
    """One visit of /carte/ with a fresh browser cache: sizes, tile URLs, time until drawn."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    responses = []
    page.on("requestfinished", lambda request: responses.append(request))
    page.goto(f"{base}/carte/", wait_until="commit")
    drawn_ms = page.evaluate(WAIT_DRAWN)
    markers = page.locator(".leaflet-marker-icon").count()
    tiles, assets, html = [], 0, 0
    for request in list(responses):
        size = request.sizes()["responseBodySize"]
        path = request.url[len(base) :]
        if "/carte/tuiles/" in path:
            tiles.append((path, size))
        elif path.startswith("/static/"):
            assets += size
        elif path.startswith("/carte/"):
            html += size
    result = {"drawn_ms": drawn_ms, "markers": markers, "tiles": tiles, "assets": assets, "html": html}
    # Then a pan, and a jump to Paris, each until the markers are drawn.
    started = page.evaluate(MOVE % "panBy([640, 0], {animate: false})")
    result["pan_ms"] = page.evaluate(WAIT_DRAWN) - started
    started = page.evaluate(MOVE % "setView([48.8566, 2.3522], 12, {animate: false})")
    result["zoom_ms"] = page.evaluate(WAIT_DRAWN) - started
    context.close()
    return result


def _server_time(paths: list[str], client) -> tuple[float, float, float]:
    """(sum ms from a cold tile cache, slowest tile ms, sum ms from the cache) for these tile URLs."""
    from django.core.cache import cache

    cache.clear()
    cold = []
    for path in paths:
        with timed() as t:
            response = client.get(path)
        assert response.status_code == 200, (path, response.status_code)
        cold.append(t.ms)
    with timed() as warm:
        for path in paths:
            client.get(path)
    return sum(cold), max(cold), warm.ms


def _vacuum_analyze() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for table in ("directory_amap", "directory_farm", "directory_amap_products", "directory_farm_products"):
            cursor.execute(f"VACUUM ANALYZE {table}")


def _browser_visits(base: str) -> tuple[dict, list[dict]]:
    """A first visit (cold server cache) and three more, each with a fresh browser cache.

    Playwright's sync API runs an event loop: Django's database calls stay outside this function.
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking"],
        )
        try:
            cold = _visit(browser, base)
            warm = [_visit(browser, base) for _ in range(3)]
        finally:
            browser.close()
    return cold, warm


def bench_size(size: int, *, label: str) -> dict:
    from django.db import connections
    from django.test import Client

    ensure_demo(amaps=size, farms=size, seed=1)
    _vacuum_analyze()
    client = Client()

    html_times = []
    for _ in range(5):
        with timed() as t:
            response = client.get("/carte/")
        html_times.append(t.ms)
    assert response.status_code == 200
    report(f"maps.carte_html_kb_{label}", len(response.content) / 1024, "KB")
    report(f"maps.carte_server_ms_{label}", statistics.median(html_times), "ms")

    with timed() as t:
        geojson = client.get("/carte/donnees/amaps.geojson")
    report(f"maps.geojson_all_ms_{label}", t.ms, "ms")
    report(f"maps.geojson_all_mb_{label}", len(geojson.content) / 1e6, "MB")

    connections.close_all()  # gunicorn's workers open their own connections
    with Gunicorn() as server:
        cold, warm = _browser_visits(server.base)
    data_kb = sum(size for _, size in cold["tiles"]) / 1024
    report(f"maps.initial_data_kb_{label}", data_kb, "KB")
    report(f"maps.initial_tiles_{label}", len(cold["tiles"]), "tiles")
    report("maps.static_assets_kb", cold["assets"] / 1024, "KB")
    report(f"maps.points_drawn_cold_ms_{label}", cold["drawn_ms"], "ms")
    report(f"maps.points_drawn_ms_{label}", statistics.median(v["drawn_ms"] for v in warm), "ms")
    report(f"maps.markers_drawn_{label}", cold["markers"], "markers")
    report(f"maps.pan_ms_{label}", statistics.median(v["pan_ms"] for v in [cold, *warm]), "ms")
    report(f"maps.zoom_paris_ms_{label}", statistics.median(v["zoom_ms"] for v in [cold, *warm]), "ms")

    paths = [path for path, _ in cold["tiles"]]
    total, worst, cached = _server_time(paths, Client())
    report(f"maps.initial_data_server_ms_{label}", total, "ms")
    report(f"maps.initial_tile_max_ms_{label}", worst, "ms")
    report(f"maps.initial_data_server_cached_ms_{label}", cached, "ms")
    return {"drawn_ms": cold["drawn_ms"], "data_kb": data_kb}


def run(ctx) -> None:
    from django.conf import settings

    settings.MAP_TILE_URL = UNREACHABLE_TILES
    small = int(ctx.options.get("maps_small", 1000))
    large = int(ctx.options.get("maps_large", 10_000 if ctx.quick else 100_000))
    _collectstatic()
    results = {size: bench_size(size, label=_label(size)) for size in (small, large)}
    small_label, large_label = _label(small), _label(large)
    report(
        f"maps.points_drawn_ratio_{large_label}_vs_{small_label}",
        results[large]["drawn_ms"] / results[small]["drawn_ms"],
        "x",
    )
    report(
        f"maps.initial_data_ratio_{large_label}_vs_{small_label}",
        results[large]["data_kb"] / max(results[small]["data_kb"], 0.001),
        "x",
    )
    note(f"load average {os.getloadavg()}")
