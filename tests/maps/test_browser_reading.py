"""Maps that read at every zoom (issue 17): groups of AMAPs and farms side by side, the legend
clear of Corsica, the network filter on its territory, France's outline when no tile loads."""

import pytest
from django.contrib.gis.geos import Point
from django.urls import reverse

from tests.factories import BORDEAUX, AmapFactory, FarmFactory, NetworkFactory, commune
from tests.maps.test_browser import wait_for_count

pytestmark = [pytest.mark.browser, pytest.mark.django_db]

CORSICA = (42.15, 9.10)  # latitude, longitude: the middle of the island


@pytest.fixture(autouse=True)
def offline_tiles(settings):
    settings.MAP_TILE_URL = "http://tiles.invalid/{z}/{x}/{y}.png"


@pytest.fixture
def gironde(db):
    network = NetworkFactory(name="Réseau AMAP Gironde", slug="gironde", departments=[commune("33063").department])
    for i in range(3):  # AMAPs and farms of the same few streets: one group of each at France's scale
        AmapFactory(name=f"AMAP {i}", location=Point(BORDEAUX.x + i * 0.01, BORDEAUX.y, srid=4326)).networks.add(
            network
        )
        FarmFactory(name=f"Ferme {i}", location=Point(BORDEAUX.x + i * 0.01, BORDEAUX.y + 0.01, srid=4326))
    AmapFactory(name="AMAP d'Ajaccio", location=Point(8.7369, 41.9267, srid=4326), commune=commune("2A004"))
    return network


def rect(page, selector):
    return page.locator(selector).first.evaluate(
        "e => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; }"
    )


def overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


@pytest.mark.parametrize("viewport", [(390, 844), (1366, 900)])
def test_groups_side_by_side_legend_clear_of_corsica_and_outline_offline(viewport, gironde, browser_page, live_url):
    page = browser_page
    page.set_viewport_size({"width": viewport[0], "height": viewport[1]})
    page.goto(live_url + reverse("maps:carte"))
    wait_for_count(page, "amaps", 4)
    wait_for_count(page, "farms", 3)
    amaps = rect(page, ".atlas-cluster--amaps span")
    farms = rect(page, ".atlas-cluster--farms span")
    assert not overlap(amaps, farms), (amaps, farms)
    # The legend sits where no French territory is drawn: not over Corsica.
    corsica = page.evaluate(
        f"""() => {{
            const map = window.atlasMaps[0].map, p = map.latLngToContainerPoint([{CORSICA[0]}, {CORSICA[1]}]);
            const box = map.getContainer().getBoundingClientRect();
            return [box.left + p.x - 10, box.top + p.y - 10, box.left + p.x + 10, box.top + p.y + 10];
        }}"""
    )
    assert not overlap(rect(page, ".atlas-legend"), corsica)
    # No background tile loads here: the départements' outline (from our own territories) is drawn.
    page.locator("path.atlas-outline").first.wait_for(state="attached", timeout=10_000)
    assert page.locator("path.atlas-outline").count() > 90
    # Both cluster labels pass colour contrast on the map (axe's rule, serious when it fails).
    colors = page.evaluate(
        """() => ['amaps', 'farms'].map(id => getComputedStyle(
            document.querySelector('.atlas-cluster--' + id + ' div')).backgroundColor)"""
    )
    assert colors == ["rgb(47, 107, 47)", "rgb(154, 69, 20)"]  # opaque: 6.5:1 and 6.1:1 against white


def test_the_network_filter_zooms_to_the_networks_territory(gironde, browser_page, live_url):
    page = browser_page
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto(live_url + reverse("maps:carte"))
    wait_for_count(page, "amaps", 4)
    page.locator("details.carte-filters summary").click()
    page.select_option("#carte-network", "gironde")
    page.wait_for_function("() => window.atlasMaps[0].map.getZoom() >= 7", timeout=10_000)
    center = page.evaluate("() => window.atlasMaps[0].map.getCenter()")
    assert 44.0 < center["lat"] < 45.7 and -1.4 < center["lng"] < 0.4  # Gironde
    # A link with the network opens on it too.
    page.goto(live_url + reverse("maps:carte") + "?network=gironde")
    page.wait_for_function("() => window.atlasMaps && window.atlasMaps[0].map.getZoom() >= 7", timeout=10_000)
