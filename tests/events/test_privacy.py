"""A person's answers to events, shifts and created events in « Mes données » (events/privacy.py):
listed on the page, in both copies, and erased with the account (what is over stays, nameless)."""

import csv
import datetime as dt
import html
import io
import json
import zipfile

import pytest
import time_machine
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from contracts.privacy import member_erasure
from contracts.retention import retention_apply
from events.models import Event, Rsvp, Shift
from events.selectors import rsvp_counts
from tests.factories import AmapFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # A real hash costs about a second per user on these machines; what is tested here is not its strength.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _event(amap, title: str, days: int, **fields) -> Event:
    start = timezone.localtime().replace(hour=19, minute=0, second=0, microsecond=0) + dt.timedelta(days=days)
    return Event.objects.create(
        amap=amap,
        title=title,
        place="Salle des fêtes",
        starts_at=start,
        ends_at=start + dt.timedelta(hours=2),
        **fields,
    )


def _answer(event, person, answer, minutes_ago: int = 60) -> Rsvp:
    return Rsvp.objects.create(
        event=event, person=person, answer=answer, answered_at=timezone.now() - dt.timedelta(minutes=minutes_ago)
    )


@pytest.fixture
def story():
    """Amélie said yes to last month's general meeting and to next month's farm visit (one place,
    Bruno waits for it), no to a picnic; she is on duty last week and next week, and created an event."""
    amap = AmapFactory(name="AMAP des Chartrons")
    amelie = UserFactory(display_name="Amélie Adhérente", email="amelie@example.org")
    bruno = UserFactory(display_name="Bruno Voisin")
    claire = UserFactory(display_name="Claire Présente")
    past = _event(amap, "Assemblée générale 2026", days=-30)
    visit = _event(amap, "Visite de la ferme", days=30, capacity=1)
    picnic = _event(amap, '=HYPERLINK("http://x")', days=40)  # a title a spreadsheet would run
    _answer(past, amelie, Rsvp.Answer.YES)
    _answer(past, claire, Rsvp.Answer.YES)
    _answer(visit, amelie, Rsvp.Answer.YES, minutes_ago=120)
    _answer(visit, bruno, Rsvp.Answer.WAITING)
    _answer(picnic, amelie, Rsvp.Answer.NO)
    _event(amap, "Fête de l'été", days=60, created_by=amelie)
    today = timezone.localdate()
    Shift.objects.create(amap=amap, date=today - dt.timedelta(days=7), member=amelie)
    Shift.objects.create(amap=amap, date=today + dt.timedelta(days=7), member=amelie)
    return {"amap": amap, "amelie": amelie, "bruno": bruno, "past": past, "visit": visit, "picnic": picnic}


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_my_data_lists_my_answers_my_shifts_and_the_events_i_created(story):
    page = html.unescape(_client(story["amelie"]).get(reverse("contracts:my_data")).content.decode())

    assert "Vos réponses aux évènements" in page
    assert "« Assemblée générale 2026 » (AMAP des Chartrons) : je viens" in page
    assert "« Visite de la ferme » (AMAP des Chartrons) : je viens" in page
    assert "je ne viens pas" in page
    assert "Vos permanences" in page and page.count("— AMAP des Chartrons<") == 2
    assert "Évènements que vous avez créés" in page and "« Fête de l'été »" in page
    # Bruno sees his own answer only.
    page = html.unescape(_client(story["bruno"]).get(reverse("contracts:my_data")).content.decode())
    assert "« Visite de la ferme » (AMAP des Chartrons) : liste d'attente" in page
    assert "Assemblée générale" not in page and "Vos permanences" not in page


def test_both_copies_hold_my_answers_with_the_event_its_date_and_my_answer(story):
    client = _client(story["amelie"])

    data = json.loads(client.get(reverse("contracts:my_data_export", args=["json"])).content)
    replies = [(r["event"], r["starts_at"][:10], r["answer"]) for r in data["event_replies"]]
    assert replies == [
        ("Assemblée générale 2026", timezone.localtime(story["past"].starts_at).date().isoformat(), "yes"),
        ("Visite de la ferme", timezone.localtime(story["visit"].starts_at).date().isoformat(), "yes"),
        ('=HYPERLINK("http://x")', timezone.localtime(story["picnic"].starts_at).date().isoformat(), "no"),
    ]
    assert [s["amap"] for s in data["shifts"]] == ["AMAP des Chartrons"] * 2
    assert [e["event"] for e in data["events_created"]] == ["Fête de l'été"]

    archive = zipfile.ZipFile(io.BytesIO(client.get(reverse("contracts:my_data_export", args=["csv"])).content))
    rows = list(csv.DictReader(io.StringIO(archive.read("reponses_evenements.csv").decode("utf-8-sig"))))
    assert [(r["evenement"], r["reponse"]) for r in rows] == [
        ("Assemblée générale 2026", "yes"),
        ("Visite de la ferme", "yes"),
        ('\'=HYPERLINK("http://x")', "no"),  # shown as text, never run
    ]
    assert len(archive.read("permanences.csv").decode("utf-8-sig").splitlines()) == 1 + 2


def test_erasing_my_account_frees_my_coming_places_and_keeps_past_counts_without_my_name(
    story, django_capture_on_commit_callbacks
):
    amelie, past, visit = story["amelie"], story["past"], story["visit"]
    client = _client(amelie)
    # The preview says what goes and what stays, and changes nothing.
    preview = html.unescape(client.get(reverse("contracts:my_data_erase")).content.decode())
    assert "2 réponse(s) à des évènements à venir" in preview
    assert "1 réponse(s) à des évènements passés" in preview
    assert "1 permanence(s) à venir" in preview
    assert Rsvp.objects.filter(person=amelie).count() == 3

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("contracts:my_data_erase"), {"confirm": "on"})
    assert "Vos données ont été effacées" in html.unescape(response.content.decode())

    # Last month's meeting still counts two people; the answer no longer names Amélie.
    assert rsvp_counts(events=[past])[past.pk]["yes"] == 2
    kept = Rsvp.objects.get(event=past, person_id=amelie.pk)
    assert "Amélie" not in str(kept) and "amelie@example.org" not in str(kept)
    # Her coming answers are gone; her place at the visit went to Bruno, who is told.
    assert not Rsvp.objects.filter(event__in=[visit, story["picnic"]], person_id=amelie.pk).exists()
    assert Rsvp.objects.get(event=visit, person=story["bruno"]).answer == Rsvp.Answer.YES
    assert [m.to for m in mail.outbox if "Une place s'est libérée" in m.subject] == [[story["bruno"].email]]
    # Next week's distribution has a place open again; last week's keeps its number on duty.
    assert list(Shift.objects.filter(member_id=amelie.pk).values_list("date", flat=True)) == [
        timezone.localdate() - dt.timedelta(days=7)
    ]
    # The event she created stays the AMAP's.
    assert Event.objects.filter(title="Fête de l'été", amap=story["amap"]).exists()


def test_erasure_report_counts_what_goes_and_what_stays(story):
    report = member_erasure(user=story["amelie"], commit=False)

    deleted = [line.what for line in report.deleted]
    kept = [line.what for line in report.kept]
    assert "2 réponse(s) à des évènements à venir" in deleted and "1 permanence(s) à venir" in deleted
    assert "1 réponse(s) à des évènements passés" in kept and "1 permanence(s) passée(s)" in kept
    assert "1 évènement(s) que vous avez créé(s)" in kept
    assert Rsvp.objects.filter(person=story["amelie"]).count() == 3  # only a preview


def test_retention_anonymises_an_inactive_account_and_the_meeting_keeps_its_count():
    amap = AmapFactory(name="AMAP des Chartrons")
    with time_machine.travel(dt.datetime(2026, 5, 1, 10, 0, tzinfo=dt.UTC), tick=False):
        dormant = UserFactory(display_name="Denis Dormant", email="denis@example.org")
        dormant.last_login = timezone.now()
        dormant.save(update_fields=["last_login"])
        meeting = _event(amap, "Assemblée générale 2026", days=10)
        _answer(meeting, dormant, Rsvp.Answer.YES)

    with time_machine.travel(dt.datetime(2030, 1, 1, 10, 0, tzinfo=dt.UTC), tick=False):
        retention_apply(commit=True)

    reply = Rsvp.objects.get(event=meeting)
    assert reply.answer == Rsvp.Answer.YES and rsvp_counts(events=[meeting])[meeting.pk]["yes"] == 1
    assert "Denis" not in str(reply) and "denis@example.org" not in str(reply)
