"""/api/v1/geocode/ and /api/v1/communes/: what a client sees, including its mistakes."""

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

pytestmark = pytest.mark.django_db

GEOCODE = "/api/v1/geocode/"
COMMUNES = "/api/v1/communes/"


@pytest.fixture(autouse=True)
def fresh_throttle_counters():
    cache.clear()  # throttling counts requests in the cache, shared by the whole test run
    yield
    cache.clear()


@pytest.fixture
def client():
    return APIClient()


def test_geocode_a_town(client):
    response = client.get(GEOCODE, {"q": "Bordeaux"})
    assert response.status_code == 200
    [bordeaux] = response.json()
    assert bordeaux["label"] == "Bordeaux (33000)"
    assert bordeaux["commune"] == {"code": "33063", "name": "Bordeaux", "kind": "COM"}
    assert bordeaux["precision"] == "commune"
    assert bordeaux["score"] == 1.0
    # Town hall of Bordeaux, WGS84.
    assert (bordeaux["lon"], bordeaux["lat"]) == pytest.approx((-0.58, 44.84), abs=0.02)


@pytest.mark.parametrize(
    ("q", "insee", "precision"),
    [
        ("33000", "33063", "postal_code"),
        ("mérignac", "33281", "commune"),
        ("Lyon 7e", "69387", "commune"),
        ("Paris 11", "75111", "commune"),
        ("st etienne", "42218", "commune"),
        ("44,84 -0,58", "33063", "exact"),
    ],
)
def test_geocode_what_people_type(client, q, insee, precision):
    first = client.get(GEOCODE, {"q": q}).json()[0]
    assert (first["commune"]["code"], first["precision"]) == (insee, precision)


def test_ambiguous_text_gives_several_places_most_populous_first(client):
    candidates = client.get(GEOCODE, {"q": "Saint-Denis", "limit": 3}).json()
    assert [c["commune"]["code"] for c in candidates] == ["97411", "93066", candidates[2]["commune"]["code"]]
    assert len(candidates) == 3
    assert candidates[0]["label"] == "Saint-Denis (97400)"


def test_geocode_nothing_found_is_an_empty_list(client):
    response = client.get(GEOCODE, {"q": "Zzyzxqwv"})
    assert (response.status_code, response.json()) == (200, [])


@pytest.mark.parametrize(
    ("params", "field", "reason"),
    [
        ({}, "q", "obligatoire"),
        ({"q": ""}, "q", "vide"),
        ({"q": "   "}, "q", "vide"),
        ({"q": "x" * 201}, "q", "200"),
        ({"q": "!!!"}, "q", "ne ressemble"),
        ({"q": "91.5, 2.3"}, "q", "latitude"),
        ({"q": "44.84, 181"}, "q", "longitude"),
        ({"q": "-0.58, 44.84"}, "q", "inversées"),
        ({"q": "nul\x00byte"}, "q", ""),
        ({"q": "Bordeaux", "limit": "abc"}, "limit", "entier"),
        ({"q": "Bordeaux", "limit": "0"}, "limit", "1"),
        ({"q": "Bordeaux", "limit": "21"}, "limit", "20"),
        ({"q": "Bordeaux", "limit": "NaN"}, "limit", ""),
    ],
)
def test_geocode_bad_input_is_a_400_naming_the_parameter(client, params, field, reason):
    response = client.get(GEOCODE, params)
    assert response.status_code == 400
    body = response.json()
    assert list(body) == [field]
    assert reason in body[field][0]


@pytest.mark.parametrize("q", ["NaN, NaN", "inf, 0", "1e999, 0", "9" * 150 + ", 1", "%00", "'; DROP TABLE x; --", "⁂"])
def test_geocode_never_crashes(client, q):
    assert client.get(GEOCODE, {"q": q}).status_code in (200, 400)


def test_commune_search_by_name_prefix(client):
    response = client.get(COMMUNES, {"q": "bord"})
    assert response.status_code == 200
    body = response.json()
    assert body["count"] > 10
    first = body["results"][0]
    assert first["code"] == "33063"
    assert first["name"] == "Bordeaux"
    assert first["department"] == {"code": "33", "name": "Gironde"}
    assert first["region"]["code"] == "75"
    assert first["population"] > 250_000
    assert "33000" in first["postal_codes"]
    assert (first["lon"], first["lat"]) == pytest.approx((-0.58, 44.84), abs=0.02)
    assert "geom" not in first  # no outlines in a list


def test_commune_search_by_postal_code_and_insee_prefix(client):
    assert [c["code"] for c in client.get(COMMUNES, {"q": "33000"}).json()["results"]] == ["33063"]
    gironde = client.get(COMMUNES, {"q": "330", "limit": 100}).json()["results"]
    assert all(c["department"]["code"] == "33" for c in gironde)
    corse_du_sud = client.get(COMMUNES, {"q": "2A0"}).json()
    assert corse_du_sud["results"][0]["code"] == "2A004"  # Ajaccio, the most populous
    assert all(c["code"].startswith("2A0") for c in corse_du_sud["results"])


def test_commune_search_lists_arrondissements_with_their_city(client):
    results = client.get(COMMUNES, {"q": "lyon"}).json()["results"]
    assert results[0]["code"] == "69123"
    lyon_7 = next(c for c in results if c["code"] == "69387")
    assert (lyon_7["kind"], lyon_7["parent"]) == ("ARM", "69123")


def test_commune_search_pages(client):
    first = client.get(COMMUNES, {"q": "saint-m", "limit": 5}).json()
    second = client.get(COMMUNES, {"q": "saint-m", "limit": 5, "offset": 5}).json()
    assert first["count"] == second["count"] > 100
    assert len(first["results"]) == len(second["results"]) == 5
    assert not {c["code"] for c in first["results"]} & {c["code"] for c in second["results"]}
    assert "offset=5" in first["next"]
    populations = [c["population"] for c in first["results"] + second["results"]]
    assert populations == sorted(populations, reverse=True)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "q"),
        ({"q": ""}, "q"),
        ({"q": "x" * 101}, "q"),
        ({"q": "bord", "limit": "101"}, "limit"),
        ({"q": "bord", "limit": "-1"}, "limit"),
        ({"q": "bord", "limit": "dix"}, "limit"),
        ({"q": "bord", "offset": "-5"}, "offset"),
        ({"q": "bord", "offset": "99999999999999999999"}, "offset"),
    ],
)
def test_commune_search_bad_input_is_a_400_naming_the_parameter(client, params, field):
    response = client.get(COMMUNES, params)
    assert response.status_code == 400
    assert field in response.json()


def test_commune_search_without_match_is_empty(client):
    body = client.get(COMMUNES, {"q": "!!!"}).json()
    assert (body["count"], body["results"]) == (0, [])


def test_public_geo_endpoints_are_throttled(client, monkeypatch):
    monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, "anon", "3/minute")
    statuses = [client.get(GEOCODE, {"q": "Bordeaux"}).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert client.get(COMMUNES, {"q": "bord"}).status_code == 429


def test_geo_endpoints_are_in_the_openapi_schema(client):
    schema = client.get("/api/schema/", {"format": "json"}).json()
    geocode = schema["paths"]["/api/v1/geocode/"]["get"]
    assert {p["name"] for p in geocode["parameters"]} >= {"q", "limit"}
    assert "400" in geocode["responses"]
    communes = schema["paths"]["/api/v1/communes/"]["get"]
    assert {p["name"] for p in communes["parameters"]} >= {"q", "limit", "offset"}
