"""Search results that say what they are (issue 17): far results, unstated products, an address
found only as its town."""

import html
import re

import pytest
from django.contrib.gis.geos import Point
from django.urls import reverse

from tests.factories import AmapFactory, commune

pytestmark = pytest.mark.django_db

BORDEAUX_CENTRE = "44.8378, -0.5792"


def search(client, **params):
    response = client.get(reverse("directory:search"), params)
    assert response.status_code == 200
    return html.unescape(response.content.decode())


def text_of(page: str) -> str:
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)).strip()


@pytest.fixture
def gironde_amaps(db):
    # Coordinates read on OpenStreetMap; distances from Bordeaux centre are geodesic (WGS84).
    AmapFactory(name="AMAP de la Comédie", location=Point(-0.5792, 44.8378, srid=4326), products=["legumes"])
    AmapFactory(
        name="AMAP de Libourne (pain)",  # ~28 km from Bordeaux centre
        location=Point(-0.2430, 44.9150, srid=4326),
        commune=commune("33243"),
        products=["legumes", "pain"],
        delivery_weekdays=[4],
    )
    AmapFactory(
        name="AMAP d'Arcachon (pain)",  # ~50 km
        location=Point(-1.1680, 44.6580, srid=4326),
        commune=commune("33009"),
        products=["legumes", "pain"],
        delivery_weekdays=[4],
    )
    AmapFactory(name="AMAP importée", location=Point(-0.5700, 44.8560, srid=4326), products=[])


def test_far_filtered_results_say_so_and_offer_to_drop_each_filter(client, gironde_amaps):
    page = search(client, q=BORDEAUX_CENTRE, products=["legumes", "pain"], weekday="4")
    text = text_of(page)
    assert "Aucune AMAP avec ces critères à moins de 20 km ; les plus proches sont à 28 km et plus." in text
    # One link per filter, each dropping that filter only.
    drops = re.findall(r'<a href="(/recherche/\?[^"]+)">sans « ([^»]+) »</a>', page)
    assert [label.strip() for _url, label in drops] == ["Légumes", "Pain", "livraison le jeudi"]
    without_bread = drops[1][0]
    assert "products=legumes" in without_bread and "weekday=4" in without_bread
    assert "products=pain" not in without_bread
    # Dropping the products and the day finds the AMAP in town.
    nearer = search(client, q=BORDEAUX_CENTRE)
    assert "AMAP de la Comédie" in nearer


def test_the_list_says_where_results_start_to_be_far(client, gironde_amaps):
    text = text_of(search(client, q=BORDEAUX_CENTRE, products=["legumes"]))
    assert "Une seule AMAP à moins de 20 km ; les suivantes sont à 28 km et plus." in text
    near_only = text_of(search(client, q=BORDEAUX_CENTRE, products=["legumes"], radius_km="10"))
    assert "à moins de 20 km ;" not in near_only


def test_amaps_with_unstated_products_are_counted_and_reachable(client, gironde_amaps):
    page = search(client, q=BORDEAUX_CENTRE, products=["legumes"])
    text = text_of(page)
    assert "1 AMAP à moins de 20 km n'a pas précisé ses produits" in text
    include = re.search(r'<a href="([^"]+)">Les inclure \(sans filtre de produits\)</a>', page).group(1)
    assert "AMAP importée" in client.get(html.unescape(include)).content.decode()


def test_an_address_found_only_as_its_town_says_so(client, gironde_amaps):
    text = text_of(search(client, q="12 rue Sainte-Catherine, Bordeaux"))
    assert "Adresse non trouvée : recherche autour du centre de Bordeaux (33000)." in text
    # A town, a postal code: no such notice.
    assert "Adresse non trouvée" not in text_of(search(client, q="Bordeaux"))
    assert "Adresse non trouvée" not in text_of(search(client, q="33000"))


def test_list_and_map_carry_the_same_distance_text(client, db):
    AmapFactory(name="AMAP à 187 m", location=Point(-0.5792, 44.8394806, srid=4326))  # ~186.6 m north
    page = search(client, q=BORDEAUX_CENTRE)
    shown = re.search(r'<dd class="distance">([^<]+)</dd>', page).group(1)
    assert shown == "190 m"
    assert '"distance": "190 m"' in page  # the popup's text, in the map's GeoJSON
