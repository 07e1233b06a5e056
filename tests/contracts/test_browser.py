"""In a real browser: a référent creates and publishes a contract, a member subscribes and signs
with the code they receive by e-mail, the farmer countersigns, and the distribution sheet of the
first delivery shows the member.

The live server runs in this process (tests/support.py), so the e-mails it sends land in
`django.core.mail.outbox`, where the test reads the codes.
"""

import re

import pytest
from django.core import mail
from playwright.sync_api import expect

from directory.models import AmapManager
from tests.factories import AmapFactory, FarmFactory, PartnershipFactory, UserFactory

# Data fixtures come before `browser_page` (Playwright's event loop then owns the test thread:
# no ORM call in the test body).
pytestmark = pytest.mark.browser

PASSWORD = "motdepasse-test"  # tests.factories.UserFactory's


@pytest.fixture
def cast(db):
    amap = AmapFactory(name="AMAP des Chartrons", delivery_weekdays=[2])
    farm = FarmFactory(name="Ferme du Grand Pré")
    PartnershipFactory(amap=amap, farm=farm)
    referent = UserFactory(email="rose@example.org", display_name="Rose Référente")
    AmapManager.objects.create(amap=amap, user=referent, role=AmapManager.Role.REFERENT)
    farmer = UserFactory(email="paul@example.org", display_name="Paul Paysan")
    farm.managers.add(farmer)
    member = UserFactory(email="amelie@example.org", display_name="Amélie Adhérente")
    return {"referent": referent, "farmer": farmer, "member": member}


def log_in(page, live_url, email: str, next_path: str) -> None:
    page.context.clear_cookies()
    page.goto(f"{live_url}/comptes/connexion/?next={next_path}")
    page.fill("input[name=username]", email)
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Se connecter").click()


def last_code(to: str) -> str:
    message = [m for m in mail.outbox if m.to == [to]][-1]
    return re.search(r"^\s+(\d{6})\s*$", message.body, re.MULTILINE).group(1)


def sign(page, email: str) -> None:
    """Accept the charter, get the code, type it in."""
    expect(page.get_by_role("link", name=re.compile("Charte des AMAP"))).to_be_visible()
    page.get_by_label("J'ai lu la Charte des AMAP et je m'engage à la respecter.").check()
    page.get_by_role("button", name="Recevoir le code").click()
    expect(page.get_by_role("status")).to_contain_text("Un code vous a été envoyé par e-mail")
    page.get_by_role("textbox", name="Code reçu par e-mail").fill(last_code(email))
    page.get_by_role("button", name="Signer", exact=True).click()


def test_referent_creates_member_signs_farmer_countersigns_sheet_shows_the_member(cast, browser_page, live_url):
    page = browser_page
    page.set_default_timeout(60_000)  # PDFs are rendered while signing; the machine may be busy

    # 1. The référent creates the contract (their only AMAP: the form opens directly) and publishes it.
    log_in(page, live_url, "rose@example.org", "/contrats/nouveau/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Nouveau contrat")
    page.get_by_label("Intitulé").fill("Légumes saison 2027")
    page.get_by_label("Ferme partenaire").select_option(label="Ferme du Grand Pré")
    page.get_by_label("Début de la saison").fill("2027-04-06")
    page.get_by_label("Fin de la saison").fill("2027-06-29")
    page.get_by_label("Jour de distribution").select_option(label="mardi")
    page.get_by_label("Nombre de parts").fill("20")
    page.get_by_label("Nombre maximal de versements").fill("3")
    page.get_by_label("Produit 1", exact=True).fill("Panier de légumes")
    page.get_by_label("Prix du produit 1").fill("15.00")
    page.get_by_role("button", name="Créer le contrat").click()
    expect(page.get_by_role("status")).to_contain_text("Contrat créé (brouillon)")
    expect(page.locator("table").last).to_contain_text("mardi 6 avril 2027")
    page.get_by_role("button", name="Publier le contrat").click()
    expect(page.get_by_role("status")).to_contain_text("Contrat publié")
    contract_url = page.url

    # 2. A member finds it among the open contracts, subscribes, sees the total, signs with the code.
    log_in(page, live_url, "amelie@example.org", "/contrats/")
    page.get_by_role("link", name="Légumes saison 2027").click()
    assert page.url == contract_url
    page.get_by_role("link", name="Souscrire").click()
    page.get_by_label("Panier de légumes (15,00 €)").fill("1")
    page.get_by_label("Nombre de versements").select_option("3")
    page.get_by_role("button", name="Continuer").click()
    # 13 Tuesdays from 6 April to 29 June 2027 at 15 € (no public holiday falls on them).
    expect(page.locator("#total")).to_have_text("Total : 195,00 €")
    expect(page.locator("#instalments li")).to_have_count(3)
    expect(page.locator("#instalments li").first).to_contain_text("65,00 €")
    page.get_by_role("link", name="Signer le contrat").click()
    sign(page, "amelie@example.org")
    expect(page.get_by_role("status")).to_contain_text("Contrat signé. La ferme va le contresigner.")
    expect(page.locator("#subscription-status")).to_have_text("signé par l'adhérent·e, en attente du paysan")

    # 3. The farmer countersigns from their contracts page.
    log_in(page, live_url, "paul@example.org", "/contrats/")
    page.get_by_role("link", name=re.compile("Amélie Adhérente — Légumes saison 2027")).click()
    sign(page, "paul@example.org")
    expect(page.get_by_role("status")).to_contain_text("Contrat contresigné : il est en vigueur.")
    expect(page.locator("#subscription-status")).to_have_text("signé")
    expect(page.locator("#signatures")).to_contain_text("Amélie Adhérente (adhérent·e)")
    expect(page.locator("#signatures")).to_contain_text("Paul Paysan (paysan·ne)")

    # 4. The distribution sheet of the first delivery shows the member.
    page.goto(contract_url)
    page.get_by_role("link", name="Distributions", exact=True).click()
    page.get_by_role("link", name="Feuille d'émargement").first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Distribution du mardi 6 avril 2027")
    sheet = page.locator("#distribution-sheet")
    expect(sheet).to_contain_text("Amélie Adhérente")
    expect(sheet.locator("tbody tr")).to_have_count(1)
    assert "amelie@example.org" not in page.content()
