"""import_directory on the real Gironde directory, on bad files, and on every supported format."""

import csv
import io
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.gis.geos import Point
from django.core.management import CommandError, call_command

from directory.importers import directory_import
from directory.models import Amap, Farm, LocationPrecision, Partnership

GIRONDE = Path(settings.BASE_DIR).parent / "shared" / "data" / "amap-gironde-2026"
SOURCE = "gironde-2026"


def run_import(path, kind, *options):
    out = io.StringIO()
    call_command("import_directory", str(path), "--kind", kind, *options, stdout=out)
    return out.getvalue()


def import_gironde():
    amaps = run_import(GIRONDE / "amaps.csv", "amap", "--source", SOURCE, "--commit")
    farms = run_import(GIRONDE / "producteurs.csv", "farm", "--source", SOURCE, "--commit")
    return amaps, farms


def read_rows(name):
    with (GIRONDE / name).open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def gironde(db):
    return import_gironde()


def write(tmp_path, name, text, *, encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


# --------------------------------------------------------------------------- the real Gironde files


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


def test_gironde_producers_are_geocoded_linked_and_categorised(gironde):
    _amaps_report, farms_report = gironde
    rows = read_rows("producteurs.csv")
    farms = {f.external_id: f for f in Farm.objects.filter(source=SOURCE).select_related("commune")}
    assert len(farms) == len(rows) == 132

    # Producers without coordinates, but with a commune in their address, are geocoded.
    by_address = {row["adresse"]: farms[row["id"]] for row in rows if not row["lat"] and row["adresse"]}
    assert by_address["St Lons les mines"].commune_id == "40269"  # Saint-Lon-les-Mines (Landes)
    assert by_address["Criée d'Arcachon 33"].commune_id == "33009"  # Arcachon
    assert by_address["St Lons les mines"].location_precision == LocationPrecision.COMMUNE
    # Producers with coordinates keep them privately, and show a masked public point.
    located = [farms[row["id"]] for row in rows if row["lat"]]
    assert len(located) == 67 and all(f.location and f.public_location and f.commune for f in located)
    # Producers with no address at all are kept, without a location, and reported.
    unplaced = [farms[row["id"]] for row in rows if not row["lat"] and not row["adresse"]]
    assert unplaced and all(f.location is None and f.location_precision == "unknown" for f in unplaced)
    assert "ferme gardée sans localisation" in farms_report

    # One partnership per product; 110 AMAP ↔ producer pairs; unknown AMAP ids are warnings.
    pairs = set(Partnership.objects.filter(amap__source=SOURCE).values_list("amap_id", "farm_id"))
    assert len(pairs) == 110
    assert "inconnue dans la source" in farms_report
    assert "est une adresse web, pas un identifiant d'AMAP" in farms_report
    poultry_and_eggs = farms[next(row["id"] for row in rows if row["produit"] == "volailles et oeufs")]
    assert set(poultry_and_eggs.products.values_list("slug", flat=True)) == {"volailles", "oeufs"}
    # An AMAP offers what its partner farms bring.
    amap = Partnership.objects.filter(farm=poultry_and_eggs).first().amap
    assert {"volailles", "oeufs"} <= set(amap.products.values_list("slug", flat=True))


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


# --------------------------------------------------------------------------- bad files


def counts():
    return Amap.objects.count(), Farm.objects.count(), Partnership.objects.count()


def assert_rejected(path, kind, *expected, options=()):
    before = counts()
    with pytest.raises(CommandError) as caught:
        run_import(path, kind, "--commit", *options)
    message = str(caught.value)
    for fragment in expected:
        assert fragment in message
    assert "rien n'a été enregistré" in message or "vide" in message or "aucune ligne" in message
    assert counts() == before
    return message


HEADER = "id;nom;ville;code_postal;lat;lon\n"
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


def test_missing_columns_are_named(db, tmp_path):
    message = assert_rejected(
        write(tmp_path, "amaps.csv", "Intitulé;Remarque\nAMAP;rien\n"), "amap", "colonne « nom »", "obligatoire"
    )
    assert "Intitulé, Remarque" in message  # the columns that were found
    assert_rejected(write(tmp_path, "lat_only.csv", "nom;lat\nAMAP;44.8\n"), "amap", "colonne « lon »")


def test_wrong_encoding_names_the_line_and_suggests_cp1252(db, tmp_path):
    path = write(
        tmp_path,
        "excel.csv",
        "nom;ville;code_postal\nAMAP;Bordeaux;33000\nAMAP de Bègles;Bègles;33130\n",
        encoding="cp1252",
    )
    assert_rejected(path, "amap", "ligne 3", "UTF-8", "--encoding cp1252")
    report = run_import(path, "amap", "--source", "t", "--encoding", "cp1252", "--commit")
    assert "AMAP : 2 créée(s)" in report
    assert Amap.objects.filter(name="AMAP de Bègles", commune_id="33039").exists()


def test_utf8_with_bom_is_read(db, tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes("nom,ville\nAMAP,Mérignac\n".encode("utf-8-sig"))
    run_import(path, "amap", "--source", "t", "--commit")
    assert Amap.objects.get().commune_id == "33281"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("", "le fichier est vide"), ("\n\n", "le fichier est vide"), (HEADER, "aucune ligne de données")],
)
def test_empty_files_and_header_only(db, tmp_path, text, fragment):
    assert_rejected(write(tmp_path, "vide.csv", text), "amap", fragment)


def test_unknown_commune_for_a_farm_with_a_commune_column(db, tmp_path):
    path = write(tmp_path, "fermes.csv", "nom\tville\nFerme X\tPaysimaginaire\n")
    assert_rejected(path, "farm", "ligne 2", "colonne « ville »", "commune inconnue")


# --------------------------------------------------------------------------- formats and mapping


def test_xlsx_with_numeric_cells_and_french_headers(db, tmp_path):
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["Nom", "Code postal", "Commune", "Latitude", "Longitude", "Jour de livraison", "Horaires"])
    sheet.append(["AMAP de Pessac", 33600, "Pessac", 44.8067, -0.6311, "Vendredi", "18h00-19h30"])
    sheet.append(["AMAP de Libourne", 33500, "Libourne", None, None, "Mardi", None])
    path = tmp_path / "amaps.xlsx"
    workbook.save(path)
    run_import(path, "amap", "--source", "xlsx", "--commit")
    pessac, libourne = Amap.objects.get(name="AMAP de Pessac"), Amap.objects.get(name="AMAP de Libourne")
    assert (pessac.commune_id, pessac.postal_code, pessac.delivery_weekdays) == ("33318", "33600", [5])
    assert (libourne.commune_id, libourne.location_precision) == ("33243", LocationPrecision.COMMUNE)


def test_geojson_points_and_polygons(db, tmp_path):
    import geopandas
    from shapely.geometry import Point as ShapelyPoint
    from shapely.geometry import box

    frame = geopandas.GeoDataFrame(
        {"id": ["G1", "G2"], "nom": ["AMAP de Talence", "AMAP du parc"], "jour": ["Jeudi", "Mercredi"]},
        geometry=[ShapelyPoint(-0.5890, 44.8080), box(-0.605, 44.835, -0.600, 44.840)],  # Talence; a park in Bordeaux
        crs="EPSG:4326",
    )
    path = tmp_path / "amaps.geojson"
    frame.to_file(path, driver="GeoJSON")
    run_import(path, "amap", "--source", "geo", "--commit")
    assert Amap.objects.get(external_id="G1").commune_id == "33522"  # Talence
    assert Amap.objects.get(external_id="G2").commune_id == "33063"  # Bordeaux: the polygon's inner point


def test_geopackage_in_lambert93_is_reprojected(db, tmp_path):
    import geopandas
    from shapely.geometry import Point as ShapelyPoint

    frame = geopandas.GeoDataFrame(
        {"nom": ["Ferme de Libourne"], "produits": ["légumes"]},
        geometry=[ShapelyPoint(-0.2430, 44.9150)],  # Libourne
        crs="EPSG:4326",
    ).to_crs("EPSG:2154")
    path = tmp_path / "fermes.gpkg"
    frame.to_file(path, driver="GPKG")
    run_import(path, "farm", "--source", "gpkg", "--commit")
    farm = Farm.objects.get()
    assert farm.commune_id == "33243"
    assert farm.location.coords == pytest.approx((-0.2430, 44.9150), abs=1e-6)
    assert list(farm.products.values_list("slug", flat=True)) == ["legumes"]


def test_geo_file_errors_name_the_feature(db, tmp_path):
    import geopandas
    from shapely.geometry import Point as ShapelyPoint

    frame = geopandas.GeoDataFrame(
        {"nom": ["Bonne", "En Espagne"]}, geometry=[ShapelyPoint(-0.58, 44.84), ShapelyPoint(-3.70, 40.42)], crs=4326
    )
    path = tmp_path / "amaps.geojson"
    frame.to_file(path, driver="GeoJSON")
    assert_rejected(path, "amap", "entité 2", "hors de France")


def test_explicit_column_mapping(db, tmp_path):
    path = write(tmp_path, "liste.csv", "Nom_AMAP;Lieu de distribution;Quand\nAMAP du marché;Mérignac;mercredi\n")
    run_import(
        path,
        "amap",
        "--source",
        "map",
        "--map",
        "nom=Nom_AMAP",
        "--map",
        "ville=Lieu de distribution",
        "--map",
        "jour=Quand",
        "--commit",
    )
    amap = Amap.objects.get()
    assert (amap.name, amap.commune_id, amap.delivery_weekdays) == ("AMAP du marché", "33281", [3])
    assert_rejected(path, "amap", "colonne « Absente »", "absente du fichier", options=("--map", "nom=Absente"))
    assert_rejected(path, "amap", "champ inconnu", options=("--map", "couleur=Quand"))


def test_partnership_file(db, tmp_path):
    run_import(write(tmp_path, "a.csv", "id,nom,ville\nA1,AMAP A,Bordeaux\n"), "amap", "--source", "p", "--commit")
    run_import(
        write(tmp_path, "f.csv", "id,nom,ville,produit\nF1,Ferme F,Libourne,miel\n"),
        "farm",
        "--source",
        "p",
        "--commit",
    )
    links = write(tmp_path, "l.csv", "amap_id,producteur_id,produit,depuis\nA1,F1,miel,2020-04-01\nA1,F9,pain,\n")
    assert_rejected_links = pytest.raises(CommandError)
    with assert_rejected_links as caught:
        run_import(links, "partnership", "--source", "p", "--commit")
    assert "ligne 3, colonne « producteur_id » : producteur « F9 » inconnu" in str(caught.value)
    assert Partnership.objects.count() == 0
    links.write_text("amap_id,producteur_id,produit,depuis\nA1,F1,miel,2020-04-01\n", encoding="utf-8")
    run_import(links, "partnership", "--source", "p", "--commit")
    partnership = Partnership.objects.get()
    assert (partnership.product.slug, partnership.since.isoformat()) == ("miel", "2020-04-01")


def test_the_report_function_can_be_used_without_the_command(db, tmp_path):
    report = directory_import(
        path=write(tmp_path, "a.csv", "nom;ville\nAMAP;Nowhere-on-Thames\n"), kind="amap", source="x"
    )
    assert not report.ok
    (issue,) = report.errors
    assert (issue.row, issue.column) == (2, "ville")


def test_farms_imported_before_their_amaps_get_one_clear_warning(db):
    report = run_import(GIRONDE / "producteurs.csv", "farm", "--source", SOURCE)
    assert "aucune AMAP de la source « gironde-2026 » n'est encore enregistrée" in report
    assert "Importez d'abord les AMAP" in report
    assert "ferme(s) : 132 à créer" in report
