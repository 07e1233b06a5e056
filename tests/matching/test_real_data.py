"""Real-data validation on the Gironde AMAP network's own producer links (../shared/data/amap-gironde-2026)."""

import pytest
from pyproj import Geod

from directory.models import Amap, Partnership
from matching.evaluation import GIRONDE_SOURCE, RecallReport, gironde_dir, gironde_import, leave_one_out_recall

pytestmark = pytest.mark.django_db
GEOD = Geod(ellps="WGS84")


def test_leave_one_amap_out_recall_at_10_engine_vs_distance_baseline(capsys):
    assert (gironde_dir() / "amaps.csv").exists(), "the shared Gironde data set is missing"
    gironde_import()
    capsys.readouterr()  # the importer's report
    assert Amap.objects.filter(source=GIRONDE_SOURCE).count() >= 100
    assert Partnership.objects.filter(amap__source=GIRONDE_SOURCE).count() > 40

    report = leave_one_out_recall(k=10, radius_km=100)

    with capsys.disabled():
        print(
            f"\nGironde, {report.links} real links of {report.amaps} AMAPs, recall@1/@3/@10: "
            + "; ".join(
                f"{m} {report.recall(m, 1):.2f}/{report.recall(m, 3):.2f}/{report.recall(m):.2f}"
                for m in RecallReport.METHODS
            )
        )
    assert report.amaps >= 5 and report.links >= 30
    # Within 100 km and without the farms' default delivery radius, the engine's ranking finds
    # nearly every real partner in its first ten (0.87 measured; the baseline's 0.94 includes
    # partners 100 to 875 km away, which no AMAP annonce with a 100 km limit would propose).
    assert report.recall("engine_no_reach") >= 0.8


def test_every_partner_the_full_engine_misses_but_the_relaxed_one_finds_is_beyond_a_reach_rule(capsys):
    gironde_import()
    capsys.readouterr()
    report = leave_one_out_recall(k=10, radius_km=100)
    explained = report.details["reach_explained"]
    assert explained["checked"] > 0
    assert explained["beyond_reach"] == explained["checked"]
