"""export_directory: GeoJSON and CSV that import_directory reads back, farms shown masked only."""

import csv
import io
import json
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from directory.models import Amap, Farm, Partnership
from tests.factories import AmapFactory, FarmFactory, PartnershipFactory

GIRONDE = Path(settings.BASE_DIR).parent / "shared" / "data" / "amap-gironde-2026"
SOURCE = "gironde-2026"


def run(command, *args):
    out = io.StringIO()
    call_command(command, *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def gironde(db):
    run("import_directory", str(GIRONDE / "amaps.csv"), "--kind", "amap", "--source", SOURCE, "--commit")
    run("import_directory", str(GIRONDE / "producteurs.csv"), "--kind", "farm", "--source", SOURCE, "--commit")


def snapshot():
    return (
        sorted(Amap.objects.values_list("external_id", "updated_at")),
        sorted(Farm.objects.values_list("external_id", "updated_at")),
        sorted(Partnership.objects.values_list("amap_id", "farm_id", "product_id", "updated_at")),
    )


def test_amap_csv_export_imports_back_unchanged(gironde, tmp_path):
    path = tmp_path / "amaps.csv"
    assert "108 fiche(s) écrite(s)" in run(
        "export_directory", "--format", "csv", "--kind", "amap", "--output", str(path)
    )
    before = snapshot()
    report = run("import_directory", str(path), "--kind", "amap", "--source", SOURCE, "--commit")
    assert "AMAP : 108 inchangée(s)" in report
    assert snapshot() == before


def test_partnership_csv_export_imports_back_unchanged(gironde, tmp_path):
    path = tmp_path / "partenariats.csv"
    run("export_directory", "--format", "csv", "--kind", "partnership", "--output", str(path))
    with path.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == Partnership.objects.count()
    assert len({(row["amap_id"], row["producteur_id"]) for row in rows}) == 110
    before = snapshot()
    report = run("import_directory", str(path), "--kind", "partnership", "--source", SOURCE, "--commit")
    assert f"partenariat(s) : {len(rows)} inchangée(s)" in report
    assert snapshot() == before


def test_geojson_export_has_amaps_and_farms_with_masked_points_only(gironde, tmp_path):
    path = tmp_path / "annuaire.geojson"
    run("export_directory", "--format", "geojson", "--output", str(path))
    collection = json.loads(path.read_text(encoding="utf-8"))
    assert collection["type"] == "FeatureCollection"
    amaps = [f for f in collection["features"] if f["properties"]["objet"] == "amap"]
    farms = [f for f in collection["features"] if f["properties"]["objet"] == "ferme"]
    assert (len(amaps), len(farms)) == (108, 132)

    by_id = {f.external_id: f for f in Farm.objects.filter(source=SOURCE)}
    located = [f for f in farms if f["geometry"] is not None]
    assert len(located) == Farm.objects.exclude(public_location=None).count()
    for feature in located:
        farm = by_id[feature["properties"]["id"]]
        assert feature["geometry"]["coordinates"] == pytest.approx(list(farm.public_location.coords), abs=1e-8)
        if farm.location_precision not in {"commune", "postal_code"}:
            assert feature["geometry"]["coordinates"] != pytest.approx(list(farm.location.coords), abs=1e-4)
    for feature in farms:
        assert not {"email", "telephone", "adresse"} & set(feature["properties"])

    # Every AMAP of the source file comes back with its delivery day, hours and INSEE code.
    with open(GIRONDE / "amaps.csv", encoding="utf-8") as handle:
        source_rows = [
            row
            for row in csv.DictReader(handle)
            if row["jour"] and re.fullmatch(r"\d\dh\d\d-\d\dh\d\d", row["horaire"], re.I) and row["insee"]
        ]
    assert len(source_rows) >= 10
    exported = {f["properties"]["id"]: f["properties"] for f in amaps}
    for row in source_rows[:10]:
        assert exported[row["id"]]["jour"] == row["jour"]
        # Hours come back in the importer's normal form ("19H30" → "19h30").
        assert exported[row["id"]]["horaire"].lower() == row["horaire"].lower().replace(" ", "")
        assert exported[row["id"]]["insee"] == row["insee"]


def test_farm_csv_never_contains_exact_points_or_private_contacts(db, tmp_path):
    farm = FarmFactory(contact_email="paysanne@example.org", phone="06 00 00 00 00", address="1 chemin privé")
    text = run("export_directory", "--format", "csv", "--kind", "farm")
    (row,) = list(csv.DictReader(io.StringIO(text)))
    assert (float(row["lon"]), float(row["lat"])) == pytest.approx(farm.public_location.coords, abs=1e-9)
    assert (float(row["lon"]), float(row["lat"])) != pytest.approx(farm.location.coords, abs=1e-4)
    assert row["precision"] == "approximatif"
    assert "paysanne@example.org" not in text and "06 00" not in text and "chemin privé" not in text


def test_export_filters_by_source_and_reads_back_into_another_database_shape(db, tmp_path):
    AmapFactory(source="a", external_id="1", name="AMAP un", contact_email="contact@amap.example")
    AmapFactory(source="b", external_id="2", name="AMAP deux")
    PartnershipFactory()
    text = run("export_directory", "--format", "csv", "--kind", "amap", "--source", "a")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [row["nom"] for row in rows] == ["AMAP un"]
    assert rows[0]["email"] == "contact@amap.example"  # an AMAP's public contact


def test_csv_needs_a_kind_and_partnerships_have_no_geometry(db):
    with pytest.raises(CommandError, match="précisez --kind"):
        run("export_directory", "--format", "csv")
    with pytest.raises(CommandError, match="pas de géométrie"):
        run("export_directory", "--format", "geojson", "--kind", "partnership")
