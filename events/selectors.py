"""Reads on shifts and events: who belongs to an AMAP, its distributions with the members on
duty, who served least, which events a person may see.

« Members of an AMAP », for this app: the people holding a subscription to one of its
contracts (waiting list and cancelled ones apart) plus its team (`directory.AmapManager`).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db.models import Count, IntegerField, Max, Min, Q, QuerySet, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts import permissions
from contracts.models import Contract, Delivery, Subscription
from directory.models import Amap, AmapManager
from directory.selectors.network import is_coordinator
from members.models import Membership

from .models import DEFAULT_NEEDED, Event, Rsvp, Shift, ShiftQuota

RUNNING = (Contract.Status.OPEN, Contract.Status.CLOSED)


def _authenticated(user) -> bool:
    return bool(user is not None and getattr(user, "is_authenticated", False) and user.is_active)


# --------------------------------------------------------------------------------------------
# Who belongs to an AMAP


def amap_member_ids(*, amap_id: int) -> QuerySet:
    """User ids of the AMAP's members (its active memberships, subscribers holding a share, its
    team), as a subquery."""
    subscribers = Subscription.objects.filter(
        contract__amap_id=amap_id, status__in=Subscription.HOLDING_STATUSES, member__isnull=False
    ).values("member_id")
    team = AmapManager.objects.filter(amap_id=amap_id).values("user_id")
    members = Membership.objects.filter(amap_id=amap_id, user__isnull=False).active().values("user_id")
    return (
        get_user_model()
        .objects.filter(Q(pk__in=subscribers) | Q(pk__in=team) | Q(pk__in=members), is_active=True)
        .values("pk")
    )


def is_amap_member(*, user, amap: Amap) -> bool:
    if not _authenticated(user):
        return False
    return (
        Subscription.objects.filter(
            contract__amap_id=amap.pk, status__in=Subscription.HOLDING_STATUSES, member_id=user.pk
        ).exists()
        or AmapManager.objects.filter(amap_id=amap.pk, user_id=user.pk).exists()
        or Membership.objects.filter(amap_id=amap.pk, user_id=user.pk).active().exists()
    )


def amaps_of_member(*, user) -> QuerySet[Amap]:
    """The AMAPs this person belongs to (as in `is_amap_member`), by name."""
    if not _authenticated(user):
        return Amap.objects.none()
    subscribed = Subscription.objects.filter(member_id=user.pk, status__in=Subscription.HOLDING_STATUSES).values(
        "contract__amap_id"
    )
    team = AmapManager.objects.filter(user_id=user.pk).values("amap_id")
    members = Membership.objects.filter(user_id=user.pk).active().values("amap_id")
    return (
        Amap.objects.filter(Q(pk__in=subscribed) | Q(pk__in=team) | Q(pk__in=members))
        .only("pk", "name")
        .order_by("name", "pk")
    )


def can_see_amap_private(*, user, amap: Amap) -> bool:
    """Shifts and members-only events: the AMAP's members and team, and staff."""
    return permissions.is_platform_staff(user) or is_amap_member(user=user, amap=amap)


def can_run_amap_events(*, user, amap: Amap) -> bool:
    """Shift needs, reminders to volunteers, AMAP events: its admins and référents (and staff)."""
    return permissions.can_act_for_amap(user, amap)


def can_run_network_events(*, user, network) -> bool:
    """A network's events: its coordinators (and staff)."""
    return is_coordinator(user, network)


# --------------------------------------------------------------------------------------------
# Distributions and the members on duty


@dataclass
class Distribution:
    date: dt.date
    needed: int
    shifts: list = field(default_factory=list)

    @property
    def missing(self) -> int:
        return max(self.needed - len(self.shifts), 0)

    @property
    def member_ids(self) -> set[int]:
        return {shift.member_id for shift in self.shifts}


def amap_needed_default(*, amap_id: int) -> int:
    quota = ShiftQuota.objects.filter(amap_id=amap_id, contract__isnull=True).values_list("needed", flat=True).first()
    return DEFAULT_NEEDED if quota is None else quota


def season_bounds(*, amap_id: int, today: dt.date | None = None) -> tuple[dt.date, dt.date]:
    """The season: from the earliest start to the latest end of the AMAP's running contracts that
    cover today, else of those still to come (members sign up ahead), else the year around today."""
    today = today or timezone.localdate()
    running = Contract.objects.filter(amap_id=amap_id, status__in=RUNNING, season_end__gte=today)
    bounds = running.filter(season_start__lte=today).aggregate(start=Min("season_start"), end=Max("season_end"))
    if bounds["start"] is None:
        bounds = running.aggregate(start=Min("season_start"), end=Max("season_end"))
    if bounds["start"] is None:
        return today - dt.timedelta(days=182), today + dt.timedelta(days=182)
    return bounds["start"], bounds["end"]


def distributions(*, amap_id: int, start: dt.date, end: dt.date) -> list[Distribution]:
    """The AMAP's distribution dates in [start, end] (cancelled deliveries and draft or archived
    contracts apart) with how many members each needs and who is on duty.

    Three queries whatever the number of members and dates: the default need, the dates with
    their largest contract need, the shifts with their members.
    """
    default = amap_needed_default(amap_id=amap_id)
    rows = (
        Delivery.objects.filter(contract__amap_id=amap_id, contract__status__in=RUNNING, date__range=(start, end))
        .exclude(status=Delivery.Status.CANCELLED)
        .values("date")
        .annotate(needed=Max(Coalesce("contract__shift_quota__needed", Value(default), output_field=IntegerField())))
        .order_by("date")
    )
    found = {row["date"]: Distribution(date=row["date"], needed=row["needed"]) for row in rows}
    shifts = (
        Shift.objects.filter(amap_id=amap_id, date__in=list(found))
        .select_related("member")
        .only("pk", "date", "offered_at", "member_id", "member__display_name", "member__email", "amap_id")
        .order_by("date", "created_at", "pk")
    )
    for shift in shifts:
        found[shift.date].shifts.append(shift)
    return list(found.values())


def distribution_of(*, amap_id: int, date: dt.date) -> Distribution | None:
    found = distributions(amap_id=amap_id, start=date, end=date)
    return found[0] if found else None


def shifts_on(*, amap_id: int, date: dt.date) -> QuerySet[Shift]:
    return Shift.objects.filter(amap_id=amap_id, date=date).select_related("member").order_by("created_at", "pk")


def least_served_members(*, amap_id: int, date: dt.date, limit: int, today: dt.date | None = None):
    """The AMAP's members with the fewest shifts this season, not already on duty on `date`
    (ties by name): whom to ask first."""
    start, end = season_bounds(amap_id=amap_id, today=today)
    on_duty = Shift.objects.filter(amap_id=amap_id, date=date).values("member_id")
    return (
        get_user_model()
        .objects.filter(pk__in=amap_member_ids(amap_id=amap_id))
        .exclude(pk__in=on_duty)
        .exclude(email="")
        .annotate(
            served=Count("shifts", filter=Q(shifts__amap_id=amap_id, shifts__date__range=(start, end)), distinct=True)
        )
        .order_by("served", "display_name", "pk")[: max(limit, 0)]
    )


def shifts_of_member(*, user) -> QuerySet[Shift]:
    if not _authenticated(user):
        return Shift.objects.none()
    return Shift.objects.filter(member_id=user.pk).select_related("amap").order_by("date", "pk")


def shift_counts(*, amap_id: int, start: dt.date, end: dt.date) -> dict[int, int]:
    rows = (
        Shift.objects.filter(amap_id=amap_id, date__range=(start, end))
        .values("member_id")
        .annotate(n=Count("pk"))
        .values_list("member_id", "n")
    )
    return defaultdict(int, rows)


# --------------------------------------------------------------------------------------------
# Events


def can_see_event(*, user, event: Event) -> bool:
    if event.is_public:
        return True
    if not _authenticated(user):
        return False
    if event.amap_id:
        return can_see_amap_private(user=user, amap=event.amap) or can_run_amap_events(user=user, amap=event.amap)
    network = event.network
    if can_run_network_events(user=user, network=network):
        return True
    # A network's own gatherings: the teams of its AMAPs.
    return AmapManager.objects.filter(user_id=user.pk, amap__networks=network).exists()


def can_answer_event(*, user, event: Event) -> bool:
    return _authenticated(user) and not event.cancelled and can_see_event(user=user, event=event)


def can_organise_event(*, user, event: Event) -> bool:
    """Edit or cancel an event: those who may create it (the AMAP's team, the network's coordinators)."""
    if event.amap_id:
        return can_run_amap_events(user=user, amap=event.amap)
    return can_run_network_events(user=user, network=event.network)


def event_registered_emails(*, event: Event) -> list[str]:
    """The addresses of those who said yes or wait for a place: whom a change or a cancellation concerns."""
    return list(
        Rsvp.objects.filter(event=event, answer__in=(Rsvp.Answer.YES, Rsvp.Answer.WAITING), person__is_active=True)
        .exclude(person__email="")
        .order_by("person__email")
        .values_list("person__email", flat=True)
    )


def amap_events(*, amap: Amap, user, start: dt.datetime | None = None) -> QuerySet[Event]:
    """The AMAP's events and those of its networks this person may see, from `start` on."""
    events = Event.objects.filter(Q(amap=amap) | Q(network__in=amap.networks.values("pk")))
    if start is not None:
        events = events.filter(ends_at__gte=start)
    if not can_see_amap_private(user=user, amap=amap):
        events = events.filter(is_public=True)
    return events.select_related("amap", "network").order_by("starts_at", "pk")


def rsvp_counts(*, events) -> dict[int, dict[str, int]]:
    counts: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for event_id, answer, n in (
        Rsvp.objects.filter(event__in=events)
        .values("event_id", "answer")
        .annotate(n=Count("pk"))
        .values_list("event_id", "answer", "n")
    ):
        counts[event_id][answer] = n
    return counts


def events_attended(*, user) -> QuerySet[Event]:
    """Events the person said yes to (cancelled ones included: a calendar shows them cancelled)."""
    if not _authenticated(user):
        return Event.objects.none()
    return Event.objects.filter(rsvps__person_id=user.pk, rsvps__answer=Rsvp.Answer.YES).select_related(
        "amap", "network"
    )
