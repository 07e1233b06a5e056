"""The public REST API under /api/v1/: nearest AMAPs and farms, filters, bad input, privacy, limits."""

import json

import pytest
from django.contrib.gis.geos import Point
from django.contrib.staticfiles import finders
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from pyproj import Geod
from rest_framework.test import APIClient

from directory.models import Amap, Network
from tests.factories import (
    BORDEAUX,
    LIBOURNE,
    MERIGNAC,
    AmapFactory,
    FarmFactory,
    NetworkFactory,
    PartnershipFactory,
    commune,
)

pytestmark = pytest.mark.django_db

GEOD = Geod(ellps="WGS84")
AMAPS = "/api/v1/amaps/"
FARMS = "/api/v1/farms/"
NEAR_BORDEAUX = f"{BORDEAUX.x},{BORDEAUX.y}"
ARCACHON = Point(-1.1681, 44.6586, srid=4326)  # Arcachon (33009)
PESSAC = Point(-0.6309, 44.8067, srid=4326)  # Pessac (33318)


@pytest.fixture(autouse=True)
def generous_throttle(settings):
    """Tests make many requests from one address; the throttle has its own test below."""
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"anon": "100000/minute", "user": "100000/minute"},
    }
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def client():
    return APIClient()


@pytest.fixture
def gironde(db):
    """Five AMAPs around Bordeaux with distinct days, products, openness and networks."""
    network = NetworkFactory(slug="amap-gironde", name="Réseau des AMAP de Gironde")
    amaps = {
        "bordeaux": AmapFactory(
            name="AMAP Chartrons", location=BORDEAUX, delivery_weekdays=[2], products=["legumes", "oeufs"]
        ),
        "merignac": AmapFactory(
            name="AMAP Mérignac",
            location=MERIGNAC,
            commune=commune("33281"),
            delivery_weekdays=[4],
            accepting_members=Amap.Accepting.WAITING_LIST,
            products=["legumes", "pain"],
        ),
        "pessac": AmapFactory(name="AMAP Pessac", location=PESSAC, delivery_weekdays=[2, 5], products=["legumes"]),
        "libourne": AmapFactory(name="AMAP Libourne", location=LIBOURNE, delivery_weekdays=[6], products=["miel"]),
        "arcachon": AmapFactory(
            name="AMAP Arcachon",
            location=ARCACHON,
            delivery_weekdays=[3],
            accepting_members=Amap.Accepting.FULL,
            products=["oeufs"],
        ),
    }
    amaps["merignac"].networks.add(network)
    amaps["libourne"].networks.add(network)
    AmapFactory(name="AMAP fermée", location=BORDEAUX, status=Amap.Status.CLOSED)
    return amaps


def names(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [feature["properties"]["name"] for feature in response.json()["features"]]


def test_nearest_amaps_come_as_geojson_sorted_by_geodesic_distance(client, gironde):
    response = client.get(AMAPS, {"near": NEAR_BORDEAUX, "limit": 10})
    body = response.json()
    assert body["type"] == "FeatureCollection"
    assert names(response) == ["AMAP Chartrons", "AMAP Mérignac", "AMAP Pessac", "AMAP Libourne", "AMAP Arcachon"]
    merignac = body["features"][1]
    assert merignac["type"] == "Feature"
    assert merignac["geometry"] == {"type": "Point", "coordinates": [MERIGNAC.x, MERIGNAC.y]}
    # geodesic distance Bordeaux–Mérignac from pyproj.Geod(ellps="WGS84")
    expected_m = GEOD.inv(BORDEAUX.x, BORDEAUX.y, MERIGNAC.x, MERIGNAC.y)[2]
    assert merignac["properties"]["distance_m"] == pytest.approx(expected_m, rel=1e-3)
    assert merignac["properties"]["commune"] == {"code": "33281", "name": "Mérignac", "department": "33"}
    assert [p["slug"] for p in merignac["properties"]["products"]] == ["legumes", "pain"]
    assert merignac["properties"]["networks"] == [{"slug": "amap-gironde", "name": "Réseau des AMAP de Gironde"}]
    assert merignac["properties"]["accepting_members"] == "waiting_list"
    assert merignac["properties"]["page_url"] == f"/amap/{gironde['merignac'].pk}/"
    assert body["features"][0]["properties"]["distance_m"] == 0


def test_without_near_amaps_come_by_name_without_distance(client, gironde):
    response = client.get(AMAPS)
    assert names(response) == sorted(names(response))
    assert "AMAP fermée" not in names(response)
    assert {f["properties"]["distance_m"] for f in response.json()["features"]} == {None}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"radius_km": "10"}, ["AMAP Chartrons", "AMAP Mérignac", "AMAP Pessac"]),
        ({"radius_km": "0.5"}, ["AMAP Chartrons"]),
        ({"bbox": "-0.7,44.7,-0.2,45.0"}, ["AMAP Chartrons", "AMAP Mérignac", "AMAP Pessac", "AMAP Libourne"]),
        ({"products": "legumes"}, ["AMAP Chartrons", "AMAP Mérignac", "AMAP Pessac"]),
        ({"products": "legumes,oeufs"}, ["AMAP Chartrons"]),
        ({"products": "OEUFS"}, ["AMAP Chartrons", "AMAP Arcachon"]),
        ({"weekday": "2"}, ["AMAP Chartrons", "AMAP Pessac"]),
        ({"accepting": "true"}, ["AMAP Chartrons", "AMAP Pessac", "AMAP Libourne"]),
        ({"accepting": "false"}, ["AMAP Mérignac", "AMAP Arcachon"]),
        ({"network": "amap-gironde"}, ["AMAP Mérignac", "AMAP Libourne"]),
        ({"products": "legumes", "weekday": "2", "radius_km": "5"}, ["AMAP Chartrons"]),
        ({"products": "vin"}, []),
    ],
)
def test_each_filter_narrows_the_nearest_amaps(client, gironde, params, expected):
    assert names(client.get(AMAPS, {"near": NEAR_BORDEAUX, **params})) == expected


def test_filters_apply_without_near_too(client, gironde):
    assert names(client.get(AMAPS, {"weekday": "2"})) == ["AMAP Chartrons", "AMAP Pessac"]
    assert names(client.get(AMAPS, {"bbox": "-1.3,44.5,-1.0,44.8"})) == ["AMAP Arcachon"]


def test_pages_follow_each_other_and_the_page_size_is_capped(client, gironde):
    first = client.get(AMAPS, {"near": NEAR_BORDEAUX, "limit": 2}).json()
    assert [f["properties"]["name"] for f in first["features"]] == ["AMAP Chartrons", "AMAP Mérignac"]
    assert first["previous"] is None
    second = client.get(first["next"]).json()
    assert [f["properties"]["name"] for f in second["features"]] == ["AMAP Pessac", "AMAP Libourne"]
    assert second["offset"] == 2
    last = client.get(second["next"]).json()
    assert [f["properties"]["name"] for f in last["features"]] == ["AMAP Arcachon"]
    assert last["next"] is None
    assert client.get(last["previous"]).json()["features"] == second["features"]

    assert client.get(AMAPS, {"near": NEAR_BORDEAUX, "limit": 100}).status_code == 200
    too_many = client.get(AMAPS, {"near": NEAR_BORDEAUX, "limit": 101})
    assert too_many.status_code == 400
    assert too_many.json() == {"limit": ["le nombre de résultats doit être compris entre 1 et 100"]}


def test_default_page_holds_ten_and_costs_the_same_queries_as_a_full_one(client):
    Amap.objects.bulk_create(
        Amap(name=f"AMAP {i:03}", location=Point(-0.5 + i / 1000, 44.8, srid=4326), commune_id="33063")
        for i in range(120)
    )
    counts = []
    for limit in (None, 100):
        with CaptureQueriesContext(connection) as queries:
            response = client.get(AMAPS, {"near": NEAR_BORDEAUX} | ({"limit": limit} if limit else {}))
        counts.append(len(queries))
        assert len(response.json()["features"]) == (limit or 10)
    assert counts[0] == counts[1] == 1  # one search query, whatever the page size


BAD_PARAMETERS = [
    ("near", "bordeaux", "longitude,latitude"),
    ("near", "-0.57", "longitude,latitude"),
    ("near", "1,2,3", "longitude,latitude"),
    ("near", "abc,44.8", "n'est pas un nombre"),
    ("near", "nan,44.8", "n'est pas un nombre"),
    ("near", "-0.57,inf", "n'est pas un nombre"),
    ("near", "1e400,44.8", "n'est pas un nombre fini"),
    ("near", "-0.57,91", "la latitude doit être comprise entre -90 et 90"),
    ("near", "-0.57,-90.5", "la latitude doit être comprise entre -90 et 90"),
    ("near", "181,44.8", "la longitude doit être comprise entre -180 et 180"),
    ("near", "44.8378,-0.5792", "inversées"),
    ("near", "139.69,35.69", "hors de France"),
    ("radius_km", "-5", "le rayon doit être positif"),
    ("radius_km", "0", "le rayon doit être positif"),
    ("radius_km", "100000", "le rayon ne peut dépasser 500 km"),
    ("radius_km", "nan", "n'est pas un nombre"),
    ("radius_km", "dix", "n'est pas un nombre"),
    ("bbox", "0,45,-1,44", "rectangle inversé"),
    ("bbox", "-1,44,-1,45", "rectangle inversé ou vide"),
    ("bbox", "-30,30,30,60", "rectangle trop grand"),
    ("bbox", "-1,44,0", "minlon,minlat,maxlon,maxlat"),
    ("bbox", "-1,44,0,nan", "n'est pas un nombre"),
    ("bbox", "-1,44,0,95", "la latitude doit être comprise entre -90 et 90"),
    ("products", "legumes,caviar", "produit inconnu : caviar"),
    ("products", ",,", "aucun produit"),
    ("products", ",".join(f"p{i}" for i in range(11)), "10 produits au plus"),
    ("network", "reseau-inconnu", "réseau inconnu : reseau-inconnu"),
    ("weekday", "0", "le jour doit être compris entre 1 (lundi) et 7 (dimanche)"),
    ("weekday", "8", "le jour doit être compris entre 1 (lundi) et 7 (dimanche)"),
    ("weekday", "mardi", "n'est pas un nombre entier"),
    ("weekday", "2.5", "n'est pas un nombre entier"),
    ("accepting", "peut-être", "attendu « true » ou « false »"),
    ("limit", "0", "le nombre de résultats doit être compris entre 1 et 100"),
    ("limit", "-3", "le nombre de résultats doit être compris entre 1 et 100"),
    ("limit", "1000000000000", "n'est pas un nombre entier"),
    ("limit", "dix", "n'est pas un nombre entier"),
    ("offset", "-1", "le décalage doit être compris entre 0 et 1000"),
    ("offset", "1001", "le décalage doit être compris entre 0 et 1000"),
    ("near", "-0.57,\x0044.8", "caractère de contrôle interdit"),
    ("near", "1" * 500, "valeur trop longue"),
]


@pytest.mark.parametrize(("parameter", "value", "reason"), BAD_PARAMETERS)
def test_bad_parameters_get_a_400_naming_the_parameter_and_the_reason(client, parameter, value, reason):
    query = {parameter: value}
    if parameter == "radius_km":
        query["near"] = NEAR_BORDEAUX
    response = client.get(AMAPS, query)
    assert response.status_code == 400
    body = response.json()
    assert list(body) == [parameter]
    assert reason in body[parameter][0]
    if parameter != "weekday" and parameter != "accepting":
        farm_response = client.get(FARMS, query)
        assert farm_response.status_code == 400
        assert reason in farm_response.json()[parameter][0]


def test_radius_without_a_point_and_several_errors_at_once(client):
    response = client.get(AMAPS, {"radius_km": "10", "weekday": "9", "limit": "500"})
    assert response.status_code == 400
    assert set(response.json()) == {"radius_km", "weekday", "limit"}
    assert "near" in response.json()["radius_km"][0]


_ANY_TEXT = st.one_of(
    st.text(max_size=40),
    st.from_regex(r"[-+0-9.,eE naif]{0,30}", fullmatch=True),
    st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=5).map(
        lambda xs: ",".join(repr(x) for x in xs)
    ),
)


@pytest.mark.parametrize(
    "parameter", ["near", "radius_km", "bbox", "products", "weekday", "accepting", "network", "limit", "offset"]
)
@hypothesis_settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=_ANY_TEXT)
def test_no_value_of_any_parameter_makes_a_server_error(client, parameter, value):
    query = {parameter: value}
    if parameter == "radius_km":
        query["near"] = NEAR_BORDEAUX
    for url in (AMAPS, FARMS):
        response = client.get(url, query)
        assert response.status_code in (200, 400), (url, query, response.content)
        if response.status_code == 400:
            assert parameter in response.json()


def test_features_written_by_postgis_stay_valid_json_whatever_the_text(client):
    """Nearest features go out as PostGIS wrote them (not re-encoded): quotes, backslashes, control
    and separator characters in a name must still give valid JSON, and the browsable API works."""
    tricky = 'AMAP « Le "Panier" » \\ fin\tet\u2028ligne'
    AmapFactory(name=tricky, location=BORDEAUX, delivery_notes="Sous la halle\nau fond")
    response = client.get(AMAPS, {"near": NEAR_BORDEAUX})
    assert names(response) == [tricky]
    assert response.json()["features"][0]["properties"]["delivery_notes"] == "Sous la halle\nau fond"
    assert "\u2028" not in response.content.decode()  # escaped, as DRF does: the body is valid JavaScript too
    browsable = client.get(AMAPS, {"near": NEAR_BORDEAUX, "format": "api"})
    assert browsable.status_code == 200
    assert "FeatureCollection" in browsable.content.decode()


def test_throttle_answers_429_beyond_the_rate(client, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"anon": "3/minute", "user": "3/minute"},
    }
    cache.clear()
    statuses = [client.get(AMAPS, {"near": NEAR_BORDEAUX}).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    throttled = client.get(FARMS)
    assert throttled.status_code == 429
    assert "Retry-After" in throttled.headers


EXACT_FARM = Point(-0.243117, 44.915283, srid=4326)  # a farmhouse near Libourne (private)


def _exact_coordinate_strings(point: Point) -> list[str]:
    return [repr(point.x), repr(point.y), f"{point.x:.4f}", f"{point.y:.4f}"]


def test_farms_show_their_masked_point_never_the_exact_one_nor_contacts(client):
    farm = FarmFactory(
        name="Ferme du Moulin",
        location=EXACT_FARM,
        contact_email="paysanne@example.org",
        phone="05 56 00 00 00",
        products=["legumes"],
    )
    PartnershipFactory(farm=farm, amap=AmapFactory(name="AMAP Libourne"))
    farm.refresh_from_db()
    responses = [
        client.get(FARMS, {"near": NEAR_BORDEAUX}),
        client.get(FARMS),
        client.get(FARMS, {"bbox": "-0.5,44.8,0,45"}),
        client.get(f"{FARMS}{farm.pk}/"),
        client.get(f"{AMAPS}{farm.partnerships.get().amap_id}/"),
    ]
    for response in responses:
        assert response.status_code == 200
        text = response.content.decode()
        for secret in [*_exact_coordinate_strings(EXACT_FARM), "paysanne@example.org", "05 56 00 00 00"]:
            assert secret not in text, (response.request["PATH_INFO"], secret)
    feature = responses[0].json()["features"][0]
    assert feature["geometry"]["coordinates"] == [farm.public_location.x, farm.public_location.y]
    public_m = GEOD.inv(BORDEAUX.x, BORDEAUX.y, farm.public_location.x, farm.public_location.y)[2]
    assert feature["properties"]["distance_m"] == pytest.approx(public_m, rel=1e-3)
    detail = responses[3].json()
    assert detail["properties"]["partner_amaps"] == [
        {"amap": {"id": farm.partnerships.get().amap_id, "name": "AMAP Libourne"}, "product": "legumes"}
    ]


def test_farm_filters(client):
    network = NetworkFactory(slug="paysans-33")
    FarmFactory(name="Maraîchage", location=MERIGNAC, products=["legumes"]).networks.add(network)
    FarmFactory(name="Rucher", location=LIBOURNE, products=["miel"])
    FarmFactory(name="Retraitée", location=MERIGNAC, is_active=False)
    assert names(client.get(FARMS, {"near": NEAR_BORDEAUX})) == ["Maraîchage", "Rucher"]
    assert names(client.get(FARMS, {"near": NEAR_BORDEAUX, "products": "miel"})) == ["Rucher"]
    assert names(client.get(FARMS, {"network": "paysans-33"})) == ["Maraîchage"]
    assert names(client.get(FARMS, {"near": NEAR_BORDEAUX, "radius_km": "15"})) == ["Maraîchage"]


def test_amap_detail_shows_partners_and_closed_status(client, gironde):
    chartrons = gironde["bordeaux"]
    chartrons.contact_email = "contact@amap-chartrons.example"
    chartrons.save()
    PartnershipFactory(amap=chartrons, farm=FarmFactory(name="Ferme des Graves"))
    body = client.get(f"{AMAPS}{chartrons.pk}/").json()
    assert body["type"] == "Feature"
    assert body["properties"]["name"] == "AMAP Chartrons"
    assert body["properties"]["contact_email"] == "contact@amap-chartrons.example"  # the AMAP's public contact
    assert [p["farm"]["name"] for p in body["properties"]["partner_farms"]] == ["Ferme des Graves"]

    closed = Amap.objects.get(name="AMAP fermée")
    assert client.get(f"{AMAPS}{closed.pk}/").json()["properties"]["status"] == "closed"
    assert client.get(f"{AMAPS}999999999/").status_code == 404
    assert client.get(f"{FARMS}999999999/").status_code == 404


def test_networks_and_product_categories(client, gironde):
    NetworkFactory(slug="amap-idf", name="Réseau AMAP Île-de-France")
    listing = client.get("/api/v1/networks/").json()
    # by name: "Réseau AMAP Île-de-France" before "Réseau des AMAP de Gironde"
    assert [n["slug"] for n in listing["results"]] == ["amap-idf", "amap-gironde"]
    network = Network.objects.get(slug="amap-gironde")
    Amap.objects.get(name="AMAP fermée").networks.add(network)  # closed: not counted
    FarmFactory(name="Ferme du réseau").networks.add(network)
    FarmFactory(name="Ferme arrêtée", is_active=False).networks.add(network)
    gironde_network = client.get("/api/v1/networks/amap-gironde/").json()
    assert (gironde_network["amap_count"], gironde_network["farm_count"]) == (2, 1)
    assert gironde_network["departments"] == []
    assert gironde_network["page_url"] == "/reseau/amap-gironde/"
    assert client.get("/api/v1/networks/inconnu/").status_code == 404
    assert client.get("/api/v1/networks/", {"limit": 1000}).json()["results"]  # capped, not refused

    categories = client.get("/api/v1/product-categories/").json()
    legumes = next(c for c in categories if c["slug"] == "legumes")
    assert legumes["name"] == "Légumes"
    assert len(categories) >= 20


def test_schema_and_docs_are_served_without_a_cdn(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    spec = schema.json()
    amaps = spec["paths"]["/api/v1/amaps/"]["get"]
    assert {p["name"] for p in amaps["parameters"]} >= {
        "near",
        "radius_km",
        "bbox",
        "products",
        "weekday",
        "accepting",
        "network",
        "limit",
        "offset",
    }
    assert all(p.get("description") for p in amaps["parameters"])
    assert "400" in amaps["responses"]
    for path in ["/api/v1/farms/", "/api/v1/farms/{id}/", "/api/v1/amaps/{id}/", "/api/v1/networks/"]:
        assert path in spec["paths"]
    assert "/api/v1/product-categories/" in spec["paths"]

    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    for cdn in ("cdn.jsdelivr.net", "unpkg.com", "cdnjs", "googleapis"):
        assert cdn not in html
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui.css" in html
    assert finders.find("drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")
    assert finders.find("drf_spectacular_sidecar/swagger-ui-dist/swagger-ui.css")


def test_list_features_equal_the_generic_serializer_documents(gironde):
    """List features are built for speed: by PostGIS in the nearest search, by hand in the pages by
    name. Neither document may differ from the generic serializer's."""
    from rest_framework_gis.serializers import GeoFeatureModelSerializer

    from directory.models import Farm
    from directory.selectors import amap_features_near, farm_features_near
    from directory.serializers import AmapFeatureSerializer, FarmFeatureSerializer

    chartrons = gironde["bordeaux"]
    chartrons.delivery_start, chartrons.delivery_end = "18:00", "19:30"
    chartrons.address, chartrons.website = "Place du Marché", "https://amap-chartrons.example"
    chartrons.delivery_notes = "Sous la halle « Chartrons »"
    chartrons.save()
    chartrons.networks.add(NetworkFactory(slug="reseau-bordelais"))
    farm = FarmFactory(
        products=["legumes", "oeufs"], labels=["ab"], product_details="Légumes de saison", delivery_radius_km=25
    )
    farm.networks.add(NetworkFactory(slug="paysans"))
    FarmFactory(location=LIBOURNE, commune=None, labels=[], delivery_radius_km=None)  # nulls, empty lists
    cases = [
        (AmapFeatureSerializer, Amap, amap_features_near(point=BORDEAUX, limit=10, include_inactive=True)),
        (FarmFeatureSerializer, Farm, farm_features_near(point=BORDEAUX, limit=10)),
    ]
    for serializer_class, model, found in cases:
        assert len(found) == model.objects.count()
        for result in found:
            obj = model.objects.get(pk=result.id)
            obj.distance_m = result.distance_m
            serializer = serializer_class(obj)
            generic = json.loads(json.dumps(GeoFeatureModelSerializer.to_representation(serializer, obj)))
            assert result.feature == generic  # built by PostGIS
            obj.distance_m = None
            by_hand = serializer_class(obj)
            generic["properties"]["distance_m"] = None
            assert json.loads(json.dumps(by_hand.data)) == generic  # built by hand (no `near`)
