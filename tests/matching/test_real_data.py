"""Real-data validation on the Gironde AMAP network's own producer links (../shared/data/amap-gironde-2026)."""

import pytest

from directory.models import Amap, Farm, Partnership
from matching.evaluation import GIRONDE_SOURCE, RecallReport, gironde_dir, gironde_import, leave_one_out_recall

pytestmark = pytest.mark.django_db

WIDEST_ANNONCE_RADIUS_KM = 300  # the most an annonce may state (form and API)


def test_leave_one_amap_out_recall_at_10_engine_vs_distance_baselines(capsys):
    assert (gironde_dir() / "amaps.csv").exists(), "the shared Gironde data set is missing"
    gironde_import()
    capsys.readouterr()  # the importer's report
    assert Amap.objects.filter(source=GIRONDE_SOURCE).count() >= 100
    assert Partnership.objects.filter(amap__source=GIRONDE_SOURCE).count() > 40
    # The file states no producer's delivery radius: none may be invented.
    assert not Farm.objects.filter(source=GIRONDE_SOURCE).exclude(delivery_radius_km=None).exists()

    for radius_km in (100, WIDEST_ANNONCE_RADIUS_KM):
        report = leave_one_out_recall(k=10, radius_km=radius_km)
        with capsys.disabled():
            print(
                f"\nGironde, {report.links} real links of {report.amaps} AMAPs, annonce radius {radius_km} km, "
                "recall@1/@3/@10: "
                + "; ".join(
                    f"{m} {report.recall(m, 1):.2f}/{report.recall(m, 3):.2f}/{report.recall(m):.2f}"
                    for m in RecallReport.METHODS
                )
            )
        assert report.amaps >= 5 and report.links >= 30
        # No farm is cut at a radius it never stated: the reach rules remove nothing more.
        assert report.ranks["engine"] == report.ranks["engine_no_reach"]
        # On the same question (farms within the annonce's radius) the engine finds at least as
        # many real partners in its first ten as the nearest-first ranking.
        assert report.recall("engine") >= report.recall("distance_within_radius")
        # The learned ranking (each AMAP left out of its features and training) is at least as good
        # as nearest-first on the same question at 1, 3 and 10.
        for at in (1, 3, 10):
            assert report.recall("learned", at) >= report.recall("distance_within_radius", at)
        # Every partner the nearest-first ranking over all farms finds and the engine does not is
        # farther than the annonce's radius: a question no annonce of that radius asks.
        baseline_only = report.details["baseline_only"]
        assert baseline_only["beyond_reach"] == baseline_only["checked"]
