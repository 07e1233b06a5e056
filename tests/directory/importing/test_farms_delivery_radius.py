"""A farm's delivery radius through the importer: unknown unless the file states it."""

import io

import pytest
from django.core.management import CommandError, call_command

from directory.models import Farm

from .support import import_gironde, read_rows

pytestmark = pytest.mark.django_db

HEADER = "id,nom,produits,lat,lon,rayon_livraison_km\n"


def run_import(path, *options):
    out = io.StringIO()
    call_command("import_directory", str(path), "--kind", "farm", "--source", "test", *options, stdout=out)
    return out.getvalue()


def test_gironde_producers_say_nothing_of_their_radius_so_it_stays_unknown():
    import_gironde()
    located = Farm.objects.filter(source="gironde-2026").exclude(location=None)
    # Every producer with coordinates (and a few placed from their address).
    assert located.count() >= sum(1 for row in read_rows("producteurs.csv") if row["lat"])
    assert not located.exclude(delivery_radius_km=None).exists()


def test_a_radius_column_is_read_and_an_empty_cell_stays_unknown(tmp_path):
    path = tmp_path / "fermes.csv"
    path.write_text(
        HEADER
        + "F1,Les Jardins,légumes,44.84,-0.58,25\n"
        + "F2,Le Fournil,pain,44.9,-0.5,\n"
        + 'F3,La Ruche,miel,44.8,-0.6,"12,5 km"\n',
        encoding="utf-8",
    )

    run_import(path, "--commit")

    radii = dict(Farm.objects.filter(source="test").values_list("external_id", "delivery_radius_km"))
    assert radii == {"F1": 25, "F2": None, "F3": 12}


@pytest.mark.parametrize("cell", ["0", "-5", "900", "loin", "nan"])
def test_a_radius_out_of_range_is_reported_by_row_and_column_and_nothing_is_written(tmp_path, cell):
    path = tmp_path / "fermes.csv"
    path.write_text(HEADER + f"F1,Les Jardins,légumes,44.84,-0.58,{cell}\n", encoding="utf-8")

    with pytest.raises(CommandError) as error:
        run_import(path, "--commit")

    assert "rayon_livraison_km" in str(error.value)
    assert "entre 1 et 500" in str(error.value)
    assert not Farm.objects.filter(source="test").exists()
