"""Issue 14 in a real browser, on a desktop and on a phone (390×844, no sideways scroll): a farmer's
message to an imported AMAP without account reaches the network; an AMAP claims its listing with the
e-mailed code; a declared AMAP stays out of search until approved; a coordinator reverts a change."""

import re

import pytest
from django.core import mail
from playwright.sync_api import expect

from tests.factories import LIBOURNE, AmapFactory, FarmFactory, NetworkFactory, UserFactory
from tests.matching.conftest import farm_annonce, point_at

pytestmark = pytest.mark.browser

PASSWORD = "motdepasse-test"
VIEWPORTS = [
    pytest.param({"width": 1280, "height": 800}, id="desktop"),
    pytest.param({"width": 390, "height": 844}, id="phone"),
]


@pytest.fixture(autouse=True)
def _mail_leaves_at_once(monkeypatch):
    """E-mails leave on commit; tests run inside one transaction, so they leave at once here."""
    monkeypatch.setattr("django.db.transaction.on_commit", lambda func, *args, **kwargs: func())


@pytest.fixture
def gironde(db):
    network = NetworkFactory(name="AMAP Gironde", slug="amap-gironde", departments=["33"])
    coordinator = UserFactory(email="coline@gironde.example", display_name="Coline Coordinatrice")
    network.admins.add(coordinator)
    return network, coordinator


def log_in(page, live_url, email: str, next_path: str) -> None:
    page.context.clear_cookies()
    page.goto(f"{live_url}/comptes/connexion/?next={next_path}")
    page.fill("input[name=username]", email)
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Se connecter").click()


def no_sideways_scroll(page) -> None:
    page.wait_for_load_state("load")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


@pytest.fixture
def imported_amap_and_farmer(gironde):
    amap = AmapFactory(
        name="AMAP le Pré de Carignan",
        source="import",
        external_id="carignan",
        location=point_at(LIBOURNE, km=8, azimuth=330),
        delivery_weekdays=[2],
    )
    farm = FarmFactory(name="Ferme des Trois Chênes")
    farmer = UserFactory(email="paul@example.org", display_name="Paul Paysan")
    annonce = farm_annonce(farm, user=farmer, radius_km=30)
    return amap, farmer, annonce


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_a_farmer_s_message_to_an_imported_amap_goes_to_the_network_and_the_answer_comes_back(
    imported_amap_and_farmer, gironde, settings, browser_page, live_url, viewport
):
    settings.ROUTING_BACKEND = "estimate"
    _network, coordinator = gironde
    _amap, farmer, annonce = imported_amap_and_farmer
    page = browser_page
    page.set_viewport_size(viewport)
    log_in(page, live_url, farmer.email, f"/annonces/{annonce.pk}/")
    card = page.locator("#matches .match-card", has_text="AMAP le Pré de Carignan")
    card.get_by_text("Contacter", exact=True).click()
    expect(card.locator(".contact-route")).to_contain_text(
        "Cette AMAP n'a pas de compte : votre message ira au réseau AMAP Gironde, qui fera suivre."
    )
    no_sideways_scroll(page)
    card.locator("textarea").fill("Bonjour, je livre des œufs le mardi.")
    card.get_by_role("button", name="Envoyer").click()
    expect(page.get_by_role("status")).to_contain_text("transmis au réseau AMAP Gironde")
    expect(page.locator(".delivery-state")).to_contain_text("transmis au réseau AMAP Gironde · pas encore lu")
    thread_url = page.url
    assert [m.to for m in mail.outbox] == [[coordinator.email]]

    # The coordinator answers on the platform.
    log_in(page, live_url, coordinator.email, thread_url.replace(live_url, ""))
    expect(page.locator(".thread-message")).to_contain_text("je livre des œufs le mardi")
    page.locator("textarea").fill("Je transmets à l'AMAP, elle vous rappelle.")
    page.get_by_role("button", name="Envoyer").click()
    expect(page.get_by_role("status")).to_have_text("Réponse envoyée.")
    assert mail.outbox[-1].to == [farmer.email]

    # The farmer reads the answer; his own message now shows « lu ».
    log_in(page, live_url, farmer.email, thread_url.replace(live_url, ""))
    expect(page.locator(".thread-message").nth(1)).to_contain_text("elle vous rappelle")
    expect(page.locator(".delivery-state").first).to_contain_text("lu le")
    no_sideways_scroll(page)
    assert "coline@gironde.example" not in page.content()


@pytest.fixture
def imported_capucins(db):
    amap = AmapFactory(
        name="AMAP des Capucins", source="import", external_id="capucins", private_email="bureau@capucins.example"
    )
    return amap, UserFactory(email="alice@example.org", display_name="Alice")


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_an_amap_claims_its_imported_listing_with_the_emailed_code_and_edits_it(
    imported_capucins, browser_page, live_url, viewport
):
    # Data comes from fixtures: once Playwright runs, its event loop owns this thread (no ORM here).
    amap, claimant = imported_capucins
    page = browser_page
    page.set_viewport_size(viewport)
    log_in(page, live_url, claimant.email, f"/amap/{amap.pk}/")
    page.get_by_role("link", name="C'est mon AMAP").click()
    no_sideways_scroll(page)
    assert "bureau@capucins.example" not in page.content()
    page.get_by_role("button", name="Recevoir un code").click()
    expect(page.get_by_role("status")).to_contain_text("Code envoyé")
    code = re.search(r"(\d{6})", mail.outbox[-1].body).group(1)
    assert mail.outbox[-1].to == ["bureau@capucins.example"]
    page.get_by_label("Code reçu").fill(code)
    page.get_by_role("button", name="Valider le code").click()
    expect(page.get_by_role("status")).to_contain_text("vous administrez maintenant cette fiche")
    page.fill("input[name=name]", "AMAP des Capucins (Bordeaux)")
    page.fill("input[name=address]", "Place de la Comédie, 33000 Bordeaux")  # the import had none
    page.get_by_role("button", name="Enregistrer").click()
    expect(page.get_by_role("status")).to_have_text("Enregistré.")
    page.goto(f"{live_url}/amap/{amap.pk}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("AMAP des Capucins (Bordeaux)")


@pytest.fixture
def declarant(db):
    return UserFactory(email="dora@example.org", display_name="Dora")


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_a_declared_amap_is_not_in_public_search_until_a_coordinator_approves_it(
    gironde, declarant, browser_page, live_url, viewport
):
    network, coordinator = gironde
    page = browser_page
    page.set_viewport_size(viewport)
    log_in(page, live_url, declarant.email, "/comptes/amap/nouvelle/")
    page.fill("input[name=name]", "AMAP du Nouveau Monde")
    page.fill("input[name=address]", "Place de la Comédie, 33000 Bordeaux")
    page.get_by_role("button", name="Enregistrer").click()
    expect(page.get_by_role("status")).to_contain_text("sera publiée après vérification par le réseau AMAP Gironde")

    search = f"{live_url}/recherche/?q=Bordeaux"
    page.goto(search)
    expect(page.locator("main")).not_to_contain_text("AMAP du Nouveau Monde")

    log_in(page, live_url, coordinator.email, f"/reseau/{network.slug}/moderation/")
    no_sideways_scroll(page)
    page.get_by_role("link", name=re.compile("AMAP du Nouveau Monde")).click()
    page.get_by_role("button", name="Accepter").click()
    expect(page.get_by_role("status")).to_contain_text("Demande acceptée")
    page.goto(search)
    expect(page.locator("main")).to_contain_text("AMAP du Nouveau Monde")


@pytest.fixture
def vandalised(db):
    amap = AmapFactory(name="AMAP des Chartrons")
    amap.name = "AMAP vandalisée"
    amap.save()
    return amap


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_a_coordinator_reverts_a_change_from_the_history(gironde, vandalised, browser_page, live_url, viewport):
    _network, coordinator = gironde
    amap = vandalised
    page = browser_page
    page.set_viewport_size(viewport)
    log_in(page, live_url, coordinator.email, f"/amap/{amap.pk}/")
    page.get_by_role("link", name="Historique").click()
    expect(page.locator("#history")).to_contain_text("AMAP vandalisée")
    no_sideways_scroll(page)
    page.locator(".history-version").last.get_by_role("button", name="Rétablir cette version").click()
    expect(page.get_by_role("status")).to_contain_text("Version rétablie")
    expect(page.locator(".history-version").first).to_contain_text("Rétablissement de la version du")
    expect(page.locator(".history-version").first).to_contain_text("Coline Coordinatrice")
    page.goto(f"{live_url}/amap/{amap.pk}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("AMAP des Chartrons")
