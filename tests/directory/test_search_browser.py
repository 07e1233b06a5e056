"""A visitor searches from the home page in a real browser and sees the results and their map."""

import re
from urllib.parse import urlparse

import pytest
from django.contrib.gis.geos import Point
from playwright.sync_api import expect

from tests.factories import AmapFactory, commune
from tests.maps.test_browser import csp_violations

# Data fixtures come before `browser_page`: Playwright runs an event loop in the test thread,
# after which Django refuses database calls from it.
pytestmark = pytest.mark.browser


@pytest.fixture
def bordeaux_amaps(db):
    AmapFactory(name="AMAP de la Comédie", location=Point(-0.5792, 44.8378, srid=4326), products=["legumes"])
    AmapFactory(name="AMAP des Chartrons", location=Point(-0.5700, 44.8560, srid=4326), products=["pain"])
    AmapFactory(name="AMAP Mérignac Centre", location=Point(-0.6440, 44.8386, srid=4326), commune=commune("33281"))


def test_typing_a_town_shows_results_and_their_map(bordeaux_amaps, browser_page, live_url):
    page = browser_page
    violations = csp_violations(page)
    page.goto(live_url + "/")
    page.get_by_label("Ville, code postal ou adresse").fill("Bordeaux")
    page.get_by_role("button", name="Rechercher").click()

    expect(page).to_have_url(re.compile(r"/recherche/\?q=Bordeaux"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("AMAP les plus proches — Bordeaux (33000)")
    results = page.locator(".results-list > li")
    expect(results).to_have_count(3)
    expect(results.first).to_contain_text("AMAP de la Comédie")
    expect(results.first).to_contain_text(re.compile(r"Distance\s*(\d+ m|\d+(,\d)? km)"))  # 190 m, 1,2 km, 12 km

    # The map: a Leaflet container with markers (or clusters of them) for the results.
    map_box = page.locator(".results-map .leaflet-container")
    expect(map_box).to_be_visible()
    markers = page.locator(".results-map .leaflet-marker-icon")
    expect(markers.first).to_be_visible()
    assert markers.count() >= 1

    # Leaflet and the page's assets come from the app itself; only tiles may come from elsewhere.
    hosts = {urlparse(url).hostname for url in page.requested_urls if url.startswith("http")}
    assert hosts <= {"127.0.0.1", "tile.openstreetmap.org"}, hosts
    # The results map drew under the site's CSP, which blocked nothing.
    assert violations == []


def test_search_page_is_usable_on_a_phone(bordeaux_amaps, browser_page, live_url):
    page = browser_page
    page.set_viewport_size({"width": 375, "height": 740})
    page.goto(live_url + "/recherche/?q=33000")
    expect(page.locator(".results-list > li").first).to_contain_text("AMAP de la Comédie")
    # Nothing wider than the screen: no sideways scrolling.
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    expect(page.locator(".results-map .leaflet-container")).to_be_visible()


@pytest.fixture
def two_amaps_north(db):
    # ~186.6 m and ~1.25 km north of the searched point (Bordeaux, place de la Comédie).
    AmapFactory(name="AMAP de la Comédie", location=Point(-0.5792, 44.8394806, srid=4326))
    AmapFactory(name="AMAP des Chartrons", location=Point(-0.5792, 44.8490, srid=4326))


def test_list_and_popup_show_the_same_rounded_distance(two_amaps_north, browser_page, live_url):
    from geo.formatting import format_distance

    samples = [0, 9.9, 185, 186.6, 994.9, 995, 1049.9, 1050, 9949, 9950, 12_500, 154_700]
    expected = [format_distance(m) for m in samples]
    page = browser_page
    page.goto(live_url + "/recherche/?q=44.8378%2C+-0.5792")
    cards = page.locator(".results-list .amap-card")
    expect(cards).to_have_count(2)
    listed = {cards.nth(i).locator("h3").inner_text(): cards.nth(i).locator(".distance").inner_text() for i in range(2)}
    assert listed["AMAP de la Comédie"] == "190 m"  # issue 17: it showed « 0,1 km »
    # Each marker's popup, as the map draws it on a click.
    page.wait_for_function("() => window.atlasMaps && window.atlasMaps.length > 0")
    popups = page.evaluate(
        """() => {
            const found = {};
            window.atlasMaps[0].map.eachLayer(layer => {
                if (!layer.getPopup || !layer.getPopup() || !layer.feature) return;
                const content = layer.getPopup()._content;
                const box = typeof content === 'function' ? content(layer) : content;
                const name = box.querySelector('.atlas-popup__name').textContent;
                found[name] = box.querySelector('.atlas-popup__distance').textContent;
            });
            return found;
        }"""
    )
    for name, text in listed.items():
        assert popups[name].endswith(": " + text), (name, popups[name], text)
    # Whatever sends raw metres to a map (an API payload), the script's rule is the site's rule.
    in_js = page.evaluate(f"() => {samples}.map(m => window.AtlasMap.formatDistance(m))")
    assert in_js == expected
