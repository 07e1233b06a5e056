"""Accounts and roles: sign-up, login, password reset, "Ma ferme" / "Mon AMAP", and who may edit or post what."""

import re

import pytest
from django.core import mail
from django.urls import reverse

from accounts.models import User
from directory.models import Farm, LocationPrecision
from matching.models import Annonce
from tests.factories import AmapFactory, FarmFactory, NetworkFactory, UserFactory, product

pytestmark = pytest.mark.django_db
PASSWORD = "motdepasse-test"


@pytest.fixture(autouse=True)
def _fast_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def login(client, user):
    assert client.login(email=user.email, password=PASSWORD)
    return client


def test_signup_logs_the_person_in(client):
    response = client.post(
        reverse("accounts:signup"),
        {
            "email": "Paysanne@Example.org",
            "display_name": "Jeanne",
            "password1": "radis-noir-42",
            "password2": "radis-noir-42",
        },
    )
    assert response.status_code == 302
    assert User.objects.get(email="paysanne@example.org").display_name == "Jeanne"
    page = client.get(reverse("accounts:dashboard"))
    assert "Bonjour Jeanne" in page.content.decode()


def test_signup_refuses_a_taken_address_and_weak_password(client):
    UserFactory(email="deja@example.org")
    response = client.post(
        reverse("accounts:signup"),
        {"email": "deja@example.org", "display_name": "", "password1": "123", "password2": "123"},
    )
    assert response.status_code == 200
    text = response.content.decode()
    assert "Un compte existe déjà avec cette adresse." in text


def test_login_and_logout(client):
    user = UserFactory(email="amapien@example.org")
    response = client.post(reverse("accounts:login"), {"username": user.email, "password": PASSWORD})
    assert response.status_code == 302 and response.url == reverse("accounts:dashboard")
    response = client.post(reverse("accounts:logout"))
    assert response.status_code == 302
    assert client.get(reverse("accounts:dashboard")).status_code == 302  # back to the login page


def test_password_reset_by_email(client):
    UserFactory(email="oubli@example.org")
    client.post(reverse("accounts:password_reset"), {"email": "oubli@example.org"})
    assert len(mail.outbox) == 1
    link = re.search(r"http://testserver(\S+)", mail.outbox[0].body).group(1)
    response = client.get(link, follow=True)
    form_url = response.redirect_chain[-1][0]
    response = client.post(form_url, {"new_password1": "carotte-sauvage-7", "new_password2": "carotte-sauvage-7"})
    assert response.status_code == 302
    assert client.login(email="oubli@example.org", password="carotte-sauvage-7")


def test_ma_ferme_creates_a_farm_managed_by_the_user_with_a_private_point(client):
    user = UserFactory()
    login(client, user)
    response = client.post(
        reverse("accounts:farm_create"),
        {
            "name": "Ferme des Trois Chênes",
            "address": "Lieu-dit Les Chênes, 33500 Libourne",
            "products": [product("oeufs").pk, product("volailles").pk],
            "labels": ["ab"],
            "delivery_radius_km": 35,
            "capacity_shares": 40,
        },
    )
    farm = Farm.objects.get(name="Ferme des Trois Chênes")
    assert response.status_code == 302
    assert list(farm.managers.all()) == [user]
    assert farm.commune_id == "33243"  # Libourne
    assert farm.location is not None and farm.public_location is not None
    assert farm.location_precision == LocationPrecision.COMMUNE
    assert set(farm.products.values_list("slug", flat=True)) == {"oeufs", "volailles"}


def test_ma_ferme_says_when_the_address_cannot_be_found(client):
    login(client, UserFactory())
    response = client.post(
        reverse("accounts:farm_create"),
        {"name": "Nulle part", "address": "zzzz qqqq", "products": [product("oeufs").pk], "delivery_radius_km": 30},
    )
    assert response.status_code == 200
    assert "introuvable" in response.content.decode() or "ressemble" in response.content.decode()
    assert not Farm.objects.filter(name="Nulle part").exists()


def test_mon_amap_edits_delivery_and_openness(client):
    user = UserFactory()
    amap = AmapFactory(address="Place du Marché, Bordeaux")
    amap.managers.add(user)
    login(client, user)
    response = client.post(
        reverse("accounts:amap_edit", args=[amap.pk]),
        {
            "name": amap.name,
            "address": amap.address,
            "delivery_weekdays": [4],
            "delivery_start": "18:30",
            "delivery_end": "20:00",
            "delivery_frequency": "weekly",
            "accepting_members": "waiting_list",
            "member_count": 55,
            "products": [product("legumes").pk],
        },
    )
    assert response.status_code == 302
    amap.refresh_from_db()
    assert amap.delivery_weekdays == [4]
    assert amap.accepting_members == "waiting_list"
    assert amap.member_count == 55


def test_nobody_edits_a_farm_or_amap_they_do_not_manage_through_pages(client):
    owner, stranger = UserFactory(), UserFactory()
    farm = FarmFactory(products=["oeufs"])
    farm.managers.add(owner)
    amap = AmapFactory()
    amap.managers.add(owner)
    login(client, stranger)
    assert client.get(reverse("accounts:farm_edit", args=[farm.pk])).status_code == 403
    assert client.post(reverse("accounts:farm_edit", args=[farm.pk]), {"name": "Volée"}).status_code == 403
    assert client.get(reverse("accounts:amap_edit", args=[amap.pk])).status_code == 403
    assert client.post(reverse("accounts:amap_edit", args=[amap.pk]), {"name": "Volée"}).status_code == 403
    farm.refresh_from_db()
    amap.refresh_from_db()
    assert farm.name != "Volée" and amap.name != "Volée"
    # Posting an annonce for someone else's farm or AMAP: the page does not even offer it.
    assert client.get(reverse("matching:annonce_create") + f"?ferme={farm.pk}").status_code == 404
    assert (
        client.post(
            reverse("matching:annonce_create") + f"?amap={amap.pk}",
            {"products": [product("oeufs").pk], "radius_km": 30},
        ).status_code
        == 404
    )
    assert not Annonce.objects.exists()


def test_nobody_posts_or_edits_annonces_for_others_through_the_api(client):
    owner, stranger = UserFactory(), UserFactory()
    farm = FarmFactory(products=["oeufs"])
    farm.managers.add(owner)
    amap = AmapFactory()
    amap.managers.add(owner)
    login(client, stranger)
    url = reverse("annonce-list")
    response = client.post(
        url, {"kind": "paysan_cherche_amap", "farm": farm.pk, "products": ["oeufs"]}, content_type="application/json"
    )
    assert response.status_code == 403
    response = client.post(
        url, {"kind": "amap_cherche_paysan", "amap": amap.pk, "products": ["oeufs"]}, content_type="application/json"
    )
    assert response.status_code == 403
    assert not Annonce.objects.exists()

    login(client, owner)
    created = client.post(
        url, {"kind": "paysan_cherche_amap", "farm": farm.pk, "products": ["oeufs"]}, content_type="application/json"
    )
    assert created.status_code == 201
    annonce_id = created.json()["id"]

    login(client, stranger)
    detail = reverse("annonce-detail", args=[annonce_id])
    assert client.patch(detail, {"radius_km": 200}, content_type="application/json").status_code == 403
    assert client.get(reverse("annonce-matches", args=[annonce_id])).status_code == 403
    assert client.post(reverse("matching:annonce_status", args=[annonce_id]), {"status": "paused"}).status_code == 403
    assert Annonce.objects.get(pk=annonce_id).radius_km == 30
    assert Annonce.objects.get(pk=annonce_id).status == "open"

    client.logout()
    assert client.post(url, {}, content_type="application/json").status_code in (401, 403)


def test_network_admins_moderate_annonces_in_their_territory_only(client):
    from geo.models import Department
    from matching import services

    admin = UserFactory()
    network = NetworkFactory(departments=[Department.objects.get(code="33")])
    network.admins.add(admin)
    publisher = UserFactory()
    here = FarmFactory(products=["oeufs"])  # Libourne, Gironde
    here.managers.add(publisher)
    elsewhere = FarmFactory(
        products=["oeufs"], location=here.location.__class__(4.8357, 45.764, srid=4326), commune=None
    )
    elsewhere.commune_id = "69123"  # Lyon
    elsewhere.save()
    elsewhere.managers.add(publisher)
    local = services.annonce_publish(user=publisher, kind="paysan_cherche_amap", farm=here, products=[product("oeufs")])
    distant = services.annonce_publish(
        user=publisher, kind="paysan_cherche_amap", farm=elsewhere, products=[product("oeufs")]
    )
    login(client, admin)
    response = client.post(
        reverse("matching:annonce_moderate", args=[local.pk]), {"status": "paused", "note": "Doublon"}
    )
    assert response.status_code == 302
    local.refresh_from_db()
    assert local.status == "paused" and local.moderation_note == "Doublon" and local.moderated_by == admin
    response = client.post(reverse("matching:annonce_moderate", args=[distant.pk]), {"status": "paused", "note": "x"})
    assert response.status_code == 403
    distant.refresh_from_db()
    assert distant.status == "open"
    # The moderator sees the annonce (and its matches) on their dashboard and the API.
    assert local.title or str(local) in client.get(reverse("accounts:dashboard")).content.decode()
    assert client.get(reverse("annonce-matches", args=[local.pk])).status_code == 200
