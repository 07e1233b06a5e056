"""Coverage figures off the request path: the page asks, a job computes, the page shows them dated.

The worker runs in-process (tests/test_jobs.py `run_worker`); the coverage jobs do their database
work in Django's thread, hence on this test's connection and inside its transaction.
"""

import datetime as dt
import html

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils.timezone import localtime
from procrastinate.contrib.django.models import ProcrastinateJob

from coverage import figures, layers
from coverage.models import CoverageSnapshot
from directory.models import Amap, Network
from tests.coverage.test_coverage import ARCACHON, small_directory  # noqa: F401  (fixture)
from tests.factories import BORDEAUX, AmapFactory, NetworkFactory, commune
from tests.test_jobs import _defer_due, _utc, run_worker

pytestmark = pytest.mark.django_db

REFRESH = "coverage.tasks.coverage_refresh"
REFRESH_STALE = "coverage.tasks.coverage_refresh_stale"


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def computations(monkeypatch):
    """How many times the figures (and the white zones' unions) were computed."""
    calls = {"figures": 0, "zones": 0}
    compute, zones = figures._compute, layers.zone_shapes_compute

    def counting_compute(**kwargs):
        calls["figures"] += 1
        return compute(**kwargs)

    def counting_zones(result):
        calls["zones"] += 1
        return zones(result)

    monkeypatch.setattr(figures, "_compute", counting_compute)
    monkeypatch.setattr(layers, "zone_shapes_compute", counting_zones)
    return calls


def jobs(name):
    return ProcrastinateJob.objects.filter(task_name=name).order_by("pk")


def test_first_visit_queues_one_job_then_the_worker_fills_the_page_with_dated_figures(
    client,
    small_directory,  # noqa: F811
    computations,  # noqa: F811
):
    url = reverse("coverage:network_coverage", args=[small_directory.slug])
    first = client.get(url, {"radius_km": 5})
    assert first.status_code == 200
    text = first.content.decode()
    assert computations == {"figures": 0, "zones": 0}  # nothing computed inside the request
    assert "mise à jour en cours" in text and 'id="coverage-pending"' in text
    assert 'id="figure-amaps"' not in text
    assert "coverage/refresh.js" in text and "onclick" not in text  # CSP: the script is a file
    [job] = jobs(REFRESH)
    assert job.status == "todo" and job.args == {
        "network_id": small_directory.pk,
        "params": {"radius_km": 5.0, "product": None, "min_population": 1000},
    }
    # A second visitor (or a reload) does not queue the same work twice.
    client.get(url, {"radius_km": "5,0"})
    assert jobs(REFRESH).count() == 1
    status_url = reverse("coverage:network_coverage_status", args=[small_directory.slug])
    status = client.get(status_url, {"radius_km": 5}).json()
    assert status == {"ready": False, "fresh": False, "updating": True, "computed_at": None}

    run_worker("coverage")

    job.refresh_from_db()
    assert job.status == "succeeded"
    assert computations == {"figures": 1, "zones": 1}
    snapshot = CoverageSnapshot.objects.get(network=small_directory)
    assert snapshot.params_key == "5:-:1000" and snapshot.data["figures"]["amaps"] == 3
    status = client.get(status_url, {"radius_km": 5}).json()
    assert status["ready"] and status["fresh"] and not status["updating"]
    assert status["computed_at"] == snapshot.computed_at.isoformat(timespec="seconds")

    page = client.get(url, {"radius_km": 5}).content.decode()
    assert computations == {"figures": 1, "zones": 1}
    assert 'id="figure-amaps"' in page and "mise à jour en cours" not in page
    assert f"Chiffres du {localtime(snapshot.computed_at).day}" in page
    # The map's white zones come from the outlines the job merged.
    config_url = reverse("coverage:network_coverage_layer", args=[small_directory.slug, "zones"])
    zones = client.get(config_url, {"radius_km": 5, "z": 9}).json()
    assert zones["features"] and computations["zones"] == 1
    assert jobs(REFRESH).count() == 1  # fresh figures ask for nothing


def test_a_directory_change_marks_figures_stale_and_queues_exactly_one_refresh(
    client,
    small_directory,  # noqa: F811
    computations,  # noqa: F811
):
    url = reverse("coverage:network_coverage", args=[small_directory.slug])
    client.get(url, {"radius_km": 5})
    run_worker("coverage")
    computed_at = CoverageSnapshot.objects.get().computed_at

    AmapFactory(name="AMAP Arcachon", location=ARCACHON, commune=commune("33009"))
    Amap.objects.get(name="AMAP Arcachon").products.add(*[])  # a second change, through the m2m too
    Amap.objects.get(name="AMAP Bordeaux").save()
    snapshot = CoverageSnapshot.objects.get()
    assert snapshot.stale
    [refresh] = jobs(REFRESH_STALE)
    assert refresh.status == "todo"

    # Meanwhile visitors get the last figures at once, dated, with « mise à jour en cours ».
    before = computations["figures"]
    page = client.get(url, {"radius_km": 5}).content.decode()
    assert computations["figures"] == before
    assert 'id="figure-amaps"' in page and "mise à jour en cours" in page and "Chiffres du" in page

    run_worker("coverage")

    snapshot.refresh_from_db()
    assert not snapshot.stale and snapshot.computed_at > computed_at
    assert snapshot.data["figures"]["amaps"] == 4
    page = client.get(url, {"radius_km": 5}).content.decode()
    assert "mise à jour en cours" not in page


def test_a_bulk_write_without_signal_is_seen_by_the_next_visit(client, small_directory):  # noqa: F811
    url = reverse("coverage:network_coverage", args=[small_directory.slug])
    client.get(url)
    run_worker("coverage")
    Amap.objects.bulk_create([Amap(name="AMAP importée", location=BORDEAUX, commune=commune("33063"))])
    assert "mise à jour en cours" in client.get(url).content.decode()
    assert jobs(REFRESH).filter(status="todo").count() == 1
    run_worker("coverage")
    assert CoverageSnapshot.objects.get().data["figures"]["amaps"] == 4


def test_downloads_and_layers_wait_for_the_job_instead_of_computing(
    client,
    small_directory,  # noqa: F811
    computations,  # noqa: F811
):
    base = reverse("coverage:network_coverage", args=[small_directory.slug])
    response = client.get(base + "communes.csv", {"radius_km": 5})
    assert response.status_code == 503 and response["Retry-After"]
    assert "en cours de calcul" in response.content.decode()
    layer = client.get(reverse("coverage:network_coverage_layer", args=[small_directory.slug, "zones"]))
    assert layer.status_code == 503 and "status" in layer.json()
    assert computations == {"figures": 0, "zones": 0}
    run_worker("coverage")
    assert client.get(base + "communes.csv", {"radius_km": 5}).status_code == 200


def test_a_network_without_territory_is_told_at_once_without_a_job(client):
    lost = NetworkFactory(level=Network.Level.REGIONAL)
    page = html.unescape(client.get(reverse("coverage:network_coverage", args=[lost.slug])).content.decode())
    assert "n'a pas de territoire" in page and "mise à jour en cours" not in page
    assert not jobs(REFRESH).exists()


def test_the_nightly_job_computes_every_network_default_figures(small_directory):  # noqa: F811
    national = NetworkFactory(slug="national", level=Network.Level.NATIONAL)
    _defer_due(_utc(2027, 3, 1, 3, 15, 5))
    [nightly] = jobs("coverage.tasks.coverage_refresh_nightly")
    assert nightly.queue_name == "coverage"
    run_worker("coverage")
    nightly.refresh_from_db()
    assert nightly.status == "succeeded"
    snapshots = {s.network_id: s for s in CoverageSnapshot.objects.all()}
    assert set(snapshots) == {small_directory.pk, national.pk}
    assert all(s.params_key == "10:-:1000" and s.data for s in snapshots.values())
    assert snapshots[national.pk].data["figures"]["communes"] > 34_000
    # Unused snapshots for other parameters are dropped after a month; the defaults stay.
    old = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    CoverageSnapshot.objects.update(computed_at=old)
    CoverageSnapshot.objects.create(
        network=national, params_key="7:-:1000", params={}, computed_at=old, directory_version="x"
    )
    from coverage.snapshots import snapshots_refresh_nightly

    assert snapshots_refresh_nightly()[1] == 1
    assert not CoverageSnapshot.objects.filter(params_key="7:-:1000").exists()
