"""The public pages: home, search results, AMAP, farm and network pages, as a visitor sees them."""

import html
import re
from datetime import time
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.gis.geos import Point
from django.core.management import call_command
from django.urls import reverse

from directory.models import Amap, Farm
from geo.coordinates import geodesic_distance_m
from tests.factories import AmapFactory, FarmFactory, NetworkFactory, PartnershipFactory, commune, product

GIRONDE_CSV = Path(settings.BASE_DIR).parent / "shared" / "data" / "amap-gironde-2026" / "amaps.csv"

# Delivery places in real neighbourhoods (coordinates read on OpenStreetMap).
PLACES = {
    "AMAP de la Comédie": (Point(-0.5792, 44.8378, srid=4326), "33063"),  # Bordeaux centre
    "AMAP des Chartrons": (Point(-0.5700, 44.8560, srid=4326), "33063"),  # Bordeaux north
    "AMAP Mérignac Centre": (Point(-0.6440, 44.8386, srid=4326), "33281"),
    "AMAP de Pessac": (Point(-0.6310, 44.8067, srid=4326), "33318"),
    "AMAP du Libournais": (Point(-0.2430, 44.9150, srid=4326), "33243"),
    "AMAP de Gerland": (Point(4.8390, 45.7440, srid=4326), "69387"),  # Lyon 7e
    "AMAP de la Croix-Rousse": (Point(4.8270, 45.7740, srid=4326), "69384"),  # Lyon 4e
    "AMAP de la Basilique": (Point(2.3596, 48.9362, srid=4326), "93066"),  # Saint-Denis (93)
    "AMAP du Barachois": (Point(55.4481, -20.8789, srid=4326), "97411"),  # Saint-Denis (La Réunion)
}


def result_names(page: str) -> list[str]:
    """AMAP names in the results list, in the order shown."""
    return [html.unescape(n) for n in re.findall(r'<h3 id="amap-\d+-name"><a href="[^"]+">([^<]+)</a>', page)]


def result_distances_km(page: str) -> list[float]:
    """The distances shown, in km: « 1,2 km », « 190 m » (under 1 km), « moins de 10 m » (read as 0)."""
    found = []
    for text in re.findall(r'<dd class="distance">([^<]+)</dd>', page):
        text = text.replace("\u202f", "").replace("\xa0", " ").strip()
        if text.startswith("moins de"):
            found.append(0.0)
        elif text.endswith(" km"):
            found.append(float(text.removesuffix(" km").replace(",", ".")))
        else:
            found.append(float(text.removesuffix(" m")) / 1000)
    return found


def visible_text(page: str) -> str:
    """The page's text as a reader sees it: no tags, scripts or repeated spaces."""
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page))).strip()


def search(client, headers=None, **params):
    response = client.get(reverse("directory:search"), params, headers=headers)
    return response, response.content.decode()


@pytest.fixture
def demo_directory(db):
    """A small directory in real places, like the demo generator's."""
    amaps = {}
    for name, (point, code) in PLACES.items():
        amaps[name] = AmapFactory(name=name, location=point, commune=commune(code), products=["legumes"])
    return amaps


# --- home -----------------------------------------------------------------------------------


def test_home_offers_one_labelled_search_box_in_french(client, demo_directory):
    response = client.get("/")
    page = response.content.decode()
    assert response.status_code == 200
    assert '<html lang="fr">' in page
    assert 'action="/recherche/"' in page and 'method="get"' in page
    assert re.search(r'<label for="id_q">Ville, code postal ou adresse</label>', page)
    assert 'id="id_q"' in page
    for landmark in ("<header", "<nav", "<main", "<footer"):
        assert landmark in page
    assert "9 AMAP" in page


# --- search by place ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "first", "second"),
    [
        ("Bordeaux", "AMAP de la Comédie", "AMAP des Chartrons"),
        ("33000", "AMAP de la Comédie", "AMAP des Chartrons"),
        ("mérignac", "AMAP Mérignac Centre", "AMAP de Pessac"),
        ("Lyon 7e", "AMAP de Gerland", "AMAP de la Croix-Rousse"),
        ("44.8378, -0.5792", "AMAP de la Comédie", "AMAP des Chartrons"),
        ("44,8378 -0,5792", "AMAP de la Comédie", "AMAP des Chartrons"),
    ],
)
def test_search_lists_nearest_amaps_first(client, demo_directory, query, first, second):
    response, page = search(client, q=query)
    assert response.status_code == 200
    names = result_names(page)
    assert names[:2] == [first, second]
    distances = result_distances_km(page)
    assert len(distances) == len(names) == 9
    assert distances == sorted(distances)
    assert 'class="leaflet' in page or "folium" in page  # the map of the results


def test_search_shows_true_distance_with_one_decimal(client, demo_directory):
    response, page = search(client, q="44.8378, -0.5792")
    # Comédie → Mérignac Centre, geodesic distance from pyproj.Geod(ellps="WGS84").
    expected = geodesic_distance_m(PLACES["AMAP de la Comédie"][0], PLACES["AMAP Mérignac Centre"][0]) / 1000
    names, distances = result_names(page), result_distances_km(page)
    assert distances[0] == 0.0
    assert distances[names.index("AMAP Mérignac Centre")] == pytest.approx(expected, abs=0.05)
    assert re.search(r"\d,\d\xa0?\s*km", page)  # French decimal comma


def test_result_shows_commune_delivery_products_and_membership(client, db):
    AmapFactory(
        name="AMAP du Jardin public",
        location=Point(-0.5770, 44.8480, srid=4326),
        commune=commune("33063"),
        delivery_weekdays=[2, 5],
        delivery_start=time(18, 30),
        delivery_end=time(20, 0),
        products=["legumes", "oeufs"],
        accepting_members=Amap.Accepting.WAITING_LIST,
    )
    AmapFactory(name="AMAP complète", accepting_members=Amap.Accepting.FULL)
    response, page = search(client, q="Bordeaux")
    assert "Bordeaux" in page
    assert "Mardi, vendredi, 18h30 – 20h00" in page
    assert "Légumes, Œufs" in page
    assert "Liste d&#x27;attente" in page or "Liste d'attente" in page
    assert "Complet" in page
    amap = Amap.objects.get(name="AMAP du Jardin public")
    assert f'href="/amap/{amap.pk}/"' in page


def test_closed_amaps_are_not_offered(client, demo_directory):
    AmapFactory(name="AMAP disparue", status=Amap.Status.CLOSED)
    response, page = search(client, q="Bordeaux")
    assert "AMAP disparue" not in result_names(page)


def test_ambiguous_place_offers_candidates_instead_of_guessing(client, demo_directory):
    response, page = search(client, q="Saint-Denis")
    assert response.status_code == 200
    assert result_names(page) == []
    assert "Plusieurs lieux correspondent" in page
    links = dict(
        (html.unescape(label), html.unescape(url))
        for url, label in re.findall(r'<li><a href="([^"]+)">([^<]+)</a>', page)
    )
    assert "Saint-Denis (93200)" in links and "Saint-Denis (97400)" in links
    # Following a candidate searches around that place.
    response = client.get(links["Saint-Denis (97400)"])
    assert result_names(response.content.decode())[0] == "AMAP du Barachois"
    response = client.get(links["Saint-Denis (93200)"])
    assert result_names(response.content.decode())[0] == "AMAP de la Basilique"


def test_typing_another_place_after_picking_one_searches_the_new_text(client, demo_directory):
    # The results page keeps the picked place in hidden fields; a new text in the box wins.
    response, page = search(client, q="Lyon 7e", lieu="Saint-Denis (97400)", lon="55.448634", lat="-20.878974")
    assert result_names(page)[0] == "AMAP de Gerland"
    response, page = search(
        client, q="Saint-Denis (97400)", lieu="Saint-Denis (97400)", lon="55.448634", lat="-20.878974"
    )
    assert result_names(page)[0] == "AMAP du Barachois"
    assert 'name="lon" value="55.448634"' in page


def test_small_homonyms_do_not_stop_the_search_but_are_offered(client, demo_directory):
    # Mérignac (Gironde, 78,000 inhabitants) is meant far more often than Mérignac (Charente, 800).
    response, page = search(client, q="Merignac")
    assert result_names(page)[0] == "AMAP Mérignac Centre"
    assert "Vous cherchiez peut-être" in page and "Mérignac (16200)" in page


def test_unknown_place_gives_a_friendly_message_and_the_form(client, demo_directory):
    response, page = search(client, q="Zzyzxville-sur-Nulle-Part")
    assert response.status_code == 200
    assert "Aucun lieu ne correspond à « Zzyzxville-sur-Nulle-Part »" in page
    assert 'id="id_q"' in page
    assert result_names(page) == []


def test_search_page_without_query_shows_the_form(client, db):
    response = client.get(reverse("directory:search"))
    assert response.status_code == 200
    assert 'id="id_q"' in response.content.decode()


# --- filters --------------------------------------------------------------------------------


@pytest.fixture
def varied_amaps(db):
    AmapFactory(name="AMAP légumes mardi", products=["legumes"], delivery_weekdays=[2])
    AmapFactory(
        name="AMAP pain jeudi",
        location=Point(-0.5700, 44.8560, srid=4326),
        products=["pain", "legumes"],
        delivery_weekdays=[4],
        accepting_members=Amap.Accepting.FULL,
    )
    far = AmapFactory(
        name="AMAP de Libourne",
        location=Point(-0.2430, 44.9150, srid=4326),
        commune=commune("33243"),
        products=["miel"],
        delivery_weekdays=[4],
    )
    network = NetworkFactory(slug="amap-nouvelle-aquitaine", name="AMAP Nouvelle-Aquitaine")
    far.networks.add(network)


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"products": ["pain"]}, ["AMAP pain jeudi"]),
        ({"products": ["pain", "legumes"]}, ["AMAP pain jeudi"]),
        ({"weekday": "4"}, ["AMAP pain jeudi", "AMAP de Libourne"]),
        ({"accepting": "on"}, ["AMAP légumes mardi", "AMAP de Libourne"]),
        ({"radius_km": "10"}, ["AMAP légumes mardi", "AMAP pain jeudi"]),
        ({"radius_km": "1,5"}, ["AMAP légumes mardi"]),
        ({"network": "amap-nouvelle-aquitaine"}, ["AMAP de Libourne"]),
    ],
)
def test_filters_narrow_the_results(client, varied_amaps, filters, expected):
    response, page = search(client, q="44.8378, -0.5792", **filters)
    assert response.status_code == 200
    assert result_names(page) == expected
    # The panel stays folded (a phone sees the map first); the chosen filters show as links that drop them.
    assert '<details class="filters">' in page and "Retirer le filtre" in page


def test_no_result_says_so(client, varied_amaps):
    response, page = search(client, q="Lyon 7e", radius_km="5")
    assert result_names(page) == []
    assert "Aucune AMAP ne correspond à ces critères" in page


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"q": "Bordeaux", "radius_km": "abc"}, "Saisissez un nombre de kilomètres"),
        ({"q": "Bordeaux", "radius_km": "nan"}, "Saisissez un nombre de kilomètres"),
        ({"q": "Bordeaux", "radius_km": "-5"}, "Le rayon doit être d'au moins 1 km"),
        ({"q": "Bordeaux", "radius_km": "100000"}, "Le rayon ne peut pas dépasser 200 km"),
        ({"q": "Bordeaux", "weekday": "9"}, "Jour de livraison inconnu"),
        ({"q": "Bordeaux", "products": "licornes"}, "Produit inconnu : « licornes »"),
        ({"q": "Bordeaux", "network": "inconnu"}, "Réseau inconnu : « inconnu »"),
        ({"q": "Bordeaux", "page": "0"}, "Numéro de page invalide"),
        ({"q": "Bordeaux", "page": "x"}, "Numéro de page invalide"),
        ({"lon": "nan", "lat": "44.8"}, "Lieu invalide"),
        ({"lon": "181", "lat": "44.8"}, "la longitude doit être comprise entre -180 et 180"),
        ({"lon": "44.8", "lat": "-0.57"}, "semblent inversées"),
        ({"lon": "-0.57"}, "Lieu incomplet"),
        ({"q": "91.5, 2"}, "la latitude doit être comprise entre -90 et 90"),
        ({"q": "x" * 300}, "200 caractères"),
        ({"q": "", "weekday": "2"}, "Indiquez une ville, un code postal ou une adresse"),
    ],
)
def test_bad_values_show_the_form_again_with_a_french_message(client, varied_amaps, params, message):
    # The interface speaks French whatever language the browser prefers.
    response, page = search(client, headers={"accept-language": "en-US,en;q=0.8"}, **params)
    assert response.status_code in (200, 400)
    assert message in html.unescape(page)
    assert 'id="id_q"' in page
    assert result_names(page) == []


# --- pagination -----------------------------------------------------------------------------


def test_more_results_page_by_page(client, db):
    for i in range(13):
        # Every 400 m northwards from the Comédie.
        AmapFactory(name=f"AMAP n°{i:02d}", location=Point(-0.5792, 44.8378 + 0.0036 * i, srid=4326))
    response, page = search(client, q="44.8378, -0.5792")
    assert result_names(page) == [f"AMAP n°{i:02d}" for i in range(10)]
    next_url = html.unescape(re.search(r'<a href="([^"]+)" rel="next">Plus de résultats</a>', page).group(1))
    page2 = client.get(next_url).content.decode()
    assert result_names(page2) == ["AMAP n°10", "AMAP n°11", "AMAP n°12"]
    assert '<ol class="results-list" start="11">' in page2
    assert 'rel="next"' not in page2 and 'rel="prev"' in page2


# --- AMAP page ------------------------------------------------------------------------------


def test_amap_page_shows_delivery_products_partners_and_contact(client, db):
    network = NetworkFactory(name="AMAP Nouvelle-Aquitaine", slug="amap-na")
    amap = AmapFactory(
        name="AMAP des Capucins",
        address="Place des Capucins",
        postal_code="33800",
        delivery_weekdays=[3],
        delivery_start=time(18, 0),
        delivery_end=time(19, 30),
        delivery_frequency=Amap.Frequency.FORTNIGHTLY,
        products=["legumes", "pain"],
        website="https://capucins.example.org/",
        platform="Cagette",
        contact_email="bonjour@capucins.example.org",
    )
    amap.networks.add(network)
    bourg = FarmFactory(name="Ferme du Bourg")
    PartnershipFactory(amap=amap, farm=bourg, product=product("legumes"))
    PartnershipFactory(amap=amap, farm=bourg, product=product("oeufs"))
    PartnershipFactory(
        amap=amap, farm=FarmFactory(name="Ancienne boulangerie"), product=product("pain"), is_active=False
    )
    response = client.get(reverse("directory:amap_detail", args=[amap.pk]))
    page = html.unescape(response.content.decode())
    assert response.status_code == 200
    for text in (
        "<h1",
        "AMAP des Capucins",
        "Place des Capucins, 33800 Bordeaux",
        "Mercredi",
        "18h00 – 19h30",
        "Toutes les deux semaines",
        "Légumes",
        "Pain",
        "Ferme du Bourg",
        "AMAP Nouvelle-Aquitaine",
        "https://capucins.example.org/",
        "Cagette",
        "bonjour@capucins.example.org",
        "Accepte de nouveaux membres",
    ):
        assert text in page, text
    assert "Ferme du Bourg — Légumes, Œufs" in visible_text(page)
    assert "Ancienne boulangerie" not in page  # the partnership has ended
    assert 'href="/reseau/amap-na/"' in page
    assert "leaflet" in page.lower()


def test_amap_page_without_email_shows_none(client, db):
    amap = AmapFactory(contact_email="")
    page = client.get(reverse("directory:amap_detail", args=[amap.pk])).content.decode()
    assert "mailto:" not in page


def test_closed_amap_page_says_it_is_closed(client, db):
    amap = AmapFactory(name="AMAP d'hier", status=Amap.Status.CLOSED)
    response = client.get(reverse("directory:amap_detail", args=[amap.pk]))
    assert response.status_code == 200
    assert "Cette AMAP est fermée" in response.content.decode()


# --- farm page ------------------------------------------------------------------------------


@pytest.fixture
def farm(db):
    farm = FarmFactory(
        name="Ferme des Quatre Vents",
        external_id="quatre-vents",  # the mask is drawn from source and id: same point every run
        location=Point(-0.217436, 44.893719, srid=4326),  # a field near Libourne
        commune=commune("33243"),
        address="Lieu-dit Les Quatre Vents",
        labels=[Farm.Label.ORGANIC, Farm.Label.PEASANT],
        products=["legumes", "oeufs"],
    )
    amap = AmapFactory(name="AMAP du Libournais", location=Point(-0.2430, 44.9150, srid=4326), commune=commune("33243"))
    PartnershipFactory(amap=amap, farm=farm, product=product("legumes"))
    PartnershipFactory(amap=amap, farm=farm, product=product("oeufs"))
    return farm


def exact_coordinate_strings(farm: Farm) -> list[str]:
    """The exact point as any page could print it (4 to 15 decimals, dot or comma)."""
    strings = []
    for value in (farm.location.x, farm.location.y):
        strings.append(repr(value))
        for decimals in range(4, 16):
            text = f"{value:.{decimals}f}"
            strings += [text, text.replace(".", ",")]
    return strings


def test_farm_page_shows_products_labels_amaps_and_commune(client, farm):
    response = client.get(reverse("directory:farm_detail", args=[farm.pk]))
    page = html.unescape(response.content.decode())
    assert response.status_code == 200
    for text in ("Ferme des Quatre Vents", "Libourne", "Agriculture biologique", "agriculture paysanne", "Œufs"):
        assert text in page, text
    assert "AMAP du Libournais (Libourne) — Légumes, Œufs" in visible_text(page)
    assert "position exacte de la ferme n'est pas publiée" in page


def test_farm_page_never_shows_the_exact_location(client, farm):
    farm.refresh_from_db()
    # The masked point differs from the exact one in both coordinates, so the check below means something.
    assert f"{farm.public_location.x:.4f}" != f"{farm.location.x:.4f}"
    assert f"{farm.public_location.y:.4f}" != f"{farm.location.y:.4f}"
    pages = [
        client.get(reverse("directory:farm_detail", args=[farm.pk])).content.decode(),
        client.get(reverse("directory:amap_detail", args=[farm.partnerships.first().amap_id])).content.decode(),
    ]
    network = NetworkFactory(slug="reseau-libournais")
    farm.networks.add(network)
    pages.append(client.get(reverse("directory:network_detail", args=[network.slug])).content.decode())
    for page in pages:
        for text in exact_coordinate_strings(farm):
            assert text not in page, text
        assert "Lieu-dit Les Quatre Vents" not in page  # the address would give the place away
    # The map shows the farm at its public point.
    assert str(farm.public_location.y) in pages[0] and str(farm.public_location.x) in pages[0]


# --- network page ---------------------------------------------------------------------------


def test_network_page_lists_amaps_farms_territory_and_embed(client, db):
    from geo.models import Department

    network = NetworkFactory(
        name="Réseau des AMAP de Gironde", slug="amap-gironde", departments=[Department.objects.get(code="33")]
    )
    open_amap = AmapFactory(name="AMAP ouverte")
    closed_amap = AmapFactory(name="AMAP fermée", status=Amap.Status.CLOSED)
    farm = FarmFactory(name="Ferme du réseau")
    network.amaps.add(open_amap, closed_amap)
    network.farms.add(farm)
    response = client.get(reverse("directory:network_detail", args=["amap-gironde"]))
    page = html.unescape(response.content.decode())
    assert response.status_code == 200
    for text in ("Réseau des AMAP de Gironde", "Gironde (33)", "AMAP ouverte", "Ferme du réseau", "2 AMAP", "1 ferme"):
        assert text in page, text
    assert re.search(r"AMAP fermée</a> — Bordeaux <span class=\"badge badge-status\">[Ff]ermée", page)
    embed = re.search(r'<textarea id="embed-code"[^>]*>(.*?)</textarea>', page, re.S).group(1)
    assert "<iframe" in embed and "amap-gironde" in embed
    assert "leaflet" in page.lower()
    assert reverse("coverage:network_coverage", args=["amap-gironde"]) in page


def test_network_lists_are_paginated(client, db):
    network = NetworkFactory(slug="grand-reseau")
    amaps = [AmapFactory(name=f"AMAP {i:03d}") for i in range(55)]
    network.amaps.add(*amaps)
    page1 = visible_text(client.get("/reseau/grand-reseau/").content.decode())
    assert "55 AMAP" in page1 and "Page 1 sur 2" in page1
    assert "AMAP 049" in page1 and "AMAP 050" not in page1
    page2 = visible_text(client.get("/reseau/grand-reseau/?amaps=2").content.decode())
    assert "AMAP 050" in page2 and "AMAP 054" in page2 and "AMAP 000" not in page2


# --- unknown ids ----------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/amap/999999/", "/ferme/999999/", "/reseau/nulle-part/", "/amap/abc/"])
def test_unknown_pages_are_404(client, db, url):
    assert client.get(url).status_code == 404


# --- the real Gironde directory -------------------------------------------------------------


@pytest.fixture
def gironde(db):
    if not GIRONDE_CSV.exists():
        pytest.fail(f"{GIRONDE_CSV} is missing: the shared data set is needed for this test")
    call_command("import_directory", str(GIRONDE_CSV), kind="amap", source="gironde-2026", commit=True, verbosity=0)
    assert Amap.objects.filter(source="gironde-2026").count() > 90


def test_search_on_the_real_gironde_directory(client, gironde):
    def nearest(query):
        response, page = search(client, q=query)
        assert response.status_code == 200, query
        names, distances = result_names(page), result_distances_km(page)
        assert len(names) == 10 and distances == sorted(distances), query
        return names, distances, page

    # Bordeaux has many AMAPs: the nearest is in town.
    for query in ("Bordeaux", "33000"):
        names, distances, _page = nearest(query)
        assert distances[0] < 2.0, query
        assert distances[-1] < 5.0, query
    names, distances, _page = nearest("mérignac")
    assert distances[0] < 3.0
    first = Amap.objects.get(source="gironde-2026", name=names[0])
    assert first.commune.name in {"Mérignac", "Bordeaux", "Pessac", "Le Haillan", "Eysines"}
    # Lyon is ~440 km from the nearest Gironde AMAP: results still come, far away and sorted.
    names, distances, _page = nearest("Lyon 7e")
    assert distances[0] > 300
    # Typing an AMAP's own coordinates finds it first, at 0.0 km.
    amap = Amap.objects.filter(source="gironde-2026").order_by("external_id").first()
    names, distances, _page = nearest(f"{amap.location.y:.6f}, {amap.location.x:.6f}")
    assert distances[0] == 0.0
    assert amap.name in [name for name, km in zip(names, distances, strict=True) if km == 0.0]


def test_search_page_query_count_does_not_grow_with_the_results(client, db, django_assert_max_num_queries):
    # Twelve AMAPs with products: the page must not query once per AMAP (no N+1).
    for i in range(12):
        AmapFactory(name=f"AMAP voisine {i}", products=["legumes", "pain"])
    with django_assert_max_num_queries(10):
        response = client.get(reverse("directory:search"), {"q": "Bordeaux"})
    page = html.unescape(response.content.decode())
    assert response.status_code == 200
    assert "AMAP voisine" in page and "Légumes, Pain" in page
