"""« Les permanents de la semaine »: events' audience for the team's messages (members/audiences.py)."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail
from django.test import Client
from django.urls import reverse

from events.models import Shift
from members import services as members_services
from members.models import Membership, Message, MessageDelivery
from tests.contracts.roles import contract_world
from tests.factories import AmapFactory, UserFactory
from tests.test_jobs import run_worker

pytestmark = pytest.mark.django_db
PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture
def queued_mail(settings):
    settings.EMAIL_BACKEND = "accounts.mail.QueuedEmailBackend"
    settings.EMAIL_DELIVERY_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


def test_the_weeks_volunteers_each_receive_the_message_once_from_the_worker(queued_mail):
    world = contract_world()
    amap, admin = world.amap, world.users["amap_admin"]
    member, other = world.users["member"], world.users["other_member"]
    tuesday = world.deliveries[2].date  # 20 April 2027
    monday = tuesday - dt.timedelta(days=tuesday.weekday())
    Shift.objects.create(amap=amap, date=tuesday, member=member)
    Shift.objects.create(amap=amap, date=tuesday + dt.timedelta(days=2), member=member)  # twice this week: one copy
    Shift.objects.create(amap=amap, date=tuesday, member=other)
    # A volunteer who opted out of news still gets this service message.
    Membership.objects.create(amap=amap, user=other, email=other.email, status="active", news_opt_out=True)
    # Not this week, or not this AMAP: left out.
    Shift.objects.create(amap=amap, date=tuesday + dt.timedelta(days=7), member=world.users["referent"])
    Shift.objects.create(amap=AmapFactory(), date=tuesday, member=UserFactory(email="ailleurs@example.org"))

    client = Client()
    with time_machine.travel(dt.datetime(2027, 4, 14, 10, tzinfo=PARIS)):
        client.force_login(admin)  # a session opened in April 2027
        form = client.get(reverse("members:message_create", args=[amap.pk])).content.decode()
        assert "les permanents de la semaine" in form and "semaine du 19 avril 2027" in form
        response = client.post(
            reverse("members:message_create", args=[amap.pk]),
            {
                "audience": "volunteers",
                "param": monday.isoformat(),
                "kind": "news",
                "subject": "Distribution de mardi",
                "body": "Les clés sont chez Rose.",
            },
        )
    assert response.status_code == 302
    message = Message.objects.get()
    assert message.kind == Message.Kind.SERVICE
    assert message.audience_label == "les permanents de la semaine : semaine du 19 avril 2027"
    assert mail.outbox == []  # nothing leaves inside the request

    run_worker("members", "emails")
    assert sorted(m.to[0] for m in mail.outbox) == sorted([member.email, other.email])
    assert all("Les clés sont chez Rose." in m.body for m in mail.outbox)

    # A retry of the job sends nobody a second copy.
    members_services.message_fan_out(message_id=message.pk)
    run_worker("emails")
    assert len(mail.outbox) == 2 and MessageDelivery.objects.filter(message=message).count() == 2


def test_a_week_without_distribution_is_refused(queued_mail):
    world = contract_world()
    with time_machine.travel(dt.datetime(2027, 4, 14, 10, tzinfo=PARIS)), pytest.raises(Exception, match="parmi"):
        members_services.message_create(
            actor=world.users["amap_admin"],
            amap=world.amap,
            audience_key="volunteers",
            param="2027-12-27",
            subject="?",
            body="?",
        )
    assert not Message.objects.exists()
