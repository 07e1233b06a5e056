"""Issue 15, start to finish on a phone (390×844), in a real browser: a visitor finds an AMAP near
Bordeaux, joins it (creating an account on the way), is accepted by the team, whose admin marks the
adhésion paid; the member subscribes to a contract and signs it with the e-mailed code, signs up for
a distribution shift, gets the reminder two days before, and finds the shift and the deliveries
(tentative until the farmer countersigns) in their calendar feed.

The live server runs in this process (tests/support.py): the e-mails land in `mail.outbox`.
"""

import datetime as dt
import re
import threading
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail
from django.db import connections
from django.test import TestCase
from playwright.sync_api import expect

from directory.models import AmapManager
from events.tasks import remind_shifts
from members.models import AdhesionSeason
from tests.contracts.factories import ContractFactory, ContractProductFactory, weekly_deliveries
from tests.factories import AmapFactory, FarmFactory, PartnershipFactory, UserFactory

# Data fixtures come before `browser_page` (Playwright's event loop then owns the test thread).
pytestmark = pytest.mark.browser

PARIS = ZoneInfo("Europe/Paris")
PASSWORD = "motdepasse-test"  # tests.factories.UserFactory's
WIDTH, HEIGHT = 390, 844


@pytest.fixture
def amap_near_bordeaux(db):
    amap = AmapFactory(name="AMAP des Capucins", delivery_weekdays=[2])
    farm = FarmFactory(name="Ferme du Grand Pré")
    PartnershipFactory(amap=amap, farm=farm)
    admin = UserFactory(email="adele@example.org", display_name="Adèle Admin")
    AmapManager.objects.create(amap=amap, user=admin, role=AmapManager.Role.ADMIN)
    farmer = UserFactory(email="paul@example.org", display_name="Paul Paysan")
    farm.managers.add(farmer)
    # The adhésion season covers the contract's (2027, Tuesdays from 6 April to 28 September).
    AdhesionSeason.objects.create(
        amap=amap, label="2026-2027", starts_on=dt.date(2026, 9, 1), ends_on=dt.date(2027, 10, 31), amount=Decimal(10)
    )
    contract = ContractFactory(
        amap=amap, farm=farm, title="Légumes 2027", referent=admin, requires_membership=True, instalments_max=1
    )
    ContractProductFactory(contract=contract, name="Panier de légumes", unit_price=Decimal("15.00"))
    deliveries = weekly_deliveries(contract)
    # The test's connection: the live server serves from it, and so must the reminder job.
    return {"contract": contract, "first_delivery": deliveries[0].date, "connection": connections["default"]}


def in_test_transaction(connection, job) -> None:
    """Run `job` in a thread of its own on the test's connection, then its on-commit callbacks
    (e-mails). The test thread cannot: beside Playwright's event loop, Django gives it another
    connection, outside the test's transaction, which sees none of the walk's data."""
    failures = []

    def target():
        connections["default"] = connection
        try:
            with TestCase.captureOnCommitCallbacks(execute=True):
                job()
        except BaseException as error:  # re-raised in the test thread
            failures.append(error)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if failures:
        raise failures[0]


def fits_the_phone(page) -> None:
    page.wait_for_load_state()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= WIDTH, f"{page.url} is {width}px wide"


def log_in(page, live_url, email: str, next_path: str) -> None:
    page.goto(f"{live_url}/comptes/connexion/?next={next_path}")
    page.fill("input[name=username]", email)
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Se connecter").click()


def last_code(to: str) -> str:
    message = [m for m in mail.outbox if m.to == [to]][-1]
    return re.search(r"^\s+(\d{6})\s*$", message.body, re.MULTILINE).group(1)


def test_a_visitor_joins_an_amap_near_bordeaux_and_ends_up_on_duty_with_it_all_in_their_calendar(
    amap_near_bordeaux, browser_page, live_url
):
    page = browser_page
    page.set_default_timeout(60_000)  # PDFs are rendered while signing; the machine may be busy
    page.set_viewport_size({"width": WIDTH, "height": HEIGHT})
    first_day = amap_near_bordeaux["first_delivery"]

    # 1. The home page's search box, the results, the AMAP's page.
    page.goto(live_url + "/")
    fits_the_phone(page)
    page.get_by_label("Ville, code postal ou adresse").fill("Bordeaux")
    page.get_by_role("button", name="Rechercher").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Bordeaux")
    fits_the_phone(page)
    page.locator(".results-list").get_by_role("link", name="AMAP des Capucins").first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("AMAP des Capucins")
    expect(page.locator("section.join")).to_contain_text("Légumes 2027")  # its open contracts
    amap_url = page.url
    fits_the_phone(page)

    # 2. « Rejoindre cette AMAP »: an account is created on the way, then the request is sent.
    page.get_by_role("link", name="Rejoindre cette AMAP").click()
    fits_the_phone(page)
    page.fill("input[name=email]", "lea@example.org")
    page.fill("input[name=display_name]", "Léa Nouvelle")
    page.fill("input[name=password1]", "radis-noir-42-bio")
    page.fill("input[name=password2]", "radis-noir-42-bio")
    page.get_by_role("button", name="Créer mon compte").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Rejoindre cette AMAP")
    fits_the_phone(page)
    page.get_by_role("button", name="Envoyer ma demande").click()
    expect(page.get_by_role("status").first).to_contain_text("Demande envoyée")
    fits_the_phone(page)

    # 3. The team, in another browser (its own cookies), accepts her.
    team = page.context.browser.new_context(viewport={"width": WIDTH, "height": HEIGHT}).new_page()
    team.set_default_timeout(60_000)
    log_in(team, live_url, "adele@example.org", amap_url.removeprefix(live_url))
    team.get_by_role("link", name="Gérer les membres").click()
    expect(team.get_by_role("heading", level=1)).to_have_text("Membres")
    fits_the_phone(team)
    row = team.locator("tr", has_text="lea@example.org")
    row.get_by_role("button", name="Accepter").click()
    expect(team.get_by_role("status").first).to_contain_text("C'est noté")
    expect(team.locator("tr", has_text="lea@example.org")).to_contain_text("membre")

    # 4. She records her adhésion (a cheque); the team marks it paid; her receipt is there.
    page.reload()
    page.get_by_role("link", name="Mon adhésion").click()
    fits_the_phone(page)
    page.get_by_label("Mode de paiement").select_option(label="chèque")
    page.get_by_role("button", name="Enregistrer mon adhésion").click()
    expect(page.get_by_role("status").first).to_contain_text("Adhésion enregistrée")
    team.get_by_role("link", name="Adhésions", exact=True).click()
    fits_the_phone(team)
    team.locator("tr", has_text="Léa Nouvelle").get_by_role("button", name="Marquer réglée").click()
    expect(team.locator("tr", has_text="Léa Nouvelle")).to_contain_text("réglée")
    page.goto(amap_url)
    page.get_by_role("link", name="Mon adhésion").click()
    expect(page.get_by_role("link", name="Télécharger le reçu (PDF)")).to_be_visible()

    # 5. From the AMAP's page, the contract: subscribe, sign with the code received by e-mail.
    page.goto(amap_url)
    page.locator("section.join").get_by_role("link", name="Légumes 2027").click()
    fits_the_phone(page)
    page.get_by_role("link", name="Souscrire").click()
    fits_the_phone(page)
    page.get_by_label("Panier de légumes (15,00 €)").fill("1")
    page.get_by_role("button", name="Continuer").click()
    fits_the_phone(page)
    page.get_by_role("link", name="Signer le contrat").click()
    fits_the_phone(page)
    page.get_by_label("J'ai lu la Charte des AMAP et je m'engage à la respecter.").check()
    page.get_by_role("button", name="Recevoir le code").click()
    expect(page.get_by_role("status").first).to_contain_text("Un code vous a été envoyé par e-mail")
    page.get_by_role("textbox", name="Code reçu par e-mail").fill(last_code("lea@example.org"))
    page.get_by_role("button", name="Signer", exact=True).click()
    expect(page.get_by_role("status").first).to_contain_text("Contrat signé")
    expect(page.locator("#subscription-status")).to_have_text("signé par l'adhérent·e, en attente du paysan")
    fits_the_phone(page)

    # 6. From her dashboard, the AMAP's shifts: she signs up for the first distribution.
    page.goto(live_url + "/comptes/")
    fits_the_phone(page)
    page.get_by_role("link", name="Permanences de AMAP des Capucins").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Permanences de distribution")
    # The whole coming season, though it starts in months: the last Tuesday is there too.
    expect(page.locator('#shifts li[data-date="2027-09-28"]')).to_have_count(1)
    fits_the_phone(page)
    first = page.locator(f'#shifts li[data-date="{first_day.isoformat()}"]')
    first.get_by_role("button", name="Je m'inscris").click()
    expect(page.get_by_role("status").first).to_contain_text("Merci ! Vous êtes de permanence")
    expect(page.locator(f'#shifts li[data-date="{first_day.isoformat()}"]')).to_contain_text("Léa Nouvelle")
    fits_the_phone(page)

    # 7. The daily job, two days before at 09:00 in Paris, e-mails her the reminder.
    travel = dt.datetime.combine(first_day - dt.timedelta(days=2), dt.time(9), tzinfo=PARIS)
    with time_machine.travel(travel, tick=False):
        in_test_transaction(amap_near_bordeaux["connection"], lambda: remind_shifts(timestamp=0))
    reminders = [m for m in mail.outbox if m.subject.startswith("Rappel : permanence")]
    assert [m.to for m in reminders] == [["lea@example.org"]]
    assert "AMAP des Capucins" in reminders[0].body and "mardi 6 avril 2027" in reminders[0].body

    # 8. Her calendar feed: the shift, and the deliveries, tentative until the farmer countersigns.
    page.goto(live_url + "/contrats/mes-livraisons/")
    expect(page.locator(".delivery, li, tr").filter(has_text="en attente de contre-signature").first).to_be_visible()
    fits_the_phone(page)
    feed_url = page.locator("#ics-feed").get_attribute("href")
    feed = page.request.get(feed_url).text()
    assert "Permanence" in feed and "20270406" in feed
    assert feed.count("STATUS:TENTATIVE") >= 26  # the season's 26 Tuesdays
    assert "en attente de contre-signature" in feed
