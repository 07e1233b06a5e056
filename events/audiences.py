"""« Les permanents de la semaine »: an audience for members' messages (members/audiences.py),
registered in `EventsConfig.ready()`. Its parameter is the Monday of a week (ISO date)."""

from __future__ import annotations

import datetime as dt

from django.utils import formats, timezone, translation
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from members.audiences import Audience, Recipient, register_audience
from members.models import Membership

from . import selectors
from .models import Shift

WEEKS_OFFERED = 8  # this week and the next distribution weeks


def _monday(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def week_choices(*, amap) -> list[tuple[str, str]]:
    """The weeks from this one on that hold a distribution of the AMAP (at most `WEEKS_OFFERED`)."""
    today = timezone.localdate()
    start = _monday(today)
    weeks: list[dt.date] = []
    for row in selectors.distributions(amap_id=amap.pk, start=start, end=start + dt.timedelta(weeks=26)):
        monday = _monday(row.date)
        if monday not in weeks:
            weeks.append(monday)
        if len(weeks) == WEEKS_OFFERED:
            break
    with translation.override("fr"):
        return [
            (monday.isoformat(), gettext("semaine du %(date)s") % {"date": formats.date_format(monday, "j F Y")})
            for monday in weeks
        ]


def week_volunteers(*, amap, param: str = "") -> list[Recipient]:
    """The members on duty at the AMAP's distributions of the week starting on `param` (a Monday)."""
    try:
        monday = _monday(dt.date.fromisoformat(str(param)))
    except ValueError:
        return []
    shifts = (
        Shift.objects.filter(amap_id=amap.pk, date__range=(monday, monday + dt.timedelta(days=6)))
        .select_related("member")
        .order_by("date", "pk")
    )
    memberships = dict(Membership.objects.filter(amap_id=amap.pk, user__isnull=False).values_list("user_id", "pk"))
    found: dict[int, Recipient] = {}
    for shift in shifts:
        member = shift.member
        if member.is_active and member.email and member.pk not in found:
            found[member.pk] = Recipient(member.email, member.display_name, member.pk, memberships.get(member.pk))
    return list(found.values())


def register() -> None:
    # About the running of a distribution: a service message, sent even to those who opted out of news.
    register_audience(
        Audience("volunteers", _("les permanents de la semaine"), week_volunteers, service=True, choices=week_choices)
    )
