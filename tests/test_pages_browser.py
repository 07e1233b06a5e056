"""Every page of every role, on a phone (390×844) in Chromium, and in plain French (issue 17).

Each role's crawl starts from the pages that role uses (seeds) and follows the links it finds
(one page per URL pattern). On each page: nothing wider than the screen, no technical or
English text. The map pages must show their map in the first screen, and axe-core must find
no serious or critical violation on the pages people use most.
"""

import re
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
from django.conf import settings
from django.contrib.gis.geos import Point
from django.test import Client
from django.urls import reverse

from directory.models import ProductCategory
from matching import services as matching_services
from matching.models import Annonce
from tests.contracts.roles import contract_world
from tests.factories import MERIGNAC, AmapFactory, NetworkFactory, commune

pytestmark = [pytest.mark.browser, pytest.mark.django_db]
# Data fixtures come before `browser_page`: Playwright runs an event loop in the test thread,
# after which Django refuses database calls from it.

PHONE = {"width": 390, "height": 844}
AXE = Path(settings.BASE_DIR) / "static" / "vendor" / "axe-core" / "axe.min.js"

# Links a crawl does not follow: downloads, log-out, actions, the admin, the API, data endpoints.
NOT_PAGES = re.compile(
    r"deconnexion|\.pdf|\.csv|\.json|\.ics|/pdf/|/csv/|/export|/admin/|/api/|/tuiles/|/geojson/|/static/|/media/"
    r"|/carte/embed|/i18n/"
)
# Text that must never reach a person: library messages, template syntax, internal names.
TECHNICAL = (
    "Traceback",
    "GEOS",
    "Error encountered",
    "This field",
    "Enter a valid",
    "Forbidden",
    "Not Found",
    "product_gap",
    "tour_synergy",
    "{{",
    "{%",
)
TECHNICAL_WORDS = re.compile(r"\b(None|nan|NaN|null|undefined)\b")
ENGLISH_ERRORS = re.compile(
    r"\b(error|invalid|required|please|must|cannot|failed|unknown|not allowed|permission denied)\b", re.IGNORECASE
)


@pytest.fixture
def site(db):
    """The contract world (one user per role), a network, AMAPs around Bordeaux, an annonce and a thread."""
    world = contract_world()
    gironde = NetworkFactory(name="Réseau AMAP Gironde", slug="gironde", departments=[commune("33063").department])
    world.amap.networks.add(gironde)
    AmapFactory(name="AMAP de Mérignac", location=MERIGNAC, commune=commune("33281"), products=["legumes", "pain"])
    AmapFactory(name="AMAP de Caudéran", location=Point(-0.6080, 44.8500, srid=4326), products=["oeufs"])
    farmer = world.users["farmer"]
    annonce = matching_services.annonce_publish(
        user=farmer,
        kind=Annonce.Kind.FARM_SEEKS_AMAP,
        farm=world.farm,
        products=list(ProductCategory.objects.filter(slug__in=["legumes"])),
        radius_km=40,
        delivery_weekdays=[2],
    )
    thread = matching_services.thread_start(
        user=farmer, recipient=world.amap, sender=world.farm, body="Bonjour, nous cherchons une AMAP."
    )
    world.amap.managers.add(world.users["referent"])
    sessions = {}
    for role, user in world.users.items():
        if user is not None:
            client = Client()
            client.force_login(user)
            sessions[role] = client.cookies[settings.SESSION_COOKIE_NAME].value
    return {"world": world, "annonce": annonce, "thread": thread, "sessions": sessions, "network": gironde}


def seeds_for(role: str, site) -> list[str]:
    world = site["world"]
    public = [
        "/",
        reverse("directory:search") + "?q=Bordeaux",
        reverse("maps:carte"),
        reverse("directory:amap_detail", args=[world.amap.pk]),
        reverse("directory:farm_detail", args=[world.farm.pk]),
        reverse("directory:network_detail", args=["gironde"]),
        reverse("matching:board"),
        reverse("matching:annonce_detail", args=[site["annonce"].pk]),
        reverse("contracts:charter"),
    ]
    if role == "anonymous":
        return [*public, reverse("accounts:login")]
    pages = [
        *public,
        reverse("accounts:dashboard"),
        reverse("contracts:contract_list"),
        reverse("contracts:contract_detail", args=[world.contract.pk]),
        reverse("contracts:my_deliveries"),
        reverse("contracts:my_data"),
        reverse("matching:alerts"),
        reverse("matching:annonce_create"),
    ]
    if role in ("referent", "amap_admin", "staff", "farmer"):
        pages += [
            reverse("contracts:contract_subscribers", args=[world.contract.pk]),
            reverse("contracts:contract_deliveries", args=[world.contract.pk]),
            reverse("contracts:contract_summary", args=[world.contract.pk]),
            reverse("contracts:delivery_sheet", args=[world.deliveries[0].pk]),
            reverse("contracts:delivery_preparation", args=[world.deliveries[0].pk]),
            reverse("matching:thread_detail", args=[site["thread"].pk]),
        ]
    if role in ("referent", "amap_admin", "staff"):
        pages += [reverse("contracts:contract_create"), reverse("contracts:contract_edit", args=[world.contract.pk])]
    if role == "member":
        pages += [
            reverse("contracts:subscription_detail", args=[world.subscription.pk]),
            reverse("contracts:subscription_absences", args=[world.subscription.pk]),
            reverse("contracts:subscription_amend", args=[world.subscription.pk]),
        ]
    if role == "staff":
        pages += [reverse("coverage:network_coverage", args=["gironde"])]
    return pages


def log_in_as(page, live_url, site, role: str) -> None:
    page.set_viewport_size(PHONE)
    if role != "anonymous":
        page.context.add_cookies(
            [{"name": settings.SESSION_COOKIE_NAME, "value": site["sessions"][role], "url": live_url}]
        )


def technical_text(text: str) -> list[str]:
    found = [s for s in TECHNICAL if s in text]
    found += TECHNICAL_WORDS.findall(text)
    found += [m.group(0) for m in ENGLISH_ERRORS.finditer(text)]
    return found


def crawl(page, live_url: str, seeds: list[str], *, limit: int = 45) -> list[str]:
    """Visit the seeds and the pages they link to; return what is wrong, page by page."""
    problems, patterns, queue, visited = [], set(), list(seeds), 0
    while queue and visited < limit:
        path = queue.pop(0)
        pattern = re.sub(r"\d+", "N", path)
        if pattern in patterns:
            continue
        patterns.add(pattern)
        try:
            response = page.goto(live_url + path)
        except Exception as error:  # a download (attachment) is not a page
            if "Download is starting" in str(error):
                continue
            raise
        visited += 1
        if response is None or "text/html" not in (response.headers.get("content-type") or ""):
            continue
        if response.status >= 500:
            problems.append(f"{path}: HTTP {response.status}")
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > PHONE["width"]:
            wide = page.evaluate(
                """(limit) => [...document.querySelectorAll('body *')]
                    .filter(e => e.getBoundingClientRect().right > limit + 1)
                    .slice(0, 3).map(e => e.tagName + '.' + e.className)""",
                PHONE["width"],
            )
            problems.append(f"{path}: {width} px wide ({wide})")
        text = page.inner_text("body")
        bad = technical_text(text)
        if bad:
            problems.append(f"{path}: technical text {bad}")
        for href in page.eval_on_selector_all("a[href]", "links => links.map(a => a.getAttribute('href'))"):
            url = urljoin(live_url + path, href)
            parts = urlsplit(url)
            if parts.netloc != urlsplit(live_url).netloc or NOT_PAGES.search(parts.path):
                continue
            queue.append(parts.path + (f"?{parts.query}" if parts.query else ""))
    assert visited >= len(seeds) // 2, "the crawl saw almost nothing"
    return problems


ROLES = ("anonymous", "member", "referent", "amap_admin", "farmer", "other_farmer", "staff")


@pytest.mark.parametrize("role", ROLES)
def test_no_page_of_any_role_scrolls_sideways_or_shows_technical_text(role, site, browser_page, live_url):
    page = browser_page
    log_in_as(page, live_url, site, role)
    problems = crawl(page, live_url, seeds_for(role, site))
    assert problems == []


def map_top(page) -> float:
    page.locator(".leaflet-container").first.wait_for(state="visible")
    return page.evaluate("document.querySelector('.leaflet-container').getBoundingClientRect().top")


def test_the_map_is_in_the_first_screen_of_a_phone(site, browser_page, live_url):
    page = browser_page
    page.set_viewport_size(PHONE)
    for path in (reverse("maps:carte"), reverse("directory:search") + "?q=Bordeaux"):
        page.goto(live_url + path)
        top = map_top(page)
        assert 0 <= top < PHONE["height"] - 150, (path, top)  # its top and a good part of it in view
    # With filters chosen, the filters stay folded: the map is still in the first screen.
    page.goto(live_url + reverse("directory:search") + "?q=Bordeaux&products=legumes&products=pain&weekday=2")
    assert map_top(page) < PHONE["height"] - 150
    assert page.locator("details.filters").get_attribute("open") is None


def axe_violations(page) -> list[str]:
    # Evaluated through the DevTools protocol: the page's CSP (nonces) does not apply to it.
    page.evaluate(AXE.read_text(encoding="utf-8") + "\n;0")
    result = page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations")
    return [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes'][:3]]}"
        for v in result
        if v["impact"] in ("serious", "critical")
    ]


@pytest.mark.parametrize("width", [390, 1366])
def test_axe_finds_no_serious_violation_on_the_pages_people_use(width, site, browser_page, live_url):
    if not AXE.exists():
        pytest.fail("axe-core is missing: run scripts/assets.sh (make assets)")
    world = site["world"]
    public = [
        "/",
        reverse("directory:search") + "?q=Bordeaux",
        reverse("directory:amap_detail", args=[world.amap.pk]),
        reverse("maps:carte"),
        reverse("matching:annonce_detail", args=[site["annonce"].pk]),
    ]
    as_member = [reverse("contracts:subscription_detail", args=[world.subscription.pk])]
    as_referent = [
        reverse("contracts:delivery_sheet", args=[world.deliveries[0].pk]),
        reverse("contracts:contract_detail", args=[world.contract.pk]),
    ]
    page = browser_page
    page.set_viewport_size({"width": width, "height": 900 if width > 390 else 844})
    found = {}
    for role, paths in (("anonymous", public), ("member", as_member), ("referent", as_referent)):
        page.context.clear_cookies()
        if role != "anonymous":
            log_in_as(page, live_url, site, role)
            page.set_viewport_size({"width": width, "height": 900 if width > 390 else 844})
        for path in paths:
            page.goto(live_url + path)
            if page.locator(".leaflet-container").count():
                page.wait_for_timeout(500)  # markers and clusters drawn
            violations = axe_violations(page)
            if violations:
                found[path] = violations
    assert found == {}


def test_axe_finds_no_serious_violation_on_the_coverage_dashboard(site, browser_page, live_url):
    page = browser_page
    log_in_as(page, live_url, site, "staff")
    page.goto(live_url + reverse("coverage:network_coverage", args=["gironde"]))
    assert axe_violations(page) == []


def test_every_form_fits_a_360_px_screen(site, browser_page, live_url):
    world = site["world"]
    forms = {
        "anonymous": [
            reverse("directory:search") + "?q=Bordeaux&products=legumes",
            reverse("accounts:login"),
            reverse("accounts:signup"),
        ],
        "referent": [
            reverse("contracts:contract_create"),
            reverse("contracts:contract_edit", args=[world.contract.pk]),
            reverse("matching:annonce_create"),
            reverse("matching:alerts"),
            reverse("matching:thread_detail", args=[site["thread"].pk]),
        ],
        "member": [
            reverse("contracts:subscription_amend", args=[world.subscription.pk]),
            reverse("contracts:subscription_absences", args=[world.subscription.pk]),
        ],
        "unrelated": [reverse("contracts:subscription_create", args=[world.contract.pk])],
    }
    page = browser_page
    wide = {}
    for role, paths in forms.items():
        page.context.clear_cookies()
        log_in_as(page, live_url, site, role)
        page.set_viewport_size({"width": 360, "height": 780})
        for path in paths:
            page.goto(live_url + path)
            page.locator("details:not([open]) > summary").evaluate_all("els => els.forEach(e => e.click())")
            assert page.locator("form").count() >= 1, path
            width = page.evaluate("document.documentElement.scrollWidth")
            if width > 360:
                wide[path] = width
    assert wide == {}
