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
  an AMAP is added in the territory (the cache is refreshed: the page shows one more AMAP).
"""

from __future__ import annotations

import statistics

import numpy as np

from benchmarks.common import ensure_demo, measure, note, percentile, report, timed

RADIUS_KM = 10


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
