"""AMAP files: the real Gironde directory, delivery days and hours, bad rows reported by row and column."""

import pytest
from django.contrib.gis.geos import Point

from directory.models import Amap, LocationPrecision

from .support import HEADER, SOURCE, assert_rejected, read_rows, write


def test_gironde_amaps_land_in_the_commune_of_the_file(gironde):
    rows = read_rows("amaps.csv")
    with_insee = [row for row in rows if row["insee"]]
    assert len(rows) == Amap.objects.filter(source=SOURCE).count() == 108
    assert len(with_insee) == 107
    communes = dict(Amap.objects.filter(source=SOURCE).values_list("external_id", "commune_id"))
    assert all(communes[row["id"]] == row["insee"] for row in with_insee)
    # The coordinates are kept as given.
    first = with_insee[0]
    amap = Amap.objects.get(source=SOURCE, external_id=first["id"])
    assert amap.location.coords == pytest.approx((float(first["lon"]), float(first["lat"])), abs=1e-9)
    assert amap.location_precision == LocationPrecision.EXACT


def test_gironde_amap_without_coordinates_is_placed_in_its_commune(gironde):
    (row,) = [row for row in read_rows("amaps.csv") if not row["lat"]]
    amap = Amap.objects.get(source=SOURCE, external_id=row["id"])
    assert amap.commune.name == row["ville"]  # Bègles
    assert amap.commune_id == "33039"  # INSEE code of Bègles
    assert amap.location_precision in {LocationPrecision.COMMUNE, LocationPrecision.POSTAL_CODE}
    assert amap.commune.geom.contains(Point(amap.location.x, amap.location.y, srid=4326))


def test_gironde_delivery_days_hours_and_status_are_understood(gironde):
    amaps = {a.external_id: a for a in Amap.objects.filter(source=SOURCE)}
    for row in read_rows("amaps.csv"):
        amap = amaps[row["id"]]
        if row["jour"] == "Mardi + Jeudi":
            assert amap.delivery_weekdays == [2, 4]
        if "tous les 15 jours" in row["horaire"]:
            assert amap.delivery_frequency == Amap.Frequency.FORTNIGHTLY
        if row["horaire"] == "18h30-19h30":
            assert (amap.delivery_start.isoformat(), amap.delivery_end.isoformat()) == ("18:30:00", "19:30:00")
        if row["jour"].startswith("Lundi et 3ieme vendredi"):
            assert amap.delivery_weekdays == [1, 5]
            assert row["jour"] in amap.delivery_notes  # the nuance is kept for people to read
        expected_status = {"actif": "active", "": "active", "fermé": "closed", "désabonné": "dormant"}[row["etat"]]
        assert amap.status == expected_status
        assert amap.platform == row["plateforme"]
        assert amap.rna_id == row["rna_id"]
        assert (amap.founded_on.isoformat() if amap.founded_on else "") == row["date_creation"]


GOOD = "OK1;AMAP correcte;Bordeaux;33000;44.8378;-0.5792\n"


@pytest.mark.parametrize(
    ("body", "fragments"),
    [
        ("X;AMAP perdue;Zzyzx-sur-Mer;;;\n", ["ligne 3", "colonne « ville »", "commune inconnue", "Zzyzx-sur-Mer"]),
        ("X;AMAP polaire;Bordeaux;33000;95;-0.57\n", ["ligne 3", "colonne « lat »", "entre -90 et 90"]),
        ("X;AMAP lointaine;Bordeaux;33000;44.8;200\n", ["ligne 3", "colonne « lon »", "entre -180 et 180"]),
        ("X;AMAP inversée;Bordeaux;33000;-0.5792;44.8378\n", ["ligne 3", "colonne « lat/lon »", "inversées"]),
        ("X;AMAP NaN;Bordeaux;33000;NaN;-0.57\n", ["ligne 3", "colonne « lat »", "n'est pas un nombre"]),
        ("X;AMAP infinie;Bordeaux;33000;44.8;inf\n", ["ligne 3", "colonne « lon »"]),
        ("X;AMAP madrilène;Madrid;;40.4168;-3.7038\n", ["ligne 3", "hors de France"]),
        ("X;;Bordeaux;33000;44.8;-0.57\n", ["ligne 3", "colonne « nom »", "le nom est vide"]),
        ("OK1;Doublon;Bordeaux;33000;44.8;-0.57\n", ["ligne 3", "colonne « id »", "figure déjà ligne 2"]),
        ("X;AMAP décimale;Bordeaux;33000;44,8378;-0,5792;trop\n", ["ligne 3", "7 valeurs pour 6 colonnes"]),
    ],
)
def test_bad_rows_are_reported_by_row_and_column_and_nothing_is_written(db, tmp_path, body, fragments):
    # The good first row is not written either: one transaction, all or nothing.
    assert_rejected(write(tmp_path, "amaps.csv", HEADER + GOOD + body), "amap", *fragments)


def test_every_bad_row_is_listed_not_only_the_first(db, tmp_path):
    body = "A;AMAP A;Bordeaux;33000;95;-0.57\nB;AMAP B;Nullepart-les-Bains;;;\n"
    message = assert_rejected(write(tmp_path, "amaps.csv", HEADER + body), "amap", "ligne 2", "ligne 3")
    assert "2 erreur(s)" in message
