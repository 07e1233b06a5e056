"""The coverage dashboard in a real browser (Debian's Chromium through Playwright)."""

import json
import os
from urllib.parse import urlparse

import pytest
from django.contrib.gis.geos import Point

from coverage.snapshots import params_default, snapshot_refresh
from directory.services_networks import network_create
from tests.coverage.test_coverage import SQUARE_AROUND_DIJON, gironde_network, load_gironde_amaps
from tests.factories import FarmFactory, commune

pytestmark = [pytest.mark.browser, pytest.mark.django_db]


def _only_local_requests(page, live_url):
    """Every request but map tiles stays on the app itself (no CDN)."""
    own = urlparse(live_url).netloc
    foreign = {urlparse(u).netloc for u in page.requested_urls if urlparse(u).netloc not in {own, ""}}
    return foreign <= {"tile.openstreetmap.org"}, foreign


# Data fixtures come before `browser_page`: Playwright runs an event loop in the test thread,
# after which Django refuses database calls from it.
@pytest.fixture
def gironde():
    network = gironde_network()
    load_gironde_amaps(network)
    # What the refresh job stores (tests/coverage/test_tasks.py runs it through the worker).
    for radius, product in ((10, None), (5, "pain")):
        snapshot_refresh(network=network, params={"radius_km": radius, "product": product, "min_population": 1000})
    return network


@pytest.fixture
def emerging():
    FarmFactory(
        name="Ferme de Dijon", location=Point(5.04, 47.32, srid=4326), commune=commune("21231"), products=["pain"]
    )
    network = network_create(name="Réseau émergent de Côte-d'Or", territory_geojson=json.dumps(SQUARE_AROUND_DIJON))
    snapshot_refresh(network=network, params=params_default())
    return network


def test_gironde_dashboard_shows_figures_choropleth_white_zones_and_charts(gironde, browser_page, live_url):
    network = gironde
    page = browser_page
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_url}/reseau/{network.slug}/couverture/?radius_km=10")

    # Key figures, each method named.
    share = page.locator("#figure-share-reference")
    assert "91,5 %" in share.inner_text()  # independent check in test_coverage.py
    assert "point de référence de la commune" in share.inner_text()
    assert "surface pondérée" in page.locator("#figure-share-area").inner_text()
    assert page.locator("#figure-amaps .value").inner_text() == "105"

    # The choropleth: one filled path per commune of Gironde, coloured by class, fetched by the page
    # (the HTML carries no geometry) for the level of the zoom it is drawn at.
    page.wait_for_function("() => document.querySelectorAll('#coverage-map path.leaflet-interactive').length > 500")
    page.wait_for_function("() => window.coverageMap && window.coverageMap.drawn")
    assert '"coordinates"' not in page.content()
    fetched = [u for u in page.requested_urls if "/couverture/carte/" in u]
    assert any("/choropleth.geojson" in u and "&z=" in u for u in fetched), fetched
    assert any("/zones.geojson" in u for u in fetched) and any("/amaps.geojson" in u for u in fetched)
    fills = page.eval_on_selector_all(
        "#coverage-map path.leaflet-interactive", "els => [...new Set(els.map(e => e.getAttribute('fill')))]"
    )
    assert {"#1a7f37", "#d7301f"} <= set(fills)  # near an AMAP, and far from any
    # White zones drawn as outlines, listed in the table.
    assert page.locator("#coverage-map path[stroke='#7b1fa2']").count() > 0
    assert page.locator("#white-zone-communes tbody tr").first.inner_text().startswith("La Teste-de-Buch")
    # Legend and layer control.
    assert "Distance à l'AMAP la plus proche" in page.locator(".coverage-legend").inner_text()
    assert "Zones blanches" in page.locator(".leaflet-control-layers").inner_text()
    # AMAP markers through the shared map script (clustered).
    assert page.locator("#coverage-map .atlas-pin, #coverage-map .atlas-cluster").count() > 0

    # Charts: the curve, the départements, the years.
    assert page.locator("#chart-curve path").count() >= 1
    assert page.locator("#chart-departments rect").count() == 1
    assert page.locator("#chart-years rect").count() > 5

    # Choose a product and another radius: the product layer appears.
    page.fill("#id_radius_km", "5")
    page.select_option("#id_product", "pain")
    page.click("button[type=submit] >> text=Calculer")
    page.wait_for_url("**radius_km=5**")
    assert (
        "79,9 %" in page.locator("#figure-share-reference").inner_text()
        or "79,8 %" in page.locator("#figure-share-reference").inner_text()
    )
    assert "Pain" in page.locator("#figure-share-product").inner_text()

    # A bad radius: the form again with a French message.
    page.fill("#id_radius_km", "200")
    page.click("button[type=submit] >> text=Calculer")
    assert "ne peut pas dépasser 50 km" in page.locator("#coverage-form-errors").inner_text()

    ok, foreign = _only_local_requests(page, live_url)
    assert ok, foreign
    if os.environ.get("COVERAGE_SCREENSHOT"):
        page.goto(f"{live_url}/reseau/{network.slug}/couverture/?radius_km=10")
        page.wait_for_timeout(500)
        page.screenshot(path=os.environ["COVERAGE_SCREENSHOT"], full_page=True)
        page.locator("#coverage-map").screenshot(path=os.environ["COVERAGE_SCREENSHOT"].replace(".png", "-map.png"))


def test_emerging_network_without_amap_has_a_useful_dashboard(emerging, browser_page, live_url):
    network = emerging
    page = browser_page
    page.goto(f"{live_url}/reseau/{network.slug}/couverture/")
    assert "Aucune AMAP active" in page.locator("#no-amap").inner_text()
    population = page.locator("#figure-population .value").inner_text()
    assert int(population.replace("\u202f", "")) > 200_000
    assert page.locator("#white-zone-communes tbody tr").first.inner_text().startswith("Dijon")
    assert page.locator("#figure-farms .value").inner_text() == "1"
    assert "Ferme de Dijon" in page.locator("#farms-without-partner").inner_text()
    # Without AMAP the map shows where people live, with the largest communes outlined.
    page.wait_for_function("() => document.querySelectorAll('#coverage-map path.leaflet-interactive').length > 50")
    assert "Habitants par commune" in page.locator(".coverage-legend").inner_text()
    ok, foreign = _only_local_requests(page, live_url)
    assert ok, foreign
    if os.environ.get("COVERAGE_SCREENSHOT"):
        page.screenshot(path=os.environ["COVERAGE_SCREENSHOT"].replace(".png", "-emerging.png"), full_page=True)


def test_dashboard_on_a_phone_shows_the_map_in_the_first_screen_without_sideways_scrolling(
    gironde, browser_page, live_url
):
    page = browser_page
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_url}/reseau/{gironde.slug}/couverture/?radius_km=10")
    page.wait_for_function("() => window.coverageMap && window.coverageMap.drawn")
    # The map draws its fetched layers: the choropleth, the white zones, the AMAPs.
    assert page.locator("#coverage-map path.leaflet-interactive").count() > 500
    assert page.locator("#coverage-map path[stroke='#7b1fa2']").count() > 0
    assert page.locator("#coverage-map .atlas-pin, #coverage-map .atlas-cluster").count() > 0
    # In the first screen (the parameters fold above it), and no sideways scrolling.
    top = page.evaluate("document.getElementById('coverage-map-canvas').getBoundingClientRect().top")
    assert top < 844 / 2, top
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    # The sections fold, the key figures stay open; the legend sits under the map.
    assert page.evaluate("document.querySelector('#white-zones details').open") is False
    assert page.evaluate("document.querySelector('#key-figures details').open") is True
    assert "Distance à l'AMAP la plus proche" in page.locator("#coverage-legend-slot .coverage-legend").inner_text()
    page.locator("#white-zones summary").first.click()
    assert page.locator("#white-zone-communes").is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    # The parameters are one tap away.
    page.locator(".coverage-params-fold > summary").click()
    assert page.locator("#id_radius_km").is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    if os.environ.get("COVERAGE_SCREENSHOT"):
        page.screenshot(path=os.environ["COVERAGE_SCREENSHOT"].replace(".png", "-phone.png"))
