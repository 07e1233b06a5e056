"""Shifts and events as iCalendar (RFC 5545): in the member's own feed (through contracts.hooks),
and the public feeds of an AMAP and of a network (public events only).

UIDs are stable (`amap-atlas-shift-<id>`, `amap-atlas-event-<id>`), so calendar apps update
an event instead of duplicating it. A cancelled event stays in the feeds with STATUS:CANCELLED
(and « Annulé » and its reason in its text): a calendar that already holds it then marks it
cancelled, where one from which it merely vanished might keep it.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from django.conf import settings
from django.urls import reverse

from . import selectors
from .models import Event, Shift

PARIS = ZoneInfo("Europe/Paris")
UID_DOMAIN = "amap-atlas"
SHIFT_DEFAULT = (dt.time(18, 0), dt.time(20, 0))


def _shift_component(shift: Shift):
    from icalendar import Event as VEvent

    start, end = SHIFT_DEFAULT
    hours = getattr(shift, "hours", None)
    if hours:
        start, end = hours
    component = VEvent()
    component.add("uid", f"amap-atlas-shift-{shift.pk}@{UID_DOMAIN}")
    component.add("dtstamp", shift.updated_at)
    component.add("summary", f"Permanence AMAP : {shift.amap.name}")
    component.add("dtstart", dt.datetime.combine(shift.date, start, tzinfo=PARIS))
    component.add("dtend", dt.datetime.combine(shift.date, end, tzinfo=PARIS))
    if shift.amap.address:
        component.add("location", shift.amap.address)
    component.add("description", "Vous êtes de permanence à la distribution.")
    component.add("status", "CONFIRMED")
    return component


def _event_component(event: Event, *, url: str = ""):
    from icalendar import Event as VEvent

    component = VEvent()
    component.add("uid", f"amap-atlas-event-{event.pk}@{UID_DOMAIN}")
    component.add("dtstamp", event.updated_at)
    component.add("last-modified", event.updated_at)
    summary = f"{event.get_kind_display().capitalize()} : {event.title}"
    component.add("summary", f"Annulé : {summary}" if event.cancelled else summary)
    component.add("dtstart", event.starts_at.astimezone(PARIS))
    component.add("dtend", event.ends_at.astimezone(PARIS))
    component.add("location", event.place)
    organiser = event.amap.name if event.amap_id else event.network.name
    lines = [organiser]
    if event.cancelled:
        lines.append(f"Annulé. Motif : {event.cancel_reason}" if event.cancel_reason else "Annulé.")
    if event.description:
        lines.append(event.description)
    if url:
        lines.append(url)
        component.add("url", url)
    component.add("description", "\n".join(lines))
    component.add("status", "CANCELLED" if event.cancelled else "CONFIRMED")
    return component


def _shift_hours(shifts: list[Shift]) -> None:
    """Each shift's hours: the distribution hours of the AMAP's contracts delivering that day."""
    from contracts.models import Delivery

    if not shifts:
        return
    rows = Delivery.objects.filter(
        contract__amap_id__in={s.amap_id for s in shifts}, date__in={s.date for s in shifts}
    ).values_list("contract__amap_id", "date", "contract__delivery_start", "contract__delivery_end")
    hours: dict = {}
    for amap_id, day, start, end in rows:
        if start is None:
            continue
        end = (
            end if end is not None and end > start else (dt.datetime.combine(day, start) + dt.timedelta(hours=2)).time()
        )
        known = hours.get((amap_id, day))
        hours[(amap_id, day)] = (min(start, known[0]), max(end, known[1])) if known else (start, end)
    for shift in shifts:
        shift.hours = hours.get((shift.amap_id, shift.date))


def member_components(*, user) -> list:
    """The member's shifts and the events they said yes to (contracts.hooks feed source)."""
    shifts = list(selectors.shifts_of_member(user=user))
    _shift_hours(shifts)
    found = [_shift_component(shift) for shift in shifts]
    found += [
        _event_component(event, url=_absolute("events:event_detail", event.pk))
        for event in selectors.events_attended(user=user)
    ]
    return found


def _absolute(name: str, *args) -> str:
    return settings.SITE_URL.rstrip("/") + reverse(name, args=args)


def public_calendar(*, events, name: str) -> bytes:
    """A public feed: the given events (public ones only are passed in), with the Paris time zone."""
    from icalendar import Calendar

    calendar = Calendar()
    calendar.add("prodid", "-//AMAP Atlas//Evenements//FR")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", name)
    calendar.add("x-wr-timezone", "Europe/Paris")
    events = list(events)
    for event in events:
        calendar.add_component(_event_component(event, url=_absolute("events:event_detail", event.pk)))
    if events:
        dates = [e.starts_at.date() for e in events]
        calendar.add_missing_timezones(
            first_date=min(dates) - dt.timedelta(days=366), last_date=max(dates) + dt.timedelta(days=366)
        )
    return calendar.to_ical()


def sheet_context(*, delivery) -> dict:
    """Who is on duty at this delivery's distribution (contracts' distribution sheet)."""
    contract = delivery.contract
    distribution = selectors.distribution_of(amap_id=contract.amap_id, date=delivery.date)
    return {
        "shifts": distribution.shifts if distribution else [],
        "needed": distribution.needed if distribution else 0,
        "missing": distribution.missing if distribution else 0,
        "amap_id": contract.amap_id,
    }
