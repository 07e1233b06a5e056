from django.contrib.gis.geos import Point
from django.core.management import call_command

from geo.models import Commune, Department, Region
from geo.selectors import commune_at_point


def test_all_of_france_is_loaded_including_overseas(db):
    assert Region.objects.count() == 18
    assert Department.objects.count() == 101
    assert Commune.objects.municipalities().count() == 34875
    # Overseas: Saint-Denis de La Réunion and Mamoudzou (Mayotte) are there with a point.
    assert Commune.objects.get(code="97411").name == "Saint-Denis"
    assert Commune.objects.get(code="97611").point is not None


def test_insee_codes_are_strings_and_keep_their_letters_and_zeros(db):
    ajaccio = Commune.objects.get(code="2A004")
    assert ajaccio.name == "Ajaccio"
    assert Commune.objects.get(code="01004").name == "Ambérieu-en-Bugey"


def test_commune_carries_population_postal_codes_and_outline(db):
    bordeaux = Commune.objects.get(code="33063")
    assert bordeaux.population > 250_000
    assert "33000" in bordeaux.postal_codes
    assert bordeaux.geom.valid
    assert bordeaux.geom.contains(Point(-0.5792, 44.8378, srid=4326))  # Place de la Comédie


def test_arrondissements_belong_to_their_city(db):
    lyon_7 = Commune.objects.get(code="69387")
    assert lyon_7.parent_id == "69123"
    assert lyon_7.department_id == "69"


def test_point_to_commune(db):
    assert commune_at_point(point=Point(-0.5792, 44.8378, srid=4326)).code == "33063"  # Bordeaux
    assert commune_at_point(point=Point(-0.6440, 44.8386, srid=4326)).code == "33281"  # Mérignac
    lyon_7 = commune_at_point(point=Point(4.8420, 45.7450, srid=4326), include_arrondissements=True)
    assert lyon_7.code == "69387"
    # Open Atlantic, 40 km off the coast: no commune.
    assert commune_at_point(point=Point(-1.9, 44.6, srid=4326)) is None


def test_load_territories_is_idempotent(db):
    before = Commune.objects.count()
    call_command("load_territories", verbosity=0)
    assert Commune.objects.count() == before
