"""The organisers' page of an event in a real browser, on a phone (390×844) and a laptop: the AMAP's
admin moves the event, then cancels it with a reason; a member then finds it « Annulé », with the
reason, and can no longer answer. No sideways scroll, nothing blocked by the CSP, axe finds no
serious violation."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from directory.models import AmapManager
from events.models import Event, Rsvp
from members.models import Membership
from tests.factories import AmapFactory, UserFactory
from tests.maps.test_browser import csp_violations
from tests.test_pages_browser import axe_violations

pytestmark = pytest.mark.browser

PASSWORD = "motdepasse-test"  # tests.factories.UserFactory's


@pytest.fixture
def gathering(db):
    amap = AmapFactory(name="AMAP des Capucins")
    admin = UserFactory(email="adele@example.org", display_name="Adèle Admin")
    AmapManager.objects.create(amap=amap, user=admin, role=AmapManager.Role.ADMIN)
    member = UserFactory(email="lea@example.org", display_name="Léa Membre")
    Membership.objects.create(amap=amap, user=member, email=member.email, status="active")
    start = timezone.localtime().replace(hour=19, minute=0, second=0, microsecond=0) + dt.timedelta(days=20)
    event = Event.objects.create(
        amap=amap,
        title="Assemblée générale",
        description="Bilan de la saison et élection du bureau.",
        place="Salle des fêtes",
        starts_at=start,
        ends_at=start + dt.timedelta(hours=2),
        capacity=40,
    )
    Rsvp.objects.create(event=event, person=member, answer=Rsvp.Answer.YES, answered_at=timezone.now())
    return event


def log_in(page, live_url, email: str, next_path: str) -> None:
    page.goto(f"{live_url}/comptes/connexion/?next={next_path}")
    page.fill("input[name=username]", email)
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(f"**{next_path}")


def fits(page, width: int) -> None:
    page.wait_for_load_state()
    assert page.evaluate("document.documentElement.scrollWidth") <= width, page.url


@pytest.mark.parametrize("width,height", [(390, 844), (1366, 900)])
def test_the_organiser_moves_then_cancels_and_the_member_sees_annule(gathering, browser_page, live_url, width, height):
    page = browser_page
    page.set_default_timeout(30_000)
    page.set_viewport_size({"width": width, "height": height})
    violations = csp_violations(page)
    detail = reverse("events:event_detail", args=[gathering.pk])

    # The admin opens the organisers' page from the event's page.
    log_in(page, live_url, "adele@example.org", detail)
    page.get_by_role("link", name="Modifier ou annuler l'évènement").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Modifier ou annuler l'évènement")
    expect(page.locator("#registered")).to_contain_text("1 personne inscrite")
    fits(page, width)
    assert axe_violations(page) == []

    # A new place: the one person registered is told, and the page says so.
    page.get_by_label("Lieu").fill("Grange de la ferme du Grand Pré")
    page.get_by_role("button", name="Enregistrer les modifications").click()
    expect(page.get_by_role("status").first).to_have_text("Évènement modifié. 1 personne inscrite prévenue par e-mail.")
    expect(page.locator(".facts")).to_contain_text("Grange de la ferme du Grand Pré")
    fits(page, width)

    # Cancelled with a reason.
    page.get_by_role("link", name="Modifier ou annuler l'évènement").click()
    page.get_by_label("Motif de l'annulation").fill("Le bureau est malade : l'AG est reportée.")
    page.get_by_role("button", name="Annuler l'évènement").click()
    expect(page.get_by_role("status").first).to_have_text("Évènement annulé. 1 personne inscrite prévenue par e-mail.")
    expect(page.locator("#cancelled")).to_contain_text("Annulé")
    expect(page.get_by_role("link", name="Modifier ou annuler l'évènement")).to_have_count(0)
    fits(page, width)

    # The member, in a browser of her own, finds it « Annulé » with the reason; no more answers.
    member = page.context.browser.new_context(viewport={"width": width, "height": height}).new_page()
    member.set_default_timeout(30_000)
    member_violations = csp_violations(member)
    log_in(member, live_url, "lea@example.org", detail)
    expect(member.locator("#cancelled")).to_contain_text("Annulé")
    expect(member.locator("#cancelled")).to_contain_text("Motif : Le bureau est malade : l'AG est reportée.")
    expect(member.get_by_role("button", name="Je viens")).to_have_count(0)
    fits(member, width)
    assert axe_violations(member) == []
    member.goto(live_url + reverse("events:amap_calendar", args=[gathering.amap_id]))
    expect(member.locator("#events")).to_contain_text("Aucun évènement à venir.")
    expect(member.locator("#cancelled-events")).to_contain_text("Assemblée générale")
    expect(member.locator("#cancelled-events")).to_contain_text("Annulé")
    fits(member, width)
    assert violations == [] and member_violations == []
