"""Delivery calendars: the dates of a contract's season, and why some of them have no delivery.

Pure functions of their arguments (`contract_calendar` reads the contract's exceptions and
academic calendar). Rules:
- weekly: every `weekday` from the first one on or after the season start;
- fortnightly: every other week from that first date (the rhythm keeps going through
  skipped dates: a holiday does not shift the following deliveries);
- monthly: the first `weekday` of each month (« le premier mardi du mois »), as AMAPs with
  monthly deliveries do; a skipped date is not moved to the following week;
- skipped: French public holidays (with Alsace-Moselle's and the overseas départements' own
  days, from the `holidays` package) unless the contract delivers on them, the contract's
  exceptions (farm closure, dates the AMAP took out) and, for student AMAPs, anything
  outside the university year or inside one of its breaks (holidays, exams).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import holidays
from django.utils.translation import gettext as _

WEEKLY = "weekly"
FORTNIGHTLY = "fortnightly"
MONTHLY = "monthly"
FREQUENCIES = (WEEKLY, FORTNIGHTLY, MONTHLY)

# Département → subdivision of `holidays.France`: Moselle and Alsace (Bas-Rhin, Haut-Rhin) keep
# Good Friday and 26 December; overseas départements have their own days (abolition of slavery…).
_HOLIDAY_SUBDIVISIONS = {
    "57": "57",
    "67": "6AE",
    "68": "6AE",
    "971": "971",
    "972": "972",
    "973": "973",
    "974": "974",
    "976": "976",
    "977": "BL",
    "978": "MF",
}


@dataclass(frozen=True)
class CalendarDay:
    """A date of the contract's rhythm: delivered, or skipped with the reason in French."""

    date: dt.date
    delivers: bool
    reason: str | None = None


@lru_cache(maxsize=256)
def _holiday_names(year: int, subdivision: str | None) -> tuple[tuple[dt.date, str], ...]:
    calendar = holidays.France(years=year, subdiv=subdivision, language="fr")
    return tuple(sorted(calendar.items()))


def public_holiday_names(*, years: Iterable[int], department_code: str | None = None) -> dict[dt.date, str]:
    """French public holidays of these years with their French names, for this département."""
    subdivision = _HOLIDAY_SUBDIVISIONS.get((department_code or "").strip().upper())
    names: dict[dt.date, str] = {}
    for year in sorted(set(years)):
        names.update(_holiday_names(int(year), subdivision))
    return names


def public_holidays(*, years: Iterable[int], department_code: str | None = None) -> set[dt.date]:
    """French public holidays of these years (Alsace-Moselle and overseas days included there)."""
    return set(public_holiday_names(years=years, department_code=department_code))


def _first_on_or_after(day: dt.date, weekday: int) -> dt.date:
    """The first date on or after `day` falling on ISO `weekday` (1 = Monday)."""
    return day + dt.timedelta(days=(weekday - day.isoweekday()) % 7)


def rhythm_dates(*, start: dt.date, end: dt.date, weekday: int, frequency: str) -> list[dt.date]:
    """Every date the rhythm gives between start and end (inclusive), before any exclusion."""
    if not 1 <= int(weekday) <= 7:
        raise ValueError(f"weekday must be 1 (Monday) to 7 (Sunday), not {weekday!r}")
    if frequency not in FREQUENCIES:
        raise ValueError(f"frequency must be one of {', '.join(FREQUENCIES)}, not {frequency!r}")
    if end < start:
        return []
    if frequency == MONTHLY:
        dates = []
        month = dt.date(start.year, start.month, 1)
        while month <= end:
            day = _first_on_or_after(month, weekday)
            if start <= day <= end:
                dates.append(day)
            month = dt.date(month.year + month.month // 12, month.month % 12 + 1, 1)
        return dates
    step = dt.timedelta(weeks=2 if frequency == FORTNIGHTLY else 1)
    day = _first_on_or_after(start, weekday)
    dates = []
    while day <= end:
        dates.append(day)
        day += step
    return dates


def _in_breaks(day: dt.date, breaks: Iterable[tuple[dt.date, dt.date]]) -> bool:
    return any(first <= day <= last for first, last in breaks)


def delivery_dates(
    *,
    start: dt.date,
    end: dt.date,
    weekday: int,
    frequency: str,
    exclude: set[dt.date] | frozenset[dt.date] = frozenset(),
    breaks: Iterable[tuple[dt.date, dt.date]] = (),
) -> list[dt.date]:
    """The delivery dates of a season: the rhythm minus excluded dates and break periods (inclusive)."""
    breaks = list(breaks)
    return [
        day
        for day in rhythm_dates(start=start, end=end, weekday=weekday, frequency=frequency)
        if day not in exclude and not _in_breaks(day, breaks)
    ]


def contract_calendar(contract) -> list[CalendarDay]:
    """Every date of the contract's rhythm, whether it delivers, and why not (in French).

    Reads `contract.exceptions` and `contract.academic_calendar` (with its breaks); the
    public holidays are those of the AMAP's département.
    """
    start, end = contract.season_start, contract.season_end
    dates = rhythm_dates(start=start, end=end, weekday=contract.weekday, frequency=contract.frequency)
    if not dates:
        return []

    holiday_names: dict[dt.date, str] = {}
    if contract.exclude_public_holidays:
        department = None
        amap = getattr(contract, "amap", None)
        if amap is not None and getattr(amap, "commune", None) is not None:
            department = amap.commune.department_id
        holiday_names = public_holiday_names(years=range(start.year, end.year + 1), department_code=department)

    exceptions: dict[dt.date, str] = {}
    if contract.pk is not None:
        for exception in contract.exceptions.all():
            label = exception.get_kind_display()
            exceptions[exception.date] = f"{label} : {exception.label}" if exception.label else str(label)

    academic = contract.academic_calendar if contract.academic_calendar_id else None
    breaks = list(academic.breaks.all()) if academic is not None else []

    days = []
    for day in dates:
        reason = None
        if day in exceptions:
            reason = exceptions[day]
        elif day in holiday_names:
            reason = _("jour férié : %(name)s") % {"name": holiday_names[day]}
        elif academic is not None and not (academic.starts_on <= day <= academic.ends_on):
            reason = _("hors de l'année universitaire")
        elif academic is not None:
            period = next((item for item in breaks if item.starts_on <= day <= item.ends_on), None)
            if period is not None:
                reason = _academic_break_reason(period)
        days.append(CalendarDay(date=day, delivers=reason is None, reason=reason))
    return days


def _academic_break_reason(period) -> str:
    if period.kind == "exams":
        reason = _("examens universitaires")
    elif period.kind == "holidays":
        reason = _("vacances universitaires")
    else:
        reason = _("pause universitaire")
    return f"{reason} : {period.label}" if period.label else reason


def contract_delivery_dates(contract) -> list[dt.date]:
    """The dates the contract delivers on, from its calendar."""
    return [day.date for day in contract_calendar(contract) if day.delivers]
