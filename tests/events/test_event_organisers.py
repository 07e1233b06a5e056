"""The organisers' page of an event (events/views.py `event_edit`, `event_cancel`): the AMAP's team
(or the network's coordinators) change an event or cancel it with a reason; those registered are
told by e-mail through the job queue, and the page says how many — or that nobody was."""

import datetime as dt
import html

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from procrastinate.contrib.django.models import ProcrastinateJob

from events import services
from events.models import Event, Rsvp
from tests.contracts.roles import contract_world
from tests.factories import NetworkFactory, UserFactory
from tests.test_jobs import SEND_EMAIL, run_worker

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued_mail(settings):
    """The production set-up: the queued backend in front, the real one behind (locmem here)."""
    settings.EMAIL_BACKEND = "accounts.mail.QueuedEmailBackend"
    settings.EMAIL_DELIVERY_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


@pytest.fixture
def world():
    return contract_world()


def _event(world, **fields) -> Event:
    # A Saturday evening a month from now, whatever today is.
    start = timezone.localtime().replace(hour=19, minute=0, second=0, microsecond=0) + dt.timedelta(days=30)
    values = {
        "amap": world.amap,
        "title": "Assemblée générale",
        "place": "Salle des fêtes de Bordeaux",
        "starts_at": start,
        "ends_at": start + dt.timedelta(hours=2),
        **fields,
    }
    return Event.objects.create(**values)


def _answer(event, user, answer) -> None:
    Rsvp.objects.create(event=event, person=user, answer=answer, answered_at=timezone.now())


def _form(event, **changes) -> dict:
    data = {
        "kind": event.kind,
        "title": event.title,
        "description": event.description,
        "place": event.place,
        "starts_at": timezone.localtime(event.starts_at).strftime("%Y-%m-%dT%H:%M"),
        "ends_at": timezone.localtime(event.ends_at).strftime("%Y-%m-%dT%H:%M"),
        "capacity": "" if event.capacity is None else str(event.capacity),
    }
    if event.is_public:
        data["is_public"] = "on"
    data.update(changes)
    return data


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _page(response) -> str:
    return html.unescape(response.content.decode())


def test_the_team_moves_an_event_and_those_registered_are_told_by_the_worker(
    world, queued_mail, django_capture_on_commit_callbacks
):
    event = _event(world, capacity=1)
    _answer(event, world.users["member"], Rsvp.Answer.YES)
    _answer(event, world.users["other_member"], Rsvp.Answer.WAITING)  # waiting: concerned too
    _answer(event, world.users["referent"], Rsvp.Answer.NO)  # said no: not bothered
    admin = _client(world.users["amap_admin"])

    page = _page(admin.get(reverse("events:event_edit", args=[event.pk])))
    assert "1 personne inscrite, 1 en attente" in page

    later = timezone.localtime(event.starts_at) + dt.timedelta(days=7)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin.post(
            reverse("events:event_edit", args=[event.pk]),
            _form(
                event,
                place="Ferme du Grand Pré, Blanquefort",
                starts_at=later.strftime("%Y-%m-%dT%H:%M"),
                ends_at=(later + dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"),
            ),
            follow=True,
        )
    assert "Évènement modifié. 2 personnes inscrites prévenues par e-mail." in _page(response)
    event.refresh_from_db()
    assert event.place == "Ferme du Grand Pré, Blanquefort" and event.starts_at == later

    # Nothing left inside the request: two jobs wait on the queue, the worker sends them.
    assert mail.outbox == []
    assert ProcrastinateJob.objects.filter(task_name=SEND_EMAIL).count() == 2
    run_worker("emails")
    assert sorted(m.to[0] for m in mail.outbox) == sorted(
        [world.users["member"].email, world.users["other_member"].email]
    )
    body = mail.outbox[0].body
    assert mail.outbox[0].subject == "Changement : Assemblée générale"
    assert "Ferme du Grand Pré, Blanquefort" in body and f"{later:%H}:00" in body
    assert reverse("events:event_detail", args=[event.pk]) in body


def test_a_change_of_title_alone_tells_nobody_and_history_keeps_both_versions(
    world, django_capture_on_commit_callbacks
):
    event = _event(world)
    _answer(event, world.users["member"], Rsvp.Answer.YES)
    referent = world.users["referent"]
    with django_capture_on_commit_callbacks(execute=True):
        response = _client(referent).post(
            reverse("events:event_edit", args=[event.pk]), _form(event, title="Assemblée générale 2027"), follow=True
        )
    assert "Évènement modifié (date, heure et lieu inchangés : aucun message envoyé)." in _page(response)
    assert mail.outbox == []
    latest, previous = event.history.all()[:2]
    assert (previous.title, latest.title) == ("Assemblée générale", "Assemblée générale 2027")
    assert latest.history_user == referent and latest.history_type == "~"


def test_moving_an_event_nobody_registered_to_says_nobody_was_told(world, django_capture_on_commit_callbacks):
    event = _event(world)
    with django_capture_on_commit_callbacks(execute=True):
        response = _client(world.users["amap_admin"]).post(
            reverse("events:event_edit", args=[event.pk]), _form(event, place="Maison des associations"), follow=True
        )
    assert "Évènement modifié. Personne n'est inscrit·e : aucun message envoyé." in _page(response)
    assert "1 personne" not in _page(response) and mail.outbox == []


def test_bad_values_come_back_in_french_and_change_nothing(world):
    event = _event(world, capacity=5)
    for user in ("member", "other_member"):
        _answer(event, world.users[user], Rsvp.Answer.YES)
    admin = _client(world.users["amap_admin"])
    url = reverse("events:event_edit", args=[event.pk])

    response = admin.post(url, _form(event, capacity="1", title="Changé"))
    assert response.status_code == 400
    assert "2 personnes sont déjà inscrites : pas moins de places que cela." in _page(response)
    start = timezone.localtime(event.starts_at)
    response = admin.post(url, _form(event, ends_at=(start - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")))
    assert response.status_code == 400 and "La fin doit suivre le début." in _page(response)
    response = admin.post(url, _form(event, title=""))
    assert response.status_code == 400 and 'value="Salle des fêtes de Bordeaux"' in response.content.decode()
    event.refresh_from_db()
    assert (event.title, event.capacity, event.history.count()) == ("Assemblée générale", 5, 1)


def test_more_places_let_the_waiting_list_in(world, django_capture_on_commit_callbacks):
    event = _event(world, capacity=1)
    _answer(event, world.users["member"], Rsvp.Answer.YES)
    _answer(event, world.users["other_member"], Rsvp.Answer.WAITING)
    with django_capture_on_commit_callbacks(execute=True):
        admin = _client(world.users["amap_admin"])
        admin.post(reverse("events:event_edit", args=[event.pk]), _form(event, capacity="2"))
    assert Rsvp.objects.get(event=event, person=world.users["other_member"]).answer == Rsvp.Answer.YES
    assert [m.subject for m in mail.outbox] == ["Une place s'est libérée : Assemblée générale"]


def test_a_cancelled_event_says_annule_with_its_reason_and_takes_no_more_answers(
    world, client, django_capture_on_commit_callbacks
):
    event = _event(world, is_public=True)
    member, newcomer = world.users["member"], world.users["other_member"]
    _answer(event, member, Rsvp.Answer.YES)
    admin = _client(world.users["amap_admin"])

    with django_capture_on_commit_callbacks(execute=True):
        response = admin.post(
            reverse("events:event_cancel", args=[event.pk]), {"reason": "La salle est inondée."}, follow=True
        )
    assert "Évènement annulé. 1 personne inscrite prévenue par e-mail." in _page(response)
    [message] = mail.outbox
    assert message.to == [member.email] and message.subject == "Annulé : Assemblée générale"
    assert "Motif : La salle est inondée." in message.body

    # Members see « Annulé » and the reason; nobody can answer any more.
    client.force_login(newcomer)
    page = _page(client.get(reverse("events:event_detail", args=[event.pk])))
    assert "Annulé" in page and "Motif : La salle est inondée." in page and "Je viens" not in page
    response = client.post(reverse("events:event_answer", args=[event.pk]), {"answer": "yes"}, follow=True)
    assert "Cet évènement est annulé : on ne peut plus s'y inscrire." in _page(response)
    assert not Rsvp.objects.filter(event=event, person=newcomer).exists()

    # The agenda keeps it apart from what is coming; the public feed marks it cancelled.
    page = client.get(reverse("events:amap_calendar", args=[world.amap.pk])).content.decode()
    coming, cancelled = page.split('id="cancelled-events"')
    assert "Assemblée générale" not in coming.split('id="events"')[1] and "Assemblée générale" in cancelled
    feed = client.get(reverse("events:amap_ics", args=[world.amap.pk])).content.decode()
    assert "STATUS:CANCELLED" in feed and "Annulé : Assemblée générale" in feed.replace("\r\n ", "")

    # The history records who cancelled it and why; it can be neither changed nor cancelled again.
    latest = event.history.first()
    assert latest.cancelled and latest.cancel_reason == "La salle est inondée."
    assert latest.history_user == world.users["amap_admin"] and latest.history_change_reason == "Annulation"
    response = admin.get(reverse("events:event_edit", args=[event.pk]), follow=True)
    assert "Cet évènement est annulé : il ne peut plus être modifié." in _page(response)
    response = admin.post(reverse("events:event_cancel", args=[event.pk]), {"reason": "Encore"}, follow=True)
    assert "Cet évènement est déjà annulé." in _page(response)
    assert event.history.count() == 2


def test_cancelling_without_a_reason_is_refused_in_french(world):
    event = _event(world)
    response = _client(world.users["amap_admin"]).post(reverse("events:event_cancel", args=[event.pk]), {"reason": " "})
    assert response.status_code == 400
    assert "Dites en quelques mots pourquoi : les inscrit·es le liront." in _page(response)
    event.refresh_from_db()
    assert not event.cancelled


def test_cancelling_an_event_nobody_registered_to_says_no_message_went(world, django_capture_on_commit_callbacks):
    event = _event(world)
    _answer(event, world.users["member"], Rsvp.Answer.NO)
    with django_capture_on_commit_callbacks(execute=True):
        response = _client(world.users["amap_admin"]).post(
            reverse("events:event_cancel", args=[event.pk]), {"reason": "Trop peu de monde."}, follow=True
        )
    assert "Évènement annulé. Personne n'est inscrit·e : aucun message envoyé." in _page(response)
    assert mail.outbox == []


def test_a_past_event_cannot_be_cancelled(world):
    event = _event(world)
    Event.objects.filter(pk=event.pk).update(
        starts_at=timezone.now() - dt.timedelta(days=2), ends_at=timezone.now() - dt.timedelta(days=2, hours=-2)
    )
    response = _client(world.users["amap_admin"]).post(
        reverse("events:event_cancel", args=[event.pk]), {"reason": "Oubli"}
    )
    assert response.status_code == 400 and "Cet évènement est passé" in _page(response)


def test_a_networks_coordinators_run_its_gatherings_and_its_amaps_teams_do_not(world):
    network = NetworkFactory()
    coordinator = UserFactory()
    network.admins.add(coordinator)
    world.amap.networks.add(network)
    gathering = _event(world, amap=None, network=network, kind="network_gathering", title="Rencontre des AMAP")

    change = services.event_update(user=coordinator, event=gathering, place="Halle de Bacalan")
    assert change.changed == ("place",) and change.notified == 0
    with pytest.raises(PermissionDenied):
        services.event_cancel(user=world.users["amap_admin"], event=gathering, reason="Non")
    assert services.event_cancel(user=coordinator, event=gathering, reason="Grève des transports") == 0
