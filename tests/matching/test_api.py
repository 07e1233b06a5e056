"""/api/v1/annonces/: list with filters, create/update, ranked matches, 400s that name the field, schema."""

import pytest
from django.urls import reverse

from tests.factories import BORDEAUX, LIBOURNE, AmapFactory, FarmFactory, NetworkFactory, UserFactory

from .conftest import amap_annonce, farm_annonce, point_at

pytestmark = pytest.mark.django_db
LIST = "/api/v1/annonces/"


@pytest.fixture
def farmer(client):
    user = UserFactory()
    farm = FarmFactory(name="Ferme de la Dordogne", location=LIBOURNE, products=["oeufs"])
    farm.managers.add(user)
    client.force_login(user)
    return user, farm


def test_create_then_read_back_without_the_exact_farm_point(client, farmer):
    user, farm = farmer
    response = client.post(
        LIST,
        {
            "kind": "paysan_cherche_amap",
            "farm": farm.pk,
            "products": ["oeufs", "volailles"],
            "shares": 40,
            "delivery_weekdays": [2, 4],
            "radius_km": 35,
            "description": "Poules en plein air",
        },
        content_type="application/json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "open"
    assert sorted(body["products"]) == ["oeufs", "volailles"]
    farm.refresh_from_db()
    # Only the public (masked) point leaves the server.
    assert body["point"] == {"lon": round(farm.public_location.x, 6), "lat": round(farm.public_location.y, 6)}
    assert body["point"] != {"lon": round(farm.location.x, 6), "lat": round(farm.location.y, 6)}

    client.logout()
    listed = client.get(LIST).json()
    assert [a["id"] for a in listed["results"]] == [body["id"]]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"kind": "paysan_cherche_amap", "products": ["oeufs"]}, "farm"),
        ({"kind": "vendre", "products": ["oeufs"]}, "kind"),
        ({"kind": "paysan_cherche_amap", "products": ["caviar"]}, "products"),
        ({"kind": "paysan_cherche_amap", "products": []}, "products"),
        ({"kind": "paysan_cherche_amap", "products": ["oeufs"], "radius_km": 0}, "radius_km"),
        ({"kind": "paysan_cherche_amap", "products": ["oeufs"], "delivery_weekdays": [9]}, "delivery_weekdays"),
        ({"kind": "paysan_cherche_amap", "products": ["oeufs"], "expires_on": "2001-01-01"}, "expires_on"),
        ({"kind": "paysan_cherche_amap", "products": ["oeufs"], "shares": -3}, "shares"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(client, farmer, payload, field):
    _user, farm = farmer
    if field != "farm":
        payload = {**payload, "farm": farm.pk}
    response = client.post(LIST, payload, content_type="application/json")
    assert response.status_code == 400
    assert field in response.json()


def test_list_filters_and_their_errors(client):
    network = NetworkFactory(slug="inter-amap-gironde")
    farm = FarmFactory(location=LIBOURNE, products=["oeufs"])
    eggs = farm_annonce(farm, offered=("oeufs",))
    amap = AmapFactory(location=BORDEAUX)
    amap.networks.add(network)
    bread = amap_annonce(amap, wanted=("pain",))

    def ids(**params):
        response = client.get(LIST, params)
        assert response.status_code == 200, response.json()
        return {a["id"] for a in response.json()["results"]}

    assert ids() == {eggs.pk, bread.pk}
    assert ids(type="amap_cherche_paysan") == {bread.pk}
    assert ids(produit="oeufs") == {eggs.pk}
    assert ids(departement="33") == {eggs.pk, bread.pk}
    assert ids(departement="69") == set()
    assert ids(reseau="inter-amap-gironde") == {bread.pk}
    for name, value in (("type", "x"), ("produit", "caviar"), ("departement", "999"), ("reseau", "inconnu")):
        response = client.get(LIST, {name: value})
        assert response.status_code == 400
        assert name in response.json()


def test_matches_endpoint_ranks_with_reasons_and_drive_time(client, farmer):
    _user, farm = farmer
    # Matching measures from the farm's public (masked) point, never from the farmhouse (issue 12).
    near = AmapFactory(name="Proche", location=point_at(farm.public_location, km=6))
    AmapFactory(name="Loin", location=point_at(farm.public_location, km=28, azimuth=200))
    annonce = farm_annonce(farm, user=_user)

    response = client.get(reverse("annonce-matches", args=[annonce.pk]), {"limit": 5})

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    first = body["results"][0]
    assert first["rank"] == 1
    assert first["counterpart"] == {
        "type": "amap",
        "id": near.pk,
        "name": "Proche",
        "url": reverse("directory:amap_detail", args=[near.pk]),
    }
    assert 0 <= first["score"] <= 1
    assert first["score"] >= body["results"][1]["score"]
    assert set(first["components"]) == {
        "distance",
        "product_gap",
        "tour_synergy",
        "reciprocal",
        "weekday",
        "size_openness",
    }
    assert first["reasons"][0].startswith("à 6,0 km")
    assert first["distance_m"] == pytest.approx(6000, abs=1)
    assert first["drive_time_source"] == "estimation"
    assert first["drive_minutes"] == pytest.approx(6 * 1.3, abs=0.1)


@pytest.mark.parametrize("limit", ["0", "51", "dix", "-1"])
def test_matches_limit_is_checked(client, farmer, limit):
    user, farm = farmer
    annonce = farm_annonce(farm, user=user)
    response = client.get(reverse("annonce-matches", args=[annonce.pk]), {"limit": limit})
    assert response.status_code == 400
    assert "limit" in response.json()


def test_owner_updates_status_and_the_board_follows(client, farmer):
    user, farm = farmer
    annonce = farm_annonce(farm, user=user)
    detail = reverse("annonce-detail", args=[annonce.pk])
    response = client.patch(detail, {"status": "paused", "radius_km": 50}, content_type="application/json")
    assert response.status_code == 200
    assert response.json()["status"] == "paused" and response.json()["radius_km"] == 50
    client.logout()
    assert client.get(LIST).json()["results"] == []
    assert client.get(detail).status_code == 404  # paused: not public


def test_schema_documents_annonces_and_matches(client):
    schema = client.get("/api/schema/", {"format": "json"}).json()
    assert "/api/v1/annonces/" in schema["paths"]
    assert "/api/v1/annonces/{id}/matches/" in schema["paths"]
    assert "post" in schema["paths"]["/api/v1/annonces/"]
    assert "patch" in schema["paths"]["/api/v1/annonces/{id}/"]
