"""A farmer, in a real browser: signs up, declares a farm, posts an annonce, sees ranked matches with
their reasons on a map, and contacts one AMAP."""

import re
from urllib.parse import urlparse

import pytest
from playwright.sync_api import expect

from tests.factories import LIBOURNE, AmapFactory, PartnershipFactory, product

from .conftest import point_at

# Data fixtures come before `browser_page` (Playwright's event loop then owns the test thread).
pytestmark = pytest.mark.browser


@pytest.fixture
def amaps_around_libourne(db, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Its contact address (private) receives the message; nobody without one could (issue 14).
    AmapFactory(
        name="AMAP du Fronsadais",
        location=point_at(LIBOURNE, km=8, azimuth=330),
        delivery_weekdays=[2],
        private_email="bureau@fronsadais.example.net",
    )
    AmapFactory(
        name="AMAP de Saint-Émilion",
        location=point_at(LIBOURNE, km=12, azimuth=100),
        delivery_weekdays=[2],
        member_count=45,
    )
    served = AmapFactory(name="AMAP déjà servie", location=point_at(LIBOURNE, km=5), delivery_weekdays=[2])
    PartnershipFactory(amap=served, product=product("oeufs"))
    AmapFactory(name="AMAP fermée", location=point_at(LIBOURNE, km=4, azimuth=200), status="closed")
    AmapFactory(name="AMAP du jeudi", location=point_at(LIBOURNE, km=6, azimuth=60), delivery_weekdays=[4])


def test_farmer_signs_up_posts_an_annonce_sees_ranked_matches_and_contacts_an_amap(
    amaps_around_libourne, browser_page, live_url
):
    page = browser_page

    # 1. Sign up.
    page.goto(live_url + "/comptes/inscription/")
    page.fill("input[name=email]", "jeanne.paysanne@example.org")
    page.fill("input[name=display_name]", "Jeanne")
    page.fill("input[name=password1]", "radis-noir-42-bio")
    page.fill("input[name=password2]", "radis-noir-42-bio")
    page.get_by_role("button", name="Créer mon compte").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Bonjour Jeanne")

    # 2. Declare the farm ("Ma ferme").
    page.get_by_role("link", name="Déclarer une ferme").click()
    page.fill("input[name=name]", "Ferme des Trois Chênes")
    page.fill("input[name=address]", "Lieu-dit Les Chênes, 33500 Libourne")
    page.get_by_label("Œufs").check()
    page.fill("input[name=delivery_radius_km]", "30")
    page.get_by_role("button", name="Enregistrer").click()
    expect(page.get_by_role("status")).to_have_text("Enregistré.")

    # 3. Post "Paysan cherche AMAP".
    page.get_by_role("link", name="Publier une annonce « Paysan cherche AMAP »").click()
    page.get_by_label("Œufs").check()
    page.get_by_label("mardi").check()
    page.fill("input[name=radius_km]", "30")
    page.fill("input[name=shares]", "40")
    page.get_by_role("button", name="Publier l'annonce").click()
    expect(page).to_have_url(re.compile(r"/annonces/\d+/$"))

    # 4. Ranked matches, each with its reasons, on a map.
    cards = page.locator("#matches .match-card")
    expect(cards).to_have_count(2)  # served, closed and Thursday-only AMAPs are left out
    expect(cards.nth(0)).to_contain_text("AMAP du Fronsadais")
    expect(cards.nth(0)).to_contain_text("à 8,0 km, environ 10 min de route (estimation)")
    expect(cards.nth(0)).to_contain_text("aucun producteur d'œufs actuellement")
    expect(cards.nth(0)).to_contain_text("livraison le mardi compatible")
    expect(cards.nth(1)).to_contain_text("AMAP de Saint-Émilion")
    expect(cards.nth(1)).to_contain_text("45 foyers adhérents")
    scores = [float(s.split()[-1].replace(",", ".")) for s in page.locator("#matches .score").all_inner_texts()]
    assert scores == sorted(scores, reverse=True)
    expect(page.locator(".leaflet-container")).to_be_visible()
    expect(page.locator(".leaflet-marker-icon").first).to_be_visible()
    assert page.locator(".leaflet-marker-icon").count() >= 1

    # 5. Contact the first AMAP through the platform.
    first = cards.nth(0)
    first.get_by_text("Contacter", exact=True).click()
    expect(first.locator(".contact-route")).to_contain_text("sera envoyé à son adresse de contact")
    first.locator("textarea").fill("Bonjour, je livre des œufs le mardi près de chez vous.")
    first.get_by_role("button", name="Envoyer").click()
    expect(page.get_by_role("status")).to_contain_text("Message envoyé à « AMAP du Fronsadais »")
    # Titled from the reader's side (issue 17): the farmer reads the AMAP's name, not their own farm's.
    expect(page.get_by_role("heading", level=1)).to_have_text("Conversation avec AMAP du Fronsadais")
    expect(page.locator(".thread-message")).to_contain_text("je livre des œufs le mardi")
    assert "@example.org" not in page.content()
    assert "fronsadais.example.net" not in page.content()

    hosts = {urlparse(url).hostname for url in page.requested_urls if url.startswith("http")}
    assert hosts <= {"127.0.0.1", "tile.openstreetmap.org"}, hosts


# Internal names and English words that must never reach a farmer's page.
INTERNAL = (
    "product_gap",
    "tour_synergy",
    "log_distance",
    "nearest_delivery",
    "within_15",
    "marginal_detour",
    "size_openness",
    "reciprocal",
    "weekday",
    "score",
)
ENGLISH = re.compile(r"\b(the|and|with|of|match|matches|tour|detour|partners|estimate|minutes|days|farm)\b", re.I)


@pytest.fixture
def farm_with_a_tuesday_tour(db):
    """A farm at Libourne delivering eggs on Tuesdays to two AMAPs; a third AMAP lies on the way."""
    from tests.factories import FarmFactory, UserFactory

    from .conftest import farm_annonce

    eggs = product("oeufs")
    farm = FarmFactory(name="Ferme de la Tournée", location=LIBOURNE, products=[eggs], delivery_radius_km=40)
    farm.refresh_from_db()
    first = AmapFactory(
        name="AMAP de Pomerol", location=point_at(farm.public_location, km=9, azimuth=0), delivery_weekdays=[2]
    )
    second = AmapFactory(
        name="AMAP de Lussac", location=point_at(farm.public_location, km=11, azimuth=70), delivery_weekdays=[2]
    )
    for amap in (first, second):
        PartnershipFactory(amap=amap, farm=farm, product=eggs)
    AmapFactory(
        name="AMAP de Montagne",
        location=point_at(first.location, km=5, azimuth=110),
        delivery_weekdays=[2],
        products=["legumes"],
    )
    farmer = UserFactory(email="lea.paysanne@example.org")
    annonce = farm_annonce(farm, offered=("oeufs",), radius_km=30, weekdays=(2,), user=farmer)
    return annonce


@pytest.mark.parametrize("viewport", [(390, 844), (1366, 900)], ids=["phone", "desktop"])
def test_a_farmers_match_shows_its_tour_detour_and_french_reasons_only(
    farm_with_a_tuesday_tour, viewport, browser_page, live_url
):
    page = browser_page
    page.set_viewport_size({"width": viewport[0], "height": viewport[1]})
    annonce = farm_with_a_tuesday_tour
    page.goto(f"{live_url}/comptes/connexion/?next=/annonces/{annonce.pk}/")
    page.fill("input[name=username]", "lea.paysanne@example.org")
    page.fill("input[name=password]", "motdepasse-test")
    page.get_by_role("button", name="Se connecter").click()
    expect(page).to_have_url(re.compile(rf"/annonces/{annonce.pk}/$"))

    card = page.locator("#matches .match-card", has_text="AMAP de Montagne")
    expect(card).to_be_visible()
    detour = card.locator(".detour")
    expect(detour).to_be_visible()
    expect(detour).to_have_text(
        re.compile(r"^\+\d+(,\d)? km et environ \d+ min sur votre tournée du mardi \(estimation\)$")
    )
    expect(card.locator(".reasons li").first).to_contain_text("km, environ")
    expect(card).to_contain_text("aucun producteur d'œufs actuellement")
    text = page.locator("#matches").inner_text()
    for name in INTERNAL:
        assert name not in text.lower(), name
    assert not ENGLISH.search(text), ENGLISH.search(text)
    # Nothing wider than the screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport[0]

    # The tours page: the route of Tuesday on a map.
    page.get_by_role("link", name="Voir mes tournées de livraison").click()
    expect(page.get_by_role("heading", name="Tournée du mardi")).to_be_visible()
    expect(page.locator(".leaflet-container")).to_be_visible()
    expect(page.locator("path.leaflet-interactive").first).to_be_visible()  # the route's line
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport[0]
