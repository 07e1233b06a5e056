"""What a visitor sees on the maps, in Chromium: /carte/, the embed, a network page.

Tiles point at a host that does not exist: the points must render all the same, and the
page must ask nothing of any host other than the app (tiles aside).
"""

import re
from contextlib import contextmanager
from urllib.parse import urlsplit

import pytest
from django.contrib.gis.geos import Point
from django.db import connections
from django.urls import reverse

from tests.factories import BORDEAUX, LIBOURNE, MERIGNAC, AmapFactory, FarmFactory, NetworkFactory, commune

pytestmark = [pytest.mark.browser, pytest.mark.django_db]
# Data fixtures come before `browser_page`: Playwright runs an event loop in the test thread,
# after which Django refuses database calls from it (see the one test that writes mid-way).

UNREACHABLE_TILES = "http://tiles.invalid/{z}/{x}/{y}.png"
LYON = Point(4.8357, 45.7640, srid=4326)  # Place Bellecour, Lyon (69382)


@pytest.fixture(autouse=True)
def offline_tiles(settings):
    settings.MAP_TILE_URL = UNREACHABLE_TILES
    settings.MAP_TILE_ATTRIBUTION = "Fond de carte de test"


@pytest.fixture
def directory():
    network = NetworkFactory(name="Réseau AMAP Gironde", slug="gironde", departments=[commune("33063").department])
    amaps = [
        AmapFactory(name="AMAP des Chartrons", location=BORDEAUX, products=["legumes", "pain"], delivery_weekdays=[2]),
        AmapFactory(name="AMAP de Mérignac", location=MERIGNAC, commune=commune("33281"), products=["legumes"]),
        AmapFactory(name="AMAP de Caudéran", location=Point(-0.6080, 44.8500, srid=4326), products=["oeufs"]),
    ]
    for amap in amaps:
        amap.networks.add(network)
    farm = FarmFactory(name="Ferme du Coteau", location=LIBOURNE, products=["legumes"])
    farm.networks.add(network)
    return {"network": network, "amaps": amaps, "farm": farm}


@pytest.fixture
def live_connection(db):
    """The test's database connection, as the live server shares it (taken before Playwright starts)."""
    return connections["default"]


@contextmanager
def write_between_page_loads(monkeypatch, connection):
    """Let the test thread write through the shared connection while Playwright runs.

    Playwright's sync API switches greenlets, and each greenlet has its own context: there,
    `connections["default"]` would be a fresh autocommit connection (outside the test's
    transaction, unseen by the rollback). Reinstating the shared one keeps every write
    inside the transaction; Django's async-safety check is lifted for these lines only.
    """
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    previous = connections["default"]
    connections["default"] = connection
    try:
        yield
    finally:
        connections["default"] = previous
        monkeypatch.delenv("DJANGO_ALLOW_ASYNC_UNSAFE")


def foreign_requests(page, live_url, *, also_allowed=()):
    """Requests to any host but the app's, tiles aside."""
    allowed = {urlsplit(live_url).netloc, urlsplit(UNREACHABLE_TILES).netloc, *also_allowed}
    return [url for url in page.requested_urls if urlsplit(url).netloc not in allowed and not url.startswith("data:")]


def wait_for_count(page, layer, expected, timeout=10_000):
    page.wait_for_function(
        f"() => window.atlasMaps && window.atlasMaps[0].count({layer!r}) === {expected}", timeout=timeout
    )


def visible_markers(page, layer):
    return page.locator(f".leaflet-marker-icon.atlas-pin--{layer}:visible, .atlas-cluster--{layer}:visible").count()


def csp_violations(page) -> list[str]:
    """Start recording what the Content-Security-Policy blocks (console messages and DOM events)."""
    found = []
    page.on("console", lambda message: "Content Security Policy" in message.text and found.append(message.text))
    page.add_init_script(
        "document.addEventListener('securitypolicyviolation', e => console.error("
        "'Content Security Policy violation: ' + e.violatedDirective + ' ' + e.blockedURI))"
    )
    return found


def test_carte_shows_clusters_toggles_layers_filters_and_opens_a_popup(directory, browser_page, live_url):
    page = browser_page
    violations = csp_violations(page)
    page.goto(live_url + reverse("maps:carte"))
    # At the scale of France the three Bordeaux AMAPs are one cluster of 3, drawn without tiles.
    wait_for_count(page, "amaps", 3)
    page.locator(".atlas-cluster--amaps").first.wait_for(state="visible")
    assert "3" in page.locator(".atlas-cluster--amaps").first.inner_text()
    wait_for_count(page, "farms", 1)
    assert visible_markers(page, "farms") == 1

    # The layer control hides the farms.
    page.locator(".leaflet-control-layers-overlays label", has_text="Fermes").locator("input").uncheck()
    page.wait_for_function("() => window.atlasMaps[0].count('farms') === 0")
    assert visible_markers(page, "farms") == 0
    assert visible_markers(page, "amaps") >= 1

    # A filter changes what is shown: one AMAP offers bread; and it reaches the download links.
    page.locator("details.carte-filters summary").click()  # the filters are folded (phone first)
    page.locator("label.carte-check", has_text="Pain").locator("input").check()
    wait_for_count(page, "amaps", 1)
    assert "products=pain" in page.locator("#dl-amaps-geojson").get_attribute("href")
    assert "products=pain" in page.url

    # Zoomed in, the place is a marker; its popup links to its page, and the link works.
    page.evaluate(f"() => window.atlasMaps[0].map.setView([{BORDEAUX.y}, {BORDEAUX.x}], 17)")
    marker = page.locator(".leaflet-marker-icon.atlas-pin--amaps").first
    marker.wait_for(state="visible")
    marker.click()
    popup = page.locator(".leaflet-popup .atlas-popup")
    popup.wait_for(state="visible")
    assert "AMAP des Chartrons" in popup.inner_text()
    assert "mardi" in popup.inner_text()
    assert "Pain" in popup.inner_text()
    # The map drew under the site's CSP, which blocked nothing.
    assert violations == []
    popup.locator("a.atlas-popup__link").click()
    page.wait_for_url(re.compile(r".*/amap/\d+/$"))
    assert "AMAP des Chartrons" in page.locator("h1").inner_text()
    assert violations == []

    assert foreign_requests(page, live_url) == []
    # The basemap was asked of the configured (unreachable) tile server only.
    assert any("tiles.invalid" in url for url in page.requested_urls)


def test_a_new_amap_appears_on_the_next_load(directory, live_connection, monkeypatch, browser_page, live_url):
    page = browser_page
    page.goto(live_url + reverse("maps:carte"))
    wait_for_count(page, "amaps", 3)
    # Added as the admin or an import would, between two page loads, inside this test's
    # transaction (see `write_between_page_loads`).
    with write_between_page_loads(monkeypatch, live_connection):
        AmapFactory(name="AMAP de la Croix-Rousse", location=LYON, commune=commune("69123"))
    page.reload()
    wait_for_count(page, "amaps", 4)
    # It is a marker of its own, around Lyon.
    lyon = page.evaluate(
        f"""() => {{
            const map = window.atlasMaps[0].map;
            let found = 0;
            map.eachLayer(l => {{
                const el = l.getElement && l.getElement();
                const pin = el && el.classList.contains('atlas-pin--amaps');
                if (pin && map.distance(l.getLatLng(), [{LYON.y}, {LYON.x}]) < 5000) found += 1;
            }});
            return found;
        }}"""
    )
    assert lyon == 1


def test_embed_is_a_bare_framable_map_of_the_network(directory, browser_page, live_url):
    page = browser_page
    # A page frames the embed, and tries to frame /carte/ too: only the embed may be framed
    # (Chromium honours X-Frame-Options: DENY even for the same origin).
    page.goto(live_url + "/")
    page.evaluate(
        """() => { document.body.innerHTML =
            '<iframe id="carte" src="/carte/embed/?network=gironde" width="900" height="600"></iframe>'
            + '<iframe id="refusee" src="/carte/" width="400" height="300"></iframe>'; }"""
    )
    frame = page.frame_locator("#carte")
    frame.locator(".atlas-cluster--amaps, .leaflet-marker-icon.atlas-pin--amaps").first.wait_for(
        state="visible", timeout=10_000
    )
    assert frame.locator(".site-header").count() == 0  # bare: no site navigation
    refused = page.locator("#refusee").element_handle().content_frame()
    for _ in range(50):  # the refusal replaces the frame's document by an error page
        if refused.url.startswith("chrome-error:"):
            break
        page.wait_for_timeout(100)
    assert refused.url.startswith("chrome-error:")
    # The network's territory is drawn, and can be hidden like the farms.
    assert frame.locator("path.leaflet-interactive").count() >= 1
    frame.locator(".leaflet-control-layers-overlays label", has_text="Territoire").locator("input").uncheck()
    assert frame.locator("path.leaflet-interactive").count() == 0
    assert frame.locator(".leaflet-marker-icon.atlas-pin--farms:visible").count() == 1
    frame.locator(".leaflet-control-layers-overlays label", has_text="Fermes").locator("input").uncheck()
    assert frame.locator(".leaflet-marker-icon.atlas-pin--farms:visible").count() == 0

    # The farm's popup opens the farm's page in the visitor's tab, not inside the frame.
    frame.locator(".leaflet-control-layers-overlays label", has_text="Fermes").locator("input").check()
    frame.locator(".leaflet-marker-icon.atlas-pin--farms").click()
    link = frame.locator(".leaflet-popup a.atlas-popup__link")
    assert link.get_attribute("target") == "_top"
    assert re.search(r"/ferme/\d+/$", link.get_attribute("href"))
    assert foreign_requests(page, live_url) == []


def test_embed_filters_by_product(directory, browser_page, live_url):
    page = browser_page
    page.goto(live_url + reverse("maps:embed") + "?network=gironde")
    wait_for_count(page, "amaps", 3)
    page.goto(live_url + reverse("maps:embed") + "?network=gironde&products=oeufs")
    wait_for_count(page, "amaps", 1)
    page.evaluate("() => window.atlasMaps[0].map.setView([44.85, -0.608], 17)")
    page.locator(".leaflet-marker-icon.atlas-pin--amaps").first.click()
    assert "AMAP de Caudéran" in page.locator(".leaflet-popup").inner_text()
    assert foreign_requests(page, live_url) == []


def test_network_page_map_shows_territory_amaps_and_farms(directory, browser_page, live_url):
    page = browser_page
    page.goto(live_url + reverse("directory:network_detail", args=["gironde"]))
    wait_for_count(page, "amaps", 3)
    wait_for_count(page, "farms", 1)
    assert visible_markers(page, "amaps") >= 1
    assert page.locator("path.leaflet-interactive").count() >= 1  # the territory
    page.locator(".leaflet-control-layers-overlays label", has_text="AMAP").locator("input").uncheck()
    assert visible_markers(page, "amaps") == 0
    assert visible_markers(page, "farms") == 1
    assert foreign_requests(page, live_url) == []


@pytest.fixture
def exported_map(directory, tmp_path):
    from django.core.management import call_command

    output = tmp_path / "carte.html"
    call_command("export_map", network="gironde", output=str(output), base_url="https://atlas.example.org")
    return output


def test_exported_map_works_from_a_file_alone(exported_map, browser_page):
    output = exported_map
    page = browser_page
    page.goto(output.as_uri())
    page.wait_for_function("() => window.atlasMaps && window.atlasMaps[0].count('amaps') === 3")
    page.wait_for_function("() => window.atlasMaps[0].count('farms') === 1")
    assert visible_markers(page, "amaps") >= 1
    # Nothing fetched but the file itself and the (unreachable) background tiles.
    fetched = [url for url in page.requested_urls if not url.startswith(("file:", "data:"))]
    assert all(urlsplit(url).netloc == "tiles.invalid" for url in fetched), fetched
    # Popups link to the site, not to the disk.
    page.evaluate("() => window.atlasMaps[0].map.setView([44.85, -0.608], 17)")
    page.locator(".leaflet-marker-icon.atlas-pin--amaps").first.click()
    href = page.locator(".leaflet-popup a.atlas-popup__link").get_attribute("href")
    assert href.startswith("https://atlas.example.org/amap/")
