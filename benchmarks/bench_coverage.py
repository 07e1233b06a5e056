"""Coverage (issue 6): all of France from scratch, and a network dashboard's server time.

Figures (`--quick`: 10k demo AMAPs instead of 100k):
- coverage.france_from_scratch_p50 / _max (goal < 5 s): every commune of France (arrondissements for
  Paris/Lyon/Marseille) against every active demo AMAP, one radius (10 km), reference-point method:
  communes and AMAP points read from PostGIS, KD-tree built, exact geodesic nearest distance,
  population covered; with its parts (`_load`, `_nearest`) and the share found;
- coverage.france_from_scratch_all_amaps_p50: the same with every demo AMAP (100k points, any status);
- coverage.france_white_zones: the white zones (communes and groups of adjacent communes) on top;
- coverage.national_network_full: `coverage_for_network` of a national network, not cached (every
  figure: départements, régions, 25 product gaps, history, opportunities);
- coverage.dashboard_{gironde,region}_cold / _cached_p50 / _cached_p95 (goal < 1 s cached) /
  _after_change: GET /reseau/<slug>/couverture/ through Django's test client for a départemental
  network (Gironde) and a régional one (Nouvelle-Aquitaine); `_cold` has an empty cache (code already
  imported); `_after_change` is the first request after
  an AMAP is added in the territory (the cache is refreshed: the page shows one more AMAP);
- coverage.light_{national,region}_html (goal < 300 KB for the national one) and
  coverage.light_{national,region}_drawn (goal < 2 s for the national one): the dashboards of the demo's
  national network and of Nouvelle-Aquitaine with the demo at its default size (2,000 AMAPs, 3,000 farms,
  seed 1): the page's HTML in bytes, and in headless Chromium (1366×900, fresh browser cache, figures
  already computed on the server) the time from navigation start until the map's layers are drawn
  (median of 3 visits; `_cold` is the first visit, when the server computes the layers); with
  `_goal_ratio` lines (goal / measured: above 1 is within the goal). Served by gunicorn (DEBUG=0,
  one worker so that its in-process cache serves every visit).
"""

from __future__ import annotations

import statistics

import numpy as np

from benchmarks.common import ensure_demo, measure, note, percentile, report, timed

RADIUS_KM = 10

LIGHT_DEMO = {"amaps": 2000, "farms": 3000, "seed": 1}  # `load_demo`'s default size
LIGHT_PAGES = (("national", "demo-national"), ("region", "demo-region-75"))  # Nouvelle-Aquitaine
LIGHT_HTML_GOAL_BYTES = 300 * 1024
LIGHT_DRAWN_GOAL_S = 2.0
LIGHT_VIEWPORT = {"width": 1366, "height": 900}

# Resolves with performance.now() (ms since navigation start) once the dashboard map is drawn: the
# light dashboard says so (`window.coverageMap.drawn`, its fetched layers on the map); a page that
# inlines its layers is drawn once loaded with its polygons on the map. Then one more frame painted.
WAIT_COVERAGE_DRAWN = """() => new Promise(resolve => {
    const check = () => {
        const state = window.coverageMap;
        const inline = !state && document.readyState === 'complete'
            && document.querySelector('#coverage-map path.leaflet-interactive');
        if ((state && state.drawn) || inline) {
            requestAnimationFrame(() => requestAnimationFrame(() => resolve(performance.now())));
        } else {
            setTimeout(check, 5);
        }
    };
    check();
})"""


def _amap_points(*, active_only: bool = True) -> tuple[np.ndarray, np.ndarray]:
    from django.db import connection

    where = "status = 'active'" if active_only else "TRUE"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT ST_X(location::geometry), ST_Y(location::geometry) FROM directory_amap WHERE {where}")
        rows = np.array(cursor.fetchall(), dtype=np.float64).reshape(-1, 2)
    return rows[:, 0], rows[:, 1]


def _france_from_scratch(*, active_only: bool = True) -> dict:
    from geo import coverage as gc

    with timed() as load:
        units = gc.load_units(everywhere=True)
        lon, lat = _amap_points(active_only=active_only)
    with timed() as nearest:
        points = gc.PointSet(lon, lat)
        distances = gc.nearest_distances(units=units, points=points)
        figure = gc.population_coverage(units=units, distances_m=distances, radius_km=RADIUS_KM)
    return {
        "load": load.seconds,
        "nearest": nearest.seconds,
        "figure": figure,
        "units": units,
        "distances": distances,
        "points": len(lon),
    }


def _network(slug: str, name: str, *, level: str, departments=(), regions=()):
    from directory.models import Network

    network, _created = Network.objects.get_or_create(slug=slug, defaults={"name": name, "level": level})
    network.departments.set(departments)
    network.regions.set(regions)
    return network


def _dashboard(label: str, network, ctx) -> None:
    from django.core.cache import cache
    from django.test import Client

    from directory.models import Amap
    from geo.models import Commune

    client = Client()
    url = f"/reseau/{network.slug}/couverture/?radius_km={RADIUS_KM}"
    client.get("/")  # imports and URL resolvers loaded: "cold" means the cache only
    cache.clear()
    with timed() as cold:
        response = client.get(url)
    assert response.status_code == 200, response.status_code
    report(f"coverage.dashboard_{label}_cold", cold.seconds, "s")
    report(f"coverage.dashboard_{label}_html", len(response.content) / 1e6, "MB")
    cached = measure(lambda: client.get(url), repeat=ctx.size(10, 4))
    report(f"coverage.dashboard_{label}_cached_p50", statistics.median(cached), "s")
    report(f"coverage.dashboard_{label}_cached_p95", percentile(cached, 95), "s")

    # A directory change: one more AMAP in the territory's largest commune.
    from coverage.figures import coverage_for_network

    before = coverage_for_network(network=network, radius_km=RADIUS_KM)["figures"]["amaps"]
    place = (
        Commune.objects.filter(department__in=network.departments.all())
        .union(Commune.objects.filter(region__in=network.regions.all()))
        .order_by("-population")
        .first()
    )
    amap = Amap.objects.create(name="AMAP de mesure (benchmark)", location=place.point, commune=place)
    try:
        with timed() as refreshed:
            response = client.get(url)
        after = coverage_for_network(network=network, radius_km=RADIUS_KM)["figures"]["amaps"]
        report(f"coverage.dashboard_{label}_after_change", refreshed.seconds, "s")
        report(f"coverage.dashboard_{label}_refreshed", int(after == before + 1), "bool")
        again = measure(lambda: client.get(url), repeat=3)
        report(f"coverage.dashboard_{label}_cached_after_change_p50", statistics.median(again), "s")
    finally:
        amap.delete()


def run(ctx) -> None:
    from geo import coverage as gc
    from geo.models import Department, Region

    if ctx.options.get("light") == "only":  # `--set light=only`: the dashboards' weight and draw time
        light_pages(ctx)
        return
    size = ctx.size(100_000, 10_000)
    ensure_demo(amaps=size, farms=size, seed=1)

    runs = [_france_from_scratch() for _ in range(ctx.size(5, 2))]
    totals = [r["load"] + r["nearest"] for r in runs]
    last = runs[-1]
    note(
        f"France: {len(last['units'])} communes/arrondissements, {last['points']} active AMAPs, {RADIUS_KM} km, "
        "reference-point method (point de référence de la commune)"
    )
    report("coverage.france_communes", len(last["units"]), "communes")
    report("coverage.france_amaps", last["points"], "amaps")
    report("coverage.france_from_scratch_p50", statistics.median(totals), "s")
    report("coverage.france_from_scratch_max", max(totals), "s")
    report("coverage.france_from_scratch_load_p50", statistics.median(r["load"] for r in runs), "s")
    report("coverage.france_from_scratch_nearest_p50", statistics.median(r["nearest"] for r in runs), "s")
    report("coverage.france_share_10km", last["figure"].share * 100, "%")
    report("coverage.france_goal_ratio", 5.0 / statistics.median(totals), "x")
    every = [_france_from_scratch(active_only=False) for _ in range(ctx.size(3, 1))]
    report("coverage.france_from_scratch_all_amaps_points", every[-1]["points"], "amaps")
    report(
        "coverage.france_from_scratch_all_amaps_p50", statistics.median(r["load"] + r["nearest"] for r in every), "s"
    )

    with timed() as zones:
        communes, groups = gc.white_zones(
            units=last["units"], distances_m=last["distances"], radius_km=RADIUS_KM, min_population=1000
        )
    report("coverage.france_white_zones", zones.seconds, "s")
    report("coverage.france_white_zone_communes", len(communes), "communes")

    from django.core.cache import cache

    from coverage.figures import coverage_for_network
    from directory.models import Network

    national = _network("bench-coverage-national", "Réseau national (mesure)", level=Network.Level.NATIONAL)
    cache.clear()
    with timed() as full:
        coverage_for_network(network=national, radius_km=RADIUS_KM, use_cache=False)
    report("coverage.national_network_full", full.seconds, "s")

    gironde = _network(
        "bench-coverage-gironde",
        "Réseau Gironde (mesure)",
        level=Network.Level.DEPARTMENTAL,
        departments=[Department.objects.get(code="33")],
    )
    _dashboard("gironde", gironde, ctx)
    region = _network(
        "bench-coverage-nouvelle-aquitaine",
        "Réseau Nouvelle-Aquitaine (mesure)",
        level=Network.Level.REGIONAL,
        regions=[Region.objects.get(code="75")],
    )
    _dashboard("region", region, ctx)

    light_pages(ctx)


def _light_visits(base: str, paths: list[str]) -> dict[str, list[float]]:
    """Per path: seconds until drawn, first visit then three more, each with a fresh browser cache.

    Playwright's sync API runs an event loop: Django's database calls stay outside this function.
    """
    from playwright.sync_api import sync_playwright

    times: dict[str, list[float]] = {path: [] for path in paths}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking"],
        )
        try:
            for path in paths:
                for _ in range(4):
                    context = browser.new_context(viewport=LIGHT_VIEWPORT)
                    page = context.new_page()
                    page.goto(base + path, wait_until="commit", timeout=120_000)
                    times[path].append(page.evaluate(WAIT_COVERAGE_DRAWN) / 1000)
                    context.close()
        finally:
            browser.close()
    return times


class _OneWorkerServer:
    """gunicorn with one worker (its in-process cache then serves every visit), DEBUG=0."""

    def __enter__(self):
        import subprocess
        import sys
        import time
        import urllib.request

        from benchmarks.bench_maps import ROOT, _collectstatic, _free_port, _server_env

        _collectstatic()
        port = _free_port()
        self.base = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{port}"]
            + ["--workers", "1", "--threads", "4", "--timeout", "300", "--log-level", "warning"],
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
                return self
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def __exit__(self, *exc):
        import os
        import signal

        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=30)


def light_pages(ctx) -> None:
    """The national and Nouvelle-Aquitaine dashboards: HTML weight and first view drawn (demo default size)."""
    from django.db import connections
    from django.test import Client

    ensure_demo(**LIGHT_DEMO)
    client = Client()
    paths = []
    for label, slug in LIGHT_PAGES:
        path = f"/reseau/{slug}/couverture/"
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code)
        report(f"coverage.light_{label}_html", len(response.content), "bytes")
        if label == "national":
            report("coverage.light_national_html_goal", LIGHT_HTML_GOAL_BYTES, "bytes")
            report("coverage.light_national_html_goal_ratio", LIGHT_HTML_GOAL_BYTES / len(response.content), "x")
        paths.append(path)
    connections.close_all()  # gunicorn's worker opens its own connections
    with _OneWorkerServer() as server:
        times = _light_visits(server.base, paths)
    for (label, _slug), path in zip(LIGHT_PAGES, paths, strict=True):
        cold, *warm = times[path]
        drawn = statistics.median(warm)
        report(f"coverage.light_{label}_drawn_cold", cold, "s")
        report(f"coverage.light_{label}_drawn", drawn, "s")
        if label == "national":
            report("coverage.light_national_drawn_goal", LIGHT_DRAWN_GOAL_S, "s")
            report("coverage.light_national_drawn_goal_ratio", LIGHT_DRAWN_GOAL_S / drawn, "x")
