"""Staff manage the directory in the Django admin: lists of the demo directory, maps on change pages."""

from urllib.parse import urlparse

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from playwright.sync_api import expect

from accounts.models import User
from directory.models import Amap, Farm, Network


@pytest.fixture
def demo(db):
    call_command("load_demo", amaps=40, farms=40, seed=11, verbosity=0)


@pytest.fixture
def admin_client(db):
    user = User.objects.create_superuser("chef@example.org", "motdepasse-admin")
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    ("url_name", "model"),
    [("admin:directory_amap_changelist", Amap), ("admin:directory_farm_changelist", Farm)],
)
def test_changelists_list_the_demo_directory(demo, admin_client, url_name, model):
    response = admin_client.get(reverse(url_name))
    assert response.status_code == 200
    page = response.content.decode()
    shown = model.objects.filter(is_demo=True).order_by("name", "pk")[:5]
    for obj in shown:
        assert obj.name.replace("'", "&#x27;") in page
    assert "40" in page  # the result count


def test_changelist_filters_and_search_work(demo, admin_client):
    url = reverse("admin:directory_amap_changelist")
    for query in (
        {"is_demo__exact": "1", "status__exact": "active"},
        {"accepting_members__exact": "open", "kind__exact": "classic"},
        {"source": "demo"},
        {"commune__department__code__exact": "75"},
        {"q": "Paris"},
    ):
        assert admin_client.get(url, query).status_code == 200
    amap = Amap.objects.filter(is_demo=True).first()
    response = admin_client.get(url, {"q": amap.commune.name})
    assert amap.name.replace("'", "&#x27;") in response.content.decode()


def test_networks_changelist_shows_demo_networks_and_their_members(demo, admin_client):
    response = admin_client.get(reverse("admin:directory_network_changelist"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Réseau national des AMAP (démo)" in page
    assert "Réseau des AMAP Centre-Val de Loire (démo)" in page
    national = Network.objects.get(slug="demo-national")
    response = admin_client.get(reverse("admin:directory_network_change", args=[national.pk]))
    assert response.status_code == 200


def test_communes_are_searchable_by_name_code_and_postal_code(admin_client):
    url = reverse("admin:geo_commune_changelist")
    assert admin_client.get(url).status_code == 200
    for term, expected in [
        ("33000", "Bordeaux"),
        ("st etienne", "Saint-Étienne"),
        ("2A004", "Ajaccio"),
        ("97411", "Saint-Denis"),
    ]:
        page = admin_client.get(url, {"q": term}).content.decode()
        assert expected in page, term
    # Territories come from load_territories: no "add" button.
    assert admin_client.get(reverse("admin:geo_commune_add")).status_code == 403


def test_amap_change_page_has_a_local_map_widget(demo, admin_client):
    amap = Amap.objects.filter(is_demo=True).first()
    response = admin_client.get(reverse("admin:directory_amap_change", args=[amap.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="id_location_map"' in page
    assert "/static/vendor/ol/ol.js" in page
    assert "cdn.jsdelivr.net" not in page
    assert "new MapWidget(" in page
    # The partner farms are listed inline.
    partner = amap.partnerships.select_related("farm").first()
    if partner:
        assert partner.farm.name.replace("'", "&#x27;") in page


def test_farm_change_page_shows_exact_and_public_points(demo, admin_client):
    farm = Farm.objects.filter(is_demo=True).first()
    response = admin_client.get(reverse("admin:directory_farm_change", args=[farm.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="id_location_map"' in page
    assert f"{farm.public_location.y:.5f}" in page


def test_autocomplete_finds_a_commune_for_an_amap(admin_client):
    response = admin_client.get(
        reverse("admin:autocomplete"),
        {"app_label": "directory", "model_name": "amap", "field_name": "commune", "term": "bordeaux"},
    )
    assert response.status_code == 200
    assert any(item["id"] == "33063" for item in response.json()["results"])


def test_saving_an_amap_in_the_admin_keeps_its_place_and_days(demo, admin_client):
    amap = Amap.objects.filter(is_demo=True).first()
    url = reverse("admin:directory_amap_change", args=[amap.pk])
    partnerships = list(amap.partnerships.all())
    data = {
        "name": "AMAP renommée (démo)",
        "status": "active",
        "kind": "classic",
        "description": "",
        "location": "SRID=4326;POINT(4.8357 45.764)",
        "location_precision": "exact",
        "address": "Place Bellecour",
        "postal_code": "69002",
        "commune": "69123",
        "delivery_weekdays": ["2", "4"],
        "delivery_start_0": "",
        "delivery_start": "18:00",
        "delivery_end": "19:30",
        "delivery_frequency": "weekly",
        "delivery_notes": "",
        "products": [str(p.pk) for p in amap.products.all()],
        "accepting_members": "open",
        "member_count": "50",
        "contact_email": "contact@example.org",
        "phone": "",
        "website": "",
        "platform": "",
        "networks": [],
        "founded_on": "2012-09-01",
        "closed_on": "",
        "rna_id": "",
        "source": "demo",
        "external_id": amap.external_id,
        "is_demo": "on",
        "partnerships-TOTAL_FORMS": str(len(partnerships)),
        "partnerships-INITIAL_FORMS": str(len(partnerships)),
        "partnerships-MIN_NUM_FORMS": "0",
        "partnerships-MAX_NUM_FORMS": "1000",
        # The team inline (admins and référents), empty here.
        "manager_roles-TOTAL_FORMS": "0",
        "manager_roles-INITIAL_FORMS": "0",
        "manager_roles-MIN_NUM_FORMS": "0",
        "manager_roles-MAX_NUM_FORMS": "1000",
    }
    for i, partnership in enumerate(partnerships):
        data.update(
            {
                f"partnerships-{i}-id": str(partnership.pk),
                f"partnerships-{i}-amap": str(amap.pk),
                f"partnerships-{i}-farm": str(partnership.farm_id),
                f"partnerships-{i}-product": str(partnership.product_id),
                f"partnerships-{i}-since": partnership.since.isoformat() if partnership.since else "",
                f"partnerships-{i}-until": partnership.until.isoformat() if partnership.until else "",
                f"partnerships-{i}-is_active": "on" if partnership.is_active else "",
                f"partnerships-{i}-source": partnership.source,
            }
        )
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    amap.refresh_from_db()
    assert amap.name == "AMAP renommée (démo)"
    assert amap.delivery_weekdays == [2, 4]
    assert amap.commune_id == "69123"
    assert amap.location.x == pytest.approx(4.8357, abs=1e-6)
    assert amap.location.y == pytest.approx(45.764, abs=1e-6)


@pytest.fixture
def logged_in_amap(demo, admin_client):
    amap = Amap.objects.filter(is_demo=True).first()
    return amap, admin_client.cookies["sessionid"].value


@pytest.mark.browser
def test_amap_map_widget_draws_with_openlayers_served_by_the_app(logged_in_amap, browser_page, live_url):
    amap, session = logged_in_amap
    page = browser_page
    page.context.add_cookies([{"name": "sessionid", "value": session, "url": live_url}])
    page.goto(f"{live_url}/admin/directory/amap/{amap.pk}/change/")
    expect(page.locator("#id_location_map .ol-viewport")).to_be_visible()
    assert page.evaluate("typeof ol") == "object"
    hosts = {urlparse(url).hostname for url in page.requested_urls if url.startswith("http")}
    assert hosts <= {"127.0.0.1", "tile.openstreetmap.org"}, hosts
