"""The import as a whole: one transaction, dry run by default, re-imports that change nothing."""

from directory.importing import directory_import
from directory.models import Amap, Farm, Partnership

from .support import GIRONDE, SOURCE, import_gironde, run_import, write


def test_importing_gironde_twice_changes_nothing(gironde):
    def snapshot():
        return (
            sorted(Amap.objects.values_list("external_id", "updated_at")),
            sorted(Farm.objects.values_list("external_id", "updated_at")),
            sorted(Partnership.objects.values_list("amap_id", "farm_id", "product_id", "updated_at")),
        )

    before = snapshot()
    amaps_report, farms_report = import_gironde()
    assert snapshot() == before
    assert "AMAP : 108 inchangée(s)" in amaps_report
    assert "ferme(s) : 132 inchangée(s)" in farms_report
    assert "créée" not in amaps_report + farms_report and "mise(s) à jour" not in amaps_report + farms_report


def test_dry_run_reports_what_it_would_do_and_writes_nothing(db):
    report = run_import(GIRONDE / "amaps.csv", "amap", "--source", SOURCE)
    assert "AMAP : 108 à créer" in report
    assert "Simulation : rien n'a été enregistré" in report
    assert Amap.objects.count() == 0


def test_a_changed_row_is_updated_and_the_others_left_alone(db, tmp_path):
    text = (
        "id;nom;ville;code_postal;jour;horaire\n"
        "A1;AMAP du Lac;Bordeaux;33300;mardi;18h-19h\n"
        "A2;AMAP Sud;Bègles;33130;jeudi;18h-19h\n"
    )
    run_import(write(tmp_path, "v1.csv", text), "amap", "--source", "t", "--commit")
    untouched = Amap.objects.get(external_id="A2").updated_at
    report = run_import(
        write(tmp_path, "v2.csv", text.replace("mardi;18h-19h", "mercredi;18h-19h")),
        "amap",
        "--source",
        "t",
        "--commit",
    )
    assert "ligne 2 : AMAP « AMAP du Lac » — mise à jour (delivery_weekdays)" in report
    assert Amap.objects.get(external_id="A1").delivery_weekdays == [3]
    assert Amap.objects.get(external_id="A2").updated_at == untouched
    assert Amap.objects.count() == 2


def test_rows_without_an_id_column_get_a_stable_identity(db, tmp_path):
    path = write(tmp_path, "sans_id.csv", "nom,commune,cp\nAMAP des Chartrons,Bordeaux,33300\n")
    run_import(path, "amap", "--source", "t", "--commit")
    report = run_import(path, "amap", "--source", "t", "--commit")
    assert Amap.objects.count() == 1
    assert "AMAP : 1 inchangée(s)" in report


def test_the_report_function_can_be_used_without_the_command(db, tmp_path):
    report = directory_import(
        path=write(tmp_path, "a.csv", "nom;ville\nAMAP;Nowhere-on-Thames\n"), kind="amap", source="x"
    )
    assert not report.ok
    (issue,) = report.errors
    assert (issue.row, issue.column) == (2, "ville")
