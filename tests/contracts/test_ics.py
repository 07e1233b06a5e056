"""contracts/ics.py: a member's deliveries as an iCalendar feed, and the feed's secret token."""

import datetime as dt
import re
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar

from contracts.ics import ics_token, member_calendar, user_from_ics_token
from contracts.models import Absence, Delivery, Subscription, SubscriptionItem
from tests.contracts.factories import (
    ContractFactory,
    ContractProductFactory,
    SubscriptionFactory,
    subscribe_same_every_time,
    weekly_deliveries,
)
from tests.factories import UserFactory

PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# --------------------------------------------------------------------------------------------
# Token


def test_token_round_trip_and_url_shape(db):
    user = UserFactory()
    token = ics_token(user)
    # The shape contracts/urls.py accepts in the feed's URL.
    assert re.fullmatch(r"[0-9]+\.[A-Za-z0-9_-]+", token)
    assert token.startswith(f"{user.pk}.")
    assert ics_token(user) == token  # stable: the URL in a calendar app keeps working
    assert user_from_ics_token(token) == user


def test_forged_or_revoked_tokens_give_no_one(db):
    user, other = UserFactory(), UserFactory()
    token = ics_token(user)
    signature = token.split(".", 1)[1]
    assert user_from_ics_token(f"{other.pk}.{signature}") is None  # someone else's id, my signature
    assert user_from_ics_token(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    for garbage in ("", ".", "abc", f"{user.pk}", f"{user.pk}.", "x.y", "99999999.abc", "1" * 40 + ".abc"):
        assert user_from_ics_token(garbage) is None, garbage
    user.set_password("un-nouveau-mot-de-passe")
    user.save()
    assert user_from_ics_token(token) is None  # changing one's password revokes old feed URLs
    assert user_from_ics_token(ics_token(user)) == user
    user.is_active = False
    user.save()
    assert user_from_ics_token(ics_token(user)) is None


# --------------------------------------------------------------------------------------------
# Feed


@pytest.fixture
def member_season(db):
    """A member on alternate weeks of an evening contract, and a pending one elsewhere."""
    contract = ContractFactory(
        title="Légumes 2027",
        delivery_start=dt.time(18, 0),
        delivery_end=dt.time(19, 30),
        delivery_place="Salle des fêtes, 12 rue du Marché, Bordeaux",
    )
    weekly_deliveries(contract)
    small = ContractProductFactory(contract=contract, name="Petit panier", unit_price=Decimal("12.50"), position=0)
    eggs = ContractProductFactory(contract=contract, name="6 œufs", unit_price=Decimal("2.40"), position=1)
    member = UserFactory()
    subscription = SubscriptionFactory(contract=contract, member=member, pattern=Subscription.Pattern.ALTERNATE)
    deliveries = list(contract.deliveries.order_by("date"))
    SubscriptionItem.objects.bulk_create(
        SubscriptionItem(subscription=subscription, delivery=d, product=p, quantity=q, unit_price=p.unit_price)
        for d in deliveries[::2]
        for p, q in ((small, 2), (eggs, 1))
    )
    other = ContractFactory(title="Pain 2027")
    weekly_deliveries(other)
    pending = SubscriptionFactory(contract=other, member=member, status=Subscription.Status.PENDING)
    subscribe_same_every_time(pending, {ContractProductFactory(contract=other): 1})
    return {"member": member, "contract": contract, "subscription": subscription, "deliveries": deliveries}


def _events(data: bytes):
    calendar = Calendar.from_ical(data)
    return calendar, [c for c in calendar.walk("VEVENT")]


def test_feed_has_one_event_per_delivery_of_signed_subscriptions(member_season):
    data = member_calendar(user=member_season["member"])
    calendar, events = _events(data)

    assert b"\r\n" in data and b"BEGIN:VCALENDAR" in data
    assert str(calendar["X-WR-CALNAME"]) == "Mes distributions AMAP"
    taken = member_season["deliveries"][::2]
    assert len(events) == len(taken) == 13  # alternate weeks of a 26-week season; nothing from the pending one
    uids = [str(e["UID"]) for e in events]
    assert len(set(uids)) == 13
    assert uids == [str(e["UID"]) for e in _events(member_calendar(user=member_season["member"]))[1]]

    first = events[0]
    # 18:00–19:30 in Paris; 6 April 2027 is summer time (UTC+2), so 16:00 UTC.
    start, end = first.decoded("DTSTART"), first.decoded("DTEND")
    assert start == dt.datetime(2027, 4, 6, 18, 0, tzinfo=PARIS)
    assert start.astimezone(dt.UTC).hour == 16
    assert end - start == dt.timedelta(minutes=90)
    assert first["DTSTART"].params["TZID"] == "Europe/Paris"
    assert [tz["TZID"] for tz in calendar.walk("VTIMEZONE")] == ["Europe/Paris"]
    assert str(first["LOCATION"]) == "Salle des fêtes, 12 rue du Marché, Bordeaux"
    assert str(first["SUMMARY"]) == "AMAP : Légumes 2027"
    assert "Vos produits : 2 × Petit panier, 1 × 6 œufs" in str(first["DESCRIPTION"])
    assert str(first["STATUS"]) == "CONFIRMED"


def test_cancelled_and_postponed_deliveries(member_season):
    taken = member_season["deliveries"][::2]
    cancelled, postponed = taken[1], taken[2]
    Delivery.objects.filter(pk=cancelled.pk).update(status=Delivery.Status.CANCELLED, note="grêle")
    new_date = postponed.date + dt.timedelta(days=2)
    Delivery.objects.filter(pk=postponed.pk).update(status=Delivery.Status.POSTPONED, date=new_date)
    Absence.objects.create(subscription=member_season["subscription"], delivery=taken[3], substitute_name="Jean Voisin")

    _calendar, events = _events(member_calendar(user=member_season["member"]))
    by_uid = {str(e["UID"]): e for e in events}
    assert len(events) == 13  # the cancelled one stays, marked as such

    uid = next(u for u in by_uid if f"-delivery-{cancelled.pk}-" in u)
    event = by_uid[uid]
    assert str(event["STATUS"]) == "CANCELLED"
    assert str(event["SUMMARY"]).startswith("Annulée")
    assert "grêle" in str(event["DESCRIPTION"])
    assert int(event["SEQUENCE"]) > 0

    event = next(e for u, e in by_uid.items() if f"-delivery-{postponed.pk}-" in u)
    assert event.decoded("DTSTART") == dt.datetime.combine(new_date, dt.time(18, 0), tzinfo=PARIS)
    assert str(event["STATUS"]) == "CONFIRMED"
    assert "prévue initialement le mardi 4 mai 2027" in str(event["DESCRIPTION"])
    assert int(event["SEQUENCE"]) > 0

    event = next(e for u, e in by_uid.items() if f"-delivery-{taken[3].pk}-" in u)
    assert "Vous avez signalé votre absence — remplacé·e par Jean Voisin" in str(event["DESCRIPTION"])


def test_all_day_events_without_delivery_hours(db):
    contract = ContractFactory(delivery_start=None, delivery_end=None, delivery_place="")
    weekly_deliveries(contract)
    member = UserFactory()
    subscription = SubscriptionFactory(contract=contract, member=member)
    subscribe_same_every_time(subscription, {ContractProductFactory(contract=contract): 1})

    _calendar, events = _events(member_calendar(user=member))

    assert len(events) == 26
    assert events[0].decoded("DTSTART") == dt.date(2027, 4, 6)
    assert events[0].decoded("DTEND") == dt.date(2027, 4, 7)
    assert events[0]["DTSTART"].params.get("VALUE") == "DATE"
    # No delivery place on the contract: the AMAP's name (and address) instead.
    assert contract.amap.name in str(events[0]["LOCATION"])
    assert "Bordeaux" in str(events[0]["LOCATION"])  # the AMAP's commune


def test_a_start_without_an_end_lasts_two_hours(db):
    contract = ContractFactory(delivery_start=dt.time(17, 30), delivery_end=None)
    weekly_deliveries(contract)
    member = UserFactory()
    subscription = SubscriptionFactory(contract=contract, member=member)
    subscribe_same_every_time(subscription, {ContractProductFactory(contract=contract): 1})
    _calendar, events = _events(member_calendar(user=member))
    assert events[0].decoded("DTEND") - events[0].decoded("DTSTART") == dt.timedelta(hours=2)


def test_a_member_without_signed_subscriptions_gets_an_empty_calendar(db):
    _calendar, events = _events(member_calendar(user=UserFactory()))
    assert events == []
