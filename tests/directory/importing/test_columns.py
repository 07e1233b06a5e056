"""Columns: the usual French headers, required columns named, explicit --map."""

from directory.models import Amap

from .support import assert_rejected, run_import, write


def test_missing_columns_are_named(db, tmp_path):
    message = assert_rejected(
        write(tmp_path, "amaps.csv", "Intitulé;Remarque\nAMAP;rien\n"), "amap", "colonne « nom »", "obligatoire"
    )
    assert "Intitulé, Remarque" in message  # the columns that were found
    assert_rejected(write(tmp_path, "lat_only.csv", "nom;lat\nAMAP;44.8\n"), "amap", "colonne « lon »")


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
