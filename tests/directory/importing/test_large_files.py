"""Files of thousands of rows: read a chunk at a time, written in bulk, with the same report and history."""

import csv
import io

import pytest
from django.core.cache import cache
from django.core.management import call_command

from coverage.cache import CACHE_VERSION_KEY
from directory.importing import CHUNK_ROWS, directory_import
from directory.models import Amap, Farm
from directory.signals import farm_points_changed, rows_written
from geo.models import Commune

from .support import run_import

ROWS = 3000  # two chunks of the importer
HEADER = ["id", "nom", "insee", "code_postal", "ville", "lat", "lon", "jour", "horaire", "produits"]
DAYS = ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi"]


def gironde_rows(count: int) -> list[list[str]]:
    """`count` AMAPs spread over the communes of Gironde, each at its commune's reference point."""
    communes = list(
        Commune.objects.municipalities()
        .filter(department_id="33", point__isnull=False)
        .exclude(postal_codes=[])
        .order_by("code")
        .values_list("code", "name", "postal_codes", "point")
    )
    rows = []
    for n in range(count):
        code, name, postal_codes, point = communes[n % len(communes)]
        lat, lon = f"{point.y:.6f}", f"{point.x:.6f}"
        rows.append(
            [f"G{n:05d}", f"AMAP n° {n}", code, postal_codes[0], name, lat, lon, DAYS[n % 6], "18h-19h30", "légumes"]
        )
    return rows


def write_csv(path, rows) -> str:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return str(path)


def history(**filters):
    return Amap.history.model.objects.filter(source="big", **filters)


def test_importing_3000_rows_writes_each_once_with_its_history_and_a_second_import_changes_nothing(db, tmp_path):
    assert ROWS > CHUNK_ROWS  # the rows go through more than one chunk
    rows = gironde_rows(ROWS)
    path = write_csv(tmp_path / "amaps.csv", rows)

    report = run_import(path, "amap", "--source", "big", "--commit")

    assert f"Import de {path} (AMAP, source « big ») : {ROWS} ligne(s) lue(s)." in report
    assert f"AMAP : {ROWS} créée(s)" in report
    amaps = Amap.objects.filter(source="big")
    assert amaps.count() == ROWS
    assert amaps.filter(products__slug="legumes").count() == ROWS
    first, last = amaps.get(external_id="G00000"), amaps.get(external_id=f"G{ROWS - 1:05d}")
    assert (first.name, first.commune_id, first.delivery_weekdays) == ("AMAP n° 0", rows[0][2], [1])
    assert (last.delivery_start.isoformat(), last.delivery_end.isoformat()) == ("18:00:00", "19:30:00")
    assert last.location.coords == pytest.approx((float(rows[-1][6]), float(rows[-1][5])), abs=1e-6)
    # One history row per AMAP, "created", holding what was written.
    assert history(history_type="+").count() == ROWS and history().count() == ROWS
    assert history(external_id="G00000").get().name == "AMAP n° 0"
    # The report lists the first rows written and says how many more there were.
    assert "ligne 2 : AMAP « AMAP n° 0 » — création" in report
    assert f"(+ {ROWS - 1000} ligne(s) écrite(s) de plus" in report

    stamps = dict(amaps.values_list("external_id", "updated_at"))
    again = run_import(path, "amap", "--source", "big", "--commit")
    assert f"AMAP : {ROWS} inchangée(s)" in again and "créée" not in again
    assert amaps.count() == ROWS and history().count() == ROWS
    assert dict(amaps.values_list("external_id", "updated_at")) == stamps

    # Three rows change, one in each chunk and one at a chunk's edge: only they are written again.
    changed = {1: "jeudi", CHUNK_ROWS - 1: "vendredi", ROWS - 1: "dimanche"}
    for index, day in changed.items():
        rows[index][7] = day
    third = run_import(write_csv(tmp_path / "amaps-v2.csv", rows), "amap", "--source", "big", "--commit")
    assert f"AMAP : 3 mise(s) à jour, {ROWS - 3} inchangée(s)" in third
    assert f"ligne {CHUNK_ROWS + 1} : AMAP « AMAP n° {CHUNK_ROWS - 1} » — mise à jour (delivery_weekdays)" in third
    moved = {f"G{index:05d}" for index in changed}
    assert set(history(history_type="~").values_list("external_id", flat=True)) == moved
    assert amaps.get(external_id=f"G{ROWS - 1:05d}").delivery_weekdays == [7]
    now = dict(amaps.values_list("external_id", "updated_at"))
    assert {key for key in now if now[key] != stamps[key]} == moved


def test_bad_rows_in_the_middle_of_chunks_are_reported_by_row_and_nothing_is_written(db, tmp_path):
    rows = gironde_rows(ROWS)
    rows[999][5] = "95"  # file line 1001: a latitude out of range, mid-chunk
    rows[2499][2:5] = ["", "", "Zzyzx-sur-Mer"]  # line 2501: no coordinates, a commune nobody knows
    rows[2499][5:7] = ["", ""]
    rows[2998][0] = "G00010"  # line 3000: an id the file already gave on line 12
    rows[1500][9] = "xylophones"  # line 1502: an unknown product is only a warning
    path = write_csv(tmp_path / "amaps.csv", rows)

    report = directory_import(path=path, kind="amap", source="big", commit=True)

    assert not report.ok and not report.committed
    assert [(issue.row, issue.column) for issue in report.errors] == [(1001, "lat"), (2501, "ville"), (3000, "id")]
    assert "entre -90 et 90" in report.errors[0].message
    assert "commune inconnue : « Zzyzx-sur-Mer »" in report.errors[1].message
    assert "« G00010 » figure déjà ligne 12" in report.errors[2].message
    assert [(issue.row, issue.column) for issue in report.warnings] == [(1502, "produits")]
    assert report.rows_read == ROWS
    text = report.as_text()
    assert "3 erreur(s) — rien n'a été enregistré" in text and "créée" not in text
    assert not Amap.objects.filter(source="big").exists()
    assert not history().exists()

    # Once the three rows are put right, every row goes in, the warning still said.
    good = gironde_rows(ROWS)
    for index in (999, 2499, 2998):
        rows[index] = good[index]
    fixed = directory_import(path=write_csv(tmp_path / "fixed.csv", rows), kind="amap", source="big", commit=True)
    assert fixed.ok and fixed.committed and [issue.row for issue in fixed.warnings] == [1502]
    assert Amap.objects.filter(source="big").count() == ROWS


def test_progress_is_told_once_per_chunk(db, tmp_path):
    calls = []
    path = write_csv(tmp_path / "amaps.csv", gironde_rows(5))

    directory_import(path=path, kind="amap", source="big", progress=lambda *call: calls.append(call), chunk_rows=2)

    assert calls == [("read", 0, 0), ("check", 0, 5), ("check", 2, 5), ("check", 4, 5), ("check", 5, 5)]


def test_the_command_prints_one_progress_line_per_phase_end_and_the_report_on_stdout(db, tmp_path):
    out, err = io.StringIO(), io.StringIO()
    path = write_csv(tmp_path / "amaps.csv", gironde_rows(ROWS))
    call_command("import_directory", path, "--kind", "amap", "--source", "big", "--commit", stdout=out, stderr=err)
    assert f"écriture : {ROWS:,}/{ROWS:,} lignes".replace(",", "\u202f") in err.getvalue()
    assert f"AMAP : {ROWS} créée(s)" in out.getvalue()


FARMS_HEADER = "id,nom,produits,lat,lon\n"
FARMS = [("F1", -0.58, 44.84), ("F2", -0.50, 44.90), ("F3", -0.60, 44.80), ("F4", -0.24, 44.92), ("F5", -0.57, 44.83)]


def farms_file(tmp_path, name, farms):
    path = tmp_path / name
    lines = [f"{key},Ferme {key},légumes,{lat},{lon}\n" for key, lon, lat in farms]
    path.write_text(FARMS_HEADER + "".join(lines), encoding="utf-8")
    return path


def test_signals_other_apps_rely_on_fire_once_per_chunk_with_the_rows_written(db, tmp_path):
    points_moved, written = [], []

    def on_points(sender, farm_ids, **kwargs):
        points_moved.append(sorted(farm_ids))

    def on_written(sender, ids, **kwargs):
        written.append((sender.__name__, len(ids)))

    directory_import(path=farms_file(tmp_path, "v1.csv", FARMS), kind="farm", source="s", commit=True, chunk_rows=2)
    ids = dict(Farm.objects.filter(source="s").values_list("external_id", "pk"))
    version = cache.get(CACHE_VERSION_KEY)
    farm_points_changed.connect(on_points, dispatch_uid="test-points")
    rows_written.connect(on_written, dispatch_uid="test-written")
    try:
        # F2 and F4 move (one per chunk); the others stay where they were.
        moved = [(key, lon + (0.01 if key in {"F2", "F4"} else 0), lat) for key, lon, lat in FARMS]
        report = directory_import(
            path=farms_file(tmp_path, "v2.csv", moved), kind="farm", source="s", commit=True, chunk_rows=2
        )
    finally:
        farm_points_changed.disconnect(dispatch_uid="test-points")
        rows_written.disconnect(dispatch_uid="test-written")

    assert report.summary_lines() == ["ferme(s) : 2 mise(s) à jour, 3 inchangée(s)"]
    # Chunks [F1, F2], [F3, F4], [F5]: one signal for each chunk that moved a farm, with its ids.
    assert points_moved == [[ids["F2"]], [ids["F4"]]]
    assert written == [("Farm", 1), ("Farm", 1)]
    # Coverage drops its cached figures when rows are written in bulk.
    assert cache.get(CACHE_VERSION_KEY) != version
    # The public (masked) point moved with the exact one.
    f2 = Farm.objects.get(source="s", external_id="F2")
    assert f2.location.x == pytest.approx(-0.49) and f2.public_location.distance(f2.location) < 0.05
    assert Farm.history.model.objects.filter(external_id="F2", history_type="~").count() == 1


def test_an_xlsx_is_read_chunk_by_chunk_and_its_bar_ends_at_the_rows_it_holds(db, tmp_path):
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.append(HEADER)
    rows = gironde_rows(5)
    for row in rows[:3]:
        sheet.append(row)
    sheet.append([])  # a blank row: skipped, the next keeps its own line number
    for row in rows[3:]:
        sheet.append(row)
    sheet.cell(row=12, column=1).number_format = "0"  # formatting further down: the sheet says 12 rows
    path = tmp_path / "amaps.xlsx"
    workbook.save(path)
    calls = []

    report = directory_import(
        path=path, kind="amap", source="big", commit=True, progress=lambda *c: calls.append(c), chunk_rows=2
    )

    assert report.ok and report.rows_read == 5
    assert Amap.objects.get(external_id="G00003").name == "AMAP n° 3"
    # The bar's total is the sheet's own count until the end, which brings it to the rows there were.
    assert [c for c in calls if c[0] == "write"] == [("write", done, 11) for done in (0, 2, 4, 5)] + [("write", 5, 5)]
