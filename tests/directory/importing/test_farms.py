"""Farm files: producers geocoded from their address, linked to AMAPs, kept without a place when they have none."""

from directory.models import Farm, LocationPrecision, Partnership

from .support import GIRONDE, SOURCE, assert_rejected, read_rows, run_import, write


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


def test_unknown_commune_for_a_farm_with_a_commune_column(db, tmp_path):
    path = write(tmp_path, "fermes.csv", "nom\tville\nFerme X\tPaysimaginaire\n")
    assert_rejected(path, "farm", "ligne 2", "colonne « ville »", "commune inconnue")


def test_farms_imported_before_their_amaps_get_one_clear_warning(db):
    report = run_import(GIRONDE / "producteurs.csv", "farm", "--source", SOURCE)
    assert "aucune AMAP de la source « gironde-2026 » n'est encore enregistrée" in report
    assert "Importez d'abord les AMAP" in report
    assert "ferme(s) : 132 à créer" in report
