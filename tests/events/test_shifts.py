"""Distribution shifts, events and the signature states a member and a farmer see (issue 15).

The season of `contract_world` runs on Tuesdays from April to September 2027 in Bordeaux.
"""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from contracts.ics import ics_token
from contracts.models import Subscription
from events import services
from events.models import Event, Rsvp, Shift, ShiftQuota
from events.tasks import remind_shifts
from tests.contracts.factories import SubscriptionFactory
from tests.contracts.roles import contract_world
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture
def world():
    return contract_world()


def test_a_member_signs_up_gets_one_reminder_and_sees_shift_and_tentative_deliveries_in_the_feed(
    client, world, django_capture_on_commit_callbacks
):
    member = world.users["member"]
    # Signed by the member, not yet countersigned by the farmer.
    Subscription.objects.filter(pk=world.subscription.pk).update(status=Subscription.Status.MEMBER_SIGNED)
    client.force_login(member)

    page = client.get(reverse("contracts:my_deliveries")).content.decode()
    assert "en attente de contre-signature" in page and "Aucune livraison" not in page

    day = world.deliveries[4].date
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("events:shift_signup", args=[world.amap.pk]), {"date": day.isoformat()})
    assert response.status_code == 302
    assert Shift.objects.filter(amap=world.amap, date=day, member=member).exists()

    # The periodic job, two days before at 09:00 in Paris: one reminder, and only once.
    with time_machine.travel(dt.datetime.combine(day - dt.timedelta(days=2), dt.time(9), tzinfo=PARIS), tick=False):
        with django_capture_on_commit_callbacks(execute=True):
            remind_shifts(timestamp=0)
        with django_capture_on_commit_callbacks(execute=True):
            remind_shifts(timestamp=0)
    reminders = [m for m in mail.outbox if m.subject.startswith("Rappel : permanence")]
    assert len(reminders) == 1 and reminders[0].to == [member.email]
    assert world.amap.name in reminders[0].body

    feed = client.get(reverse("contracts:ics_feed", args=[ics_token(member)])).content.decode()
    assert f"amap-atlas-shift-{Shift.objects.get(member=member).pk}@amap-atlas" in feed
    assert "STATUS:TENTATIVE" in feed and "en attente de contre-signature" in feed


def test_the_farmer_sees_a_count_to_countersign_and_is_emailed(client, world, django_capture_on_commit_callbacks):
    from contracts.signing import _tell_farmers_a_countersignature_waits

    Subscription.objects.filter(pk=world.subscription.pk).update(status=Subscription.Status.MEMBER_SIGNED)
    farmer = world.users["farmer"]
    client.force_login(farmer)
    dashboard = client.get(reverse("accounts:dashboard")).content.decode()
    assert "À contresigner" in dashboard and '<span class="count">1</span>' in dashboard
    page = client.get(reverse("contracts:countersign_list")).content.decode()
    assert world.subscription.member_name in page and 'id="countersign-count">1<' in page

    with django_capture_on_commit_callbacks(execute=True):
        _tell_farmers_a_countersignature_waits(Subscription.objects.get(pk=world.subscription.pk))
    assert [m.to for m in mail.outbox] == [[farmer.email]]
    assert "À contresigner" in mail.outbox[0].subject


def test_a_referent_opens_mon_amap_the_team_and_the_summaries(client, world):
    client.force_login(world.users["other_referent"])  # référent of another contract of the AMAP
    for url in (
        reverse("accounts:amap_edit", args=[world.amap.pk]),
        reverse("accounts:amap_team", args=[world.amap.pk]),
        reverse("contracts:amap_summary", args=[world.amap.pk]),
    ):
        assert client.get(url).status_code == 200, url


def test_a_shift_offered_for_a_swap_is_taken_by_another_member(world, django_capture_on_commit_callbacks):
    member, other = world.users["member"], world.users["other_member"]
    day = world.deliveries[3].date
    shift = services.shift_signup(user=member, amap=world.amap, date=day)
    services.shift_offer(user=member, shift=shift)
    with django_capture_on_commit_callbacks(execute=True):
        services.shift_take(user=other, shift=shift)
    shift.refresh_from_db()
    assert shift.member == other and shift.offered_at is None
    assert mail.outbox[0].to == [member.email]


def test_a_full_distribution_refuses_more_and_the_need_follows_the_contract(world):
    ShiftQuota.objects.create(amap=world.amap, needed=1)
    day = world.deliveries[2].date
    services.shift_signup(user=world.users["member"], amap=world.amap, date=day)
    with pytest.raises(Exception, match="assez de monde"):
        services.shift_signup(user=world.users["other_member"], amap=world.amap, date=day)
    ShiftQuota.objects.create(amap=world.amap, contract=world.contract, needed=2)
    services.shift_signup(user=world.users["other_member"], amap=world.amap, date=day)
    assert Shift.objects.filter(date=day).count() == 2


def test_the_team_asks_those_who_served_least(world, django_capture_on_commit_callbacks):
    member, other = world.users["member"], world.users["other_member"]
    for delivery in world.deliveries[1:4]:
        Shift.objects.create(amap=world.amap, date=delivery.date, member=member)  # member served thrice
    day = world.deliveries[6].date
    Shift.objects.create(amap=world.amap, date=day, member=world.users["amap_admin"])
    with (
        time_machine.travel(dt.datetime(2027, 5, 3, 10, tzinfo=PARIS), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        asked = services.shift_ask_least_served(user=world.users["referent"], amap=world.amap, date=day)
    # Two needed, one on duty: one person asked, among those with no shift (not the busy member).
    assert asked == 1 and len(mail.outbox) == 1
    assert mail.outbox[0].to != [member.email]
    assert mail.outbox[0].to[0] in {other.email, world.users["referent"].email, world.users["other_referent"].email}


def test_rsvp_waits_when_full_and_a_freed_place_goes_to_the_first_waiting(world, django_capture_on_commit_callbacks):
    start = timezone.make_aware(dt.datetime(2027, 6, 12, 10))
    event = Event.objects.create(
        amap=world.amap,
        title="Visite",
        kind="farm_visit",
        place="Ferme",
        starts_at=start,
        ends_at=start + dt.timedelta(hours=3),
        capacity=1,
    )
    first, second = world.users["member"], world.users["other_member"]
    assert services.event_answer(user=first, event=event, answer="yes").answer == Rsvp.Answer.YES
    assert services.event_answer(user=second, event=event, answer="yes").answer == Rsvp.Answer.WAITING
    with django_capture_on_commit_callbacks(execute=True):
        services.event_answer(user=first, event=event, answer="no")
    assert Rsvp.objects.get(event=event, person=second).answer == Rsvp.Answer.YES
    assert mail.outbox[0].to == [second.email]


def test_public_feeds_carry_public_events_only(client, world):
    start = timezone.make_aware(dt.datetime(2027, 6, 12, 10))
    common = {"amap": world.amap, "place": "Salle", "starts_at": start, "ends_at": start + dt.timedelta(hours=2)}
    public = Event.objects.create(title="Fête des récoltes", is_public=True, **common)
    private = Event.objects.create(title="Assemblée générale", **common)
    feed = client.get(reverse("events:amap_ics", args=[world.amap.pk])).content.decode()
    assert f"amap-atlas-event-{public.pk}@" in feed and f"amap-atlas-event-{private.pk}@" not in feed


def test_the_distribution_sheet_shows_who_is_on_duty(client, world):
    day = world.deliveries[0]
    Shift.objects.create(amap=world.amap, date=day.date, member=world.users["member"])
    client.force_login(world.users["farmer"])
    page = client.get(reverse("contracts:delivery_sheet", args=[day.pk])).content.decode()
    assert 'id="on-duty"' in page and world.users["member"].display_name in page


def _members(world, n: int) -> None:
    people = UserFactory.create_batch(n)
    for person in people:
        SubscriptionFactory(contract=world.contract, member=person)
    Shift.objects.bulk_create(
        Shift(amap=world.amap, date=d.date, member=people[i % n]) for i, d in enumerate(world.deliveries)
    )


@pytest.mark.parametrize("extra_members", [30, 300])
def test_the_shift_page_costs_the_same_queries_for_30_or_300_members(
    client, world, extra_members, django_assert_max_num_queries
):
    _members(world, extra_members)
    with time_machine.travel(dt.datetime(2027, 4, 1, 10, tzinfo=PARIS), tick=False):
        client.force_login(world.users["amap_admin"])  # inside the travel: the session stays fresh
        # The same bound at 30 and at 300 members: the page's queries do not grow with them.
        with django_assert_max_num_queries(20):
            response = client.get(reverse("events:shift_list", args=[world.amap.pk]))
    assert response.status_code == 200
    assert response.content.decode().count('class="card shift') == len(world.deliveries)
