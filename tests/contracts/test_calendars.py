"""Delivery calendars: public holidays (mainland, Alsace-Moselle, overseas), frequencies,
exceptions and academic years, with the reasons shown to people in French."""

import datetime as dt

import pytest

from contracts.calendars import (
    CalendarDay,
    contract_calendar,
    delivery_dates,
    public_holiday_names,
    public_holidays,
    rhythm_dates,
)
from contracts.models import AcademicBreak, AcademicCalendar, CalendarException, Contract
from tests.contracts.factories import ContractFactory
from tests.factories import AmapFactory, commune

MONDAY, TUESDAY, WEDNESDAY, THURSDAY, FRIDAY = 1, 2, 3, 4, 5


def every(weekday: int, start: dt.date, end: dt.date, step_days: int = 7) -> list[dt.date]:
    """Reference rhythm computed the plain way, independently of the code under test."""
    day = start
    while day.isoweekday() != weekday:
        day += dt.timedelta(days=1)
    out = []
    while day <= end:
        out.append(day)
        day += dt.timedelta(days=step_days)
    return out


# Dates from the French calendar (Easter-based ones from the Gregorian computus).
MAINLAND_CASES = [
    # (weekday, year, {date: holiday name})
    (
        MONDAY,
        2025,
        {
            dt.date(2025, 4, 21): "Lundi de Pâques",
            dt.date(2025, 6, 9): "Lundi de Pentecôte",
            dt.date(2025, 7, 14): "Fête nationale",
        },
    ),
    (THURSDAY, 2027, {dt.date(2027, 5, 6): "Ascension", dt.date(2027, 11, 11): "Armistice"}),
    (THURSDAY, 2030, {dt.date(2030, 5, 30): "Ascension", dt.date(2030, 8, 15): "Assomption"}),
    (
        MONDAY,
        2033,
        {
            dt.date(2033, 4, 18): "Lundi de Pâques",
            dt.date(2033, 6, 6): "Lundi de Pentecôte",
            dt.date(2033, 8, 15): "Assomption",
        },
    ),
    (THURSDAY, 2033, {dt.date(2033, 5, 26): "Ascension", dt.date(2033, 7, 14): "Fête nationale"}),
]


@pytest.mark.parametrize(("weekday", "year", "expected"), MAINLAND_CASES)
def test_weekly_contract_skips_the_public_holidays_on_its_weekday(weekday, year, expected):
    start, end = dt.date(year, 3, 1), dt.date(year, 11, 30)
    names = public_holiday_names(years=[year], department_code="33")
    dates = delivery_dates(
        start=start, end=end, weekday=weekday, frequency="weekly", exclude=public_holidays(years=[year])
    )
    for day, name in expected.items():
        assert names[day] == name
        assert day not in dates
    # Every other date of the weekday is delivered, nothing else.
    on_weekday = [day for day in names if day.isoweekday() == weekday and start <= day <= end]
    assert sorted(on_weekday) == sorted(expected)
    assert dates == [day for day in every(weekday, start, end) if day not in expected]


def test_alsace_moselle_keeps_good_friday_and_saint_etienne():
    # A Friday contract over the 2025-2026 season: 26 December 2025 and Good Friday (3 April 2026).
    start, end = dt.date(2025, 9, 5), dt.date(2026, 6, 26)
    good_friday, saint_etienne = dt.date(2026, 4, 3), dt.date(2025, 12, 26)
    years = [2025, 2026]
    for department in ("57", "67", "68"):
        local = public_holiday_names(years=years, department_code=department)
        assert local[good_friday] == "Vendredi saint"
        assert local[saint_etienne] == "Saint-Étienne"
        dates = delivery_dates(start=start, end=end, weekday=FRIDAY, frequency="weekly", exclude=set(local))
        assert good_friday not in dates and saint_etienne not in dates
    for department in ("33", "75", "2A", None):
        elsewhere = public_holidays(years=years, department_code=department)
        assert good_friday not in elsewhere and saint_etienne not in elsewhere
        dates = delivery_dates(start=start, end=end, weekday=FRIDAY, frequency="weekly", exclude=elsewhere)
        assert good_friday in dates and saint_etienne in dates
    # Christmas is a holiday everywhere.
    assert dt.date(2025, 12, 25) in public_holidays(years=years, department_code="67")


def test_overseas_departements_have_their_own_days():
    # Abolition of slavery: 20 December in La Réunion, 27 May in Guadeloupe (law of 30 June 1983).
    reunion = public_holiday_names(years=[2027], department_code="974")
    guadeloupe = public_holiday_names(years=[2027], department_code="971")
    mainland = public_holidays(years=[2027], department_code="33")
    assert reunion[dt.date(2027, 12, 20)] == "Abolition de l'esclavage"
    assert guadeloupe[dt.date(2027, 5, 27)] == "Abolition de l'esclavage"
    assert dt.date(2027, 12, 20) not in mainland and dt.date(2027, 5, 27) not in mainland


def test_fortnightly_keeps_its_rhythm_through_a_skipped_holiday():
    start, end = dt.date(2027, 3, 1), dt.date(2027, 7, 31)
    weekly = rhythm_dates(start=start, end=end, weekday=MONDAY, frequency="weekly")
    fortnightly = rhythm_dates(start=start, end=end, weekday=MONDAY, frequency="fortnightly")
    assert fortnightly == weekly[::2] == every(MONDAY, start, end, step_days=14)
    assert len(fortnightly) == (len(weekly) + 1) // 2
    holidays_2027 = public_holidays(years=[2027])
    dates = delivery_dates(start=start, end=end, weekday=MONDAY, frequency="fortnightly", exclude=holidays_2027)
    # Easter Monday (29 March) falls on the rhythm and is dropped; the next date stays two weeks later.
    assert dt.date(2027, 3, 29) in fortnightly and dt.date(2027, 3, 29) not in dates
    assert dt.date(2027, 4, 12) in dates
    assert dates == [day for day in fortnightly if day not in holidays_2027]
    assert all((later - earlier).days % 14 == 0 for earlier, later in zip(dates, dates[1:], strict=False))


def test_monthly_is_the_first_weekday_of_each_month():
    dates = rhythm_dates(start=dt.date(2027, 4, 1), end=dt.date(2027, 9, 30), weekday=TUESDAY, frequency="monthly")
    assert len(dates) == 6  # April to September
    assert [day.month for day in dates] == [4, 5, 6, 7, 8, 9]
    assert all(day.isoweekday() == TUESDAY and day.day <= 7 for day in dates)
    # A season starting after the month's first Tuesday begins the following month.
    later = rhythm_dates(start=dt.date(2027, 4, 7), end=dt.date(2027, 9, 30), weekday=TUESDAY, frequency="monthly")
    assert later == dates[1:]
    # Over a year boundary.
    winter = rhythm_dates(start=dt.date(2027, 11, 1), end=dt.date(2028, 2, 29), weekday=FRIDAY, frequency="monthly")
    assert [(day.year, day.month) for day in winter] == [(2027, 11), (2027, 12), (2028, 1), (2028, 2)]


def test_exclusions_and_breaks_are_inclusive():
    start, end = dt.date(2027, 4, 6), dt.date(2027, 6, 29)
    all_tuesdays = every(TUESDAY, start, end)
    dates = delivery_dates(
        start=start,
        end=end,
        weekday=TUESDAY,
        frequency="weekly",
        exclude={dt.date(2027, 4, 13)},
        breaks=[(dt.date(2027, 5, 4), dt.date(2027, 5, 11))],
    )
    assert dates == [
        day for day in all_tuesdays if day not in {dt.date(2027, 4, 13), dt.date(2027, 5, 4), dt.date(2027, 5, 11)}
    ]


def test_bad_rhythm_is_refused():
    with pytest.raises(ValueError, match="weekday"):
        rhythm_dates(start=dt.date(2027, 1, 1), end=dt.date(2027, 2, 1), weekday=8, frequency="weekly")
    with pytest.raises(ValueError, match="frequency"):
        rhythm_dates(start=dt.date(2027, 1, 1), end=dt.date(2027, 2, 1), weekday=1, frequency="daily")
    assert rhythm_dates(start=dt.date(2027, 2, 1), end=dt.date(2027, 1, 1), weekday=1, frequency="weekly") == []


# --------------------------------------------------------------------------------------------
# A contract's calendar, with the reasons pages show


@pytest.mark.django_db
def test_contract_calendar_explains_each_skipped_date():
    contract = ContractFactory(
        season_start=dt.date(2027, 3, 1),
        season_end=dt.date(2027, 6, 30),
        weekday=MONDAY,
        frequency=Contract.Frequency.WEEKLY,
    )
    CalendarException.objects.create(
        contract=contract, date=dt.date(2027, 4, 19), kind=CalendarException.Kind.FARM_CLOSURE, label="congés"
    )
    CalendarException.objects.create(contract=contract, date=dt.date(2027, 6, 21), kind=CalendarException.Kind.CHOSEN)
    days = contract_calendar(contract)
    assert [day.date for day in days] == every(MONDAY, contract.season_start, contract.season_end)
    skipped = {day.date: day.reason for day in days if not day.delivers}
    assert skipped == {
        dt.date(2027, 3, 29): "jour férié : Lundi de Pâques",
        dt.date(2027, 4, 19): "fermeture de la ferme : congés",
        dt.date(2027, 5, 17): "jour férié : Lundi de Pentecôte",
        dt.date(2027, 6, 21): "date retirée par l'AMAP",
    }
    assert all(day.reason is None for day in days if day.delivers)


@pytest.mark.django_db
def test_contract_may_deliver_on_public_holidays():
    contract = ContractFactory(
        season_start=dt.date(2027, 3, 1), season_end=dt.date(2027, 6, 30), weekday=MONDAY, exclude_public_holidays=False
    )
    days = contract_calendar(contract)
    assert CalendarDay(dt.date(2027, 3, 29), True, None) in days
    assert all(day.delivers for day in days)


@pytest.mark.django_db
def test_contract_calendar_uses_the_amaps_departement():
    # An AMAP in Strasbourg (67482) does not deliver on Good Friday; one in Bordeaux does.
    strasbourg = AmapFactory(commune=commune("67482"))
    fields = {"season_start": dt.date(2027, 3, 1), "season_end": dt.date(2027, 4, 30), "weekday": FRIDAY}
    alsace = {day.date: day for day in contract_calendar(ContractFactory(amap=strasbourg, **fields))}
    gironde = {day.date: day for day in contract_calendar(ContractFactory(**fields))}
    good_friday = dt.date(2027, 3, 26)
    assert alsace[good_friday] == CalendarDay(good_friday, False, "jour férié : Vendredi saint")
    assert gironde[good_friday].delivers


@pytest.mark.django_db
def test_monthly_contract_skips_a_first_monday_that_is_a_holiday():
    contract = ContractFactory(
        season_start=dt.date(2027, 9, 1),
        season_end=dt.date(2027, 12, 31),
        weekday=MONDAY,
        frequency=Contract.Frequency.MONTHLY,
    )
    days = contract_calendar(contract)
    assert [(day.date, day.delivers) for day in days] == [
        (dt.date(2027, 9, 6), True),
        (dt.date(2027, 10, 4), True),
        (dt.date(2027, 11, 1), False),  # Toussaint
        (dt.date(2027, 12, 6), True),
    ]
    assert days[2].reason == "jour férié : Toussaint"


@pytest.mark.django_db
def test_student_amap_delivers_only_in_term_time():
    """A Wednesday contract for a student AMAP in Bordeaux over the 2026-2027 university year."""
    amap = AmapFactory()
    year = AcademicCalendar.objects.create(
        amap=amap,
        name="Université de Bordeaux",
        year_start=2026,
        starts_on=dt.date(2026, 9, 14),
        ends_on=dt.date(2027, 5, 28),
    )
    breaks = [
        (AcademicBreak.Kind.HOLIDAYS, "Toussaint", dt.date(2026, 10, 24), dt.date(2026, 11, 1)),
        (AcademicBreak.Kind.HOLIDAYS, "Noël", dt.date(2026, 12, 19), dt.date(2027, 1, 3)),
        (AcademicBreak.Kind.EXAMS, "partiels du premier semestre", dt.date(2027, 1, 4), dt.date(2027, 1, 15)),
        (AcademicBreak.Kind.HOLIDAYS, "février", dt.date(2027, 2, 20), dt.date(2027, 2, 28)),
        (AcademicBreak.Kind.HOLIDAYS, "printemps", dt.date(2027, 4, 17), dt.date(2027, 5, 2)),
        (AcademicBreak.Kind.EXAMS, "partiels du second semestre", dt.date(2027, 5, 10), dt.date(2027, 5, 21)),
    ]
    for kind, label, first, last in breaks:
        AcademicBreak.objects.create(calendar=year, kind=kind, label=label, starts_on=first, ends_on=last)
    contract = ContractFactory(
        amap=amap,
        season_start=dt.date(2026, 9, 1),
        season_end=dt.date(2027, 6, 30),
        weekday=WEDNESDAY,
        academic_calendar=year,
    )
    days = contract_calendar(contract)
    delivered = [day.date for day in days if day.delivers]

    def in_term(day):
        return year.starts_on <= day <= year.ends_on and not any(first <= day <= last for _k, _l, first, last in breaks)

    all_wednesdays = every(WEDNESDAY, contract.season_start, contract.season_end)
    # Wednesday 11 November 2026 is Armistice (a holiday, in term time).
    assert delivered == [day for day in all_wednesdays if in_term(day) and day != dt.date(2026, 11, 11)]
    reasons = {day.date: day.reason for day in days}
    assert reasons[dt.date(2026, 9, 2)] == "hors de l'année universitaire"
    assert reasons[dt.date(2026, 10, 28)] == "vacances universitaires : Toussaint"
    assert reasons[dt.date(2026, 12, 23)] == "vacances universitaires : Noël"
    assert reasons[dt.date(2027, 1, 13)] == "examens universitaires : partiels du premier semestre"
    assert reasons[dt.date(2027, 2, 24)] == "vacances universitaires : février"
    assert reasons[dt.date(2027, 4, 21)] == "vacances universitaires : printemps"
    assert reasons[dt.date(2027, 5, 19)] == "examens universitaires : partiels du second semestre"
    assert reasons[dt.date(2026, 11, 11)] == "jour férié : Armistice"
    assert reasons[dt.date(2027, 6, 2)] == "hors de l'année universitaire"
    # The first delivery is the first Wednesday of term, the last one after the exams, before the end.
    assert delivered[0] == dt.date(2026, 9, 16)
    assert delivered[-1] == dt.date(2027, 5, 26)
