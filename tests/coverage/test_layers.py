"""The dashboard map's layers: GeoJSON fetched by the page, simplified per zoom, cacheable; the page
itself carries no geometry."""

import json
import re

import pytest
from django.core.management import call_command
from django.urls import reverse

from coverage import layers
from tests.coverage.test_coverage import computed_page, small_directory  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db

HTML_LIMIT = 300 * 1024  # the national dashboard's goal (issue 13)


def _map_config(html: str) -> dict:
    found = re.search(r'<script id="coverage-map-config" type="application/json">(.*?)</script>', html, re.S)
    assert found, "the page carries its map configuration"
    return json.loads(found.group(1))


def _vertices(collection: dict) -> int:
    def count(coords):
        return 1 if isinstance(coords[0], (int, float)) else sum(count(c) for c in coords)

    return sum(count(f["geometry"]["coordinates"]) for f in collection["features"])


def test_national_demo_dashboard_is_light_and_inlines_no_geometry(client):
    call_command("load_demo", amaps=500, farms=500, seed=1, verbosity=0)
    response = computed_page(client, reverse("coverage:network_coverage", args=["demo-national"]))
    assert response.status_code == 200
    html = response.content.decode()
    assert len(response.content) < HTML_LIMIT, len(response.content)
    assert '"coordinates"' not in html and "FeatureCollection" not in html
    config = _map_config(html)
    assert [layer["id"] for layer in config["layers"]][:2] == ["choropleth", "zones"]
    # National scale: one polygon per département, never finer than the level drawn at zoom 9.
    choropleth = client.get(config["layers"][0]["url"] + "&z=6").json()
    assert 96 <= len(choropleth["features"]) <= 101
    assert config["layers"][0]["maxLevel"] == layers.DEPARTMENT_MAX_LEVEL
    assert config["points"] and client.get(config["points"]["url"]).json()["features"]


def test_gironde_layers_are_simplified_per_zoom_and_cacheable(client, small_directory):  # noqa: F811
    page = computed_page(client, reverse("coverage:network_coverage", args=[small_directory.slug]), {"radius_km": 5})
    html = page.content.decode()
    assert '"coordinates"' not in html
    config = _map_config(html)
    choropleth_url = config["layers"][0]["url"]
    assert "radius_km=5" in choropleth_url and "v=" in choropleth_url

    coarse = client.get(choropleth_url + "&z=7")
    fine = client.get(choropleth_url + "&z=13")
    assert coarse["Content-Type"].startswith("application/geo+json")
    coarse_json, fine_json = coarse.json(), fine.json()
    # Every commune of Gironde either way, with fewer vertices when seen from afar.
    assert len(coarse_json["features"]) == len(fine_json["features"]) == 534
    assert _vertices(coarse_json) < _vertices(fine_json) / 2
    bordeaux = next(f for f in coarse_json["features"] if f["properties"]["code"] == "33063")
    assert bordeaux["properties"]["fill"] == "#1a7f37"  # an AMAP in the commune itself
    # Zooms between two levels share the lower one.
    assert client.get(choropleth_url + "&z=8").content == coarse.content

    zones = client.get(config["layers"][1]["url"] + "&z=9").json()
    assert zones["features"] and {f["properties"]["kind"] for f in zones["features"]} <= {"commune", "group"}
    points = client.get(config["points"]["url"]).json()
    assert {f["properties"]["name"] for f in points["features"]} >= {"AMAP Bordeaux", "AMAP Libourne"}

    # Cacheable: a versioned URL for a long time, an ETag and a 304 on revalidation.
    assert coarse["Cache-Control"] == "public, max-age=86400"
    assert coarse["ETag"] != fine["ETag"]
    again = client.get(choropleth_url + "&z=7", HTTP_IF_NONE_MATCH=coarse["ETag"])
    assert again.status_code == 304 and again["ETag"] == coarse["ETag"]
    unversioned = re.sub(r"&v=[0-9a-f]+", "", choropleth_url)
    assert client.get(unversioned + "&z=7")["Cache-Control"] == "public, max-age=60"


def test_layer_endpoint_answers_bad_input(client, small_directory):  # noqa: F811
    url = reverse("coverage:network_coverage_layer", args=[small_directory.slug, "choropleth"])
    assert client.get(url, {"z": "abc"}).status_code == 400
    assert "z" in client.get(url, {"z": "99"}).json()
    assert "radius_km" in client.get(url, {"radius_km": "500"}).json()
    assert (
        client.get(reverse("coverage:network_coverage_layer", args=[small_directory.slug, "secret"])).status_code == 404
    )
    assert client.get(reverse("coverage:network_coverage_layer", args=["inconnu", "zones"])).status_code == 404


def test_levels_and_tolerances_follow_the_zoom():
    assert [layers.level_for(z) for z in (None, 0, 5, 6, 7, 12, 18)] == [5, 5, 5, 5, 7, 11, 13]
    # Half a pixel: at zoom 5 a 256 px tile spans 360 / 32 degrees.
    assert layers.tolerance(5) == pytest.approx(360 / 32 / 256 / 2)
    assert layers.tolerance(7) == pytest.approx(layers.tolerance(5) / 4)
