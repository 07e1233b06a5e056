"""The free-text cell parsers: delivery days and hours, statuses, products."""

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from directory.parsing import (
    ProductMatcher,
    frequency_in,
    normalize_postal_code,
    parse_accepting,
    parse_date,
    parse_hours,
    parse_status,
    parse_weekdays,
    split_ids,
)

DAY_NAMES = ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"]


@given(
    days=st.lists(st.integers(min_value=1, max_value=7), min_size=1, max_size=7, unique=True),
    joiner=st.sampled_from([" + ", " et ", ", ", " / ", "+"]),
    case=st.sampled_from([str.lower, str.upper, str.capitalize]),
)
def test_plain_day_lists_give_their_days_and_no_note(days, joiner, case):
    text = joiner.join(case(DAY_NAMES[day - 1]) for day in days)
    parsed = parse_weekdays(text)
    assert parsed.weekdays == sorted(days)
    assert parsed.note == ""


@given(st.text(max_size=80))
def test_any_day_text_is_read_without_crashing_and_nothing_is_lost(text):
    parsed = parse_weekdays(text)
    assert parsed.weekdays == sorted(set(parsed.weekdays))
    assert all(1 <= day <= 7 for day in parsed.weekdays)
    # Whatever could not be read as plain days is kept verbatim for the delivery notes.
    assert parsed.note in ("", text.strip())


@pytest.mark.parametrize(
    ("text", "days", "frequency", "kept_as_note"),
    [
        ("Mardi + Jeudi", [2, 4], None, False),
        ("Jeudi + Mardi", [2, 4], None, False),
        ("Mardi et Vendredi", [2, 5], None, False),
        ("mardi", [2], None, False),
        ("", [], None, False),
        ("Dimanche (variable)", [7], None, True),
        ("Lundi et 3ieme vendredi du mois (volaille et poisson)", [1, 5], None, True),
        ("un jeudi sur deux", [4], "fortnightly", True),
        ("Mardi (+ Lundi Bayon)", [1, 2], None, True),
    ],
)
def test_delivery_days_seen_in_real_directories(text, days, frequency, kept_as_note):
    parsed = parse_weekdays(text)
    assert parsed.weekdays == days
    assert parsed.frequency == frequency
    assert parsed.note == (text if kept_as_note else "")


def _fmt(time: dt.time, style: str) -> str:
    if style == "h":
        return f"{time.hour}h{time.minute:02d}"
    if style == "H":
        return f"{time.hour:02d}H{time.minute:02d}"
    if style == ":":
        return f"{time.hour:02d}:{time.minute:02d}"
    return f"{time.hour}h" if time.minute == 0 else f"{time.hour}h{time.minute:02d}"


@given(
    start=st.times(min_value=dt.time(6, 0), max_value=dt.time(21, 0)).map(lambda t: t.replace(second=0, microsecond=0)),
    minutes=st.integers(min_value=5, max_value=180),
    style=st.sampled_from(["h", "H", ":", "short"]),
    dash=st.sampled_from(["-", " - ", "–", " à "]),
)
def test_hour_ranges_in_every_usual_spelling(start, minutes, style, dash):
    end_dt = dt.datetime.combine(dt.date(2026, 1, 1), start) + dt.timedelta(minutes=minutes)
    end = end_dt.time()
    if end_dt.date() != dt.date(2026, 1, 1):
        return
    parsed = parse_hours(f"{_fmt(start, style)}{dash}{_fmt(end, style)}")
    assert (parsed.start, parsed.end, parsed.note) == (start, end, "")


@given(st.text(max_size=80))
def test_any_hours_text_gives_an_ordered_range_or_a_note(text):
    parsed = parse_hours(text)
    if parsed.start is not None and parsed.end is not None:
        assert parsed.end > parsed.start  # the database refuses end <= start
    if parsed.start is None and text.strip():
        assert parsed.note == text.strip()


@pytest.mark.parametrize(
    ("text", "start", "end", "frequency", "note"),
    [
        ("18h30-19h30", dt.time(18, 30), dt.time(19, 30), None, ""),
        ("18h00", dt.time(18, 0), None, None, ""),
        ("18h-19h", dt.time(18, 0), dt.time(19, 0), None, ""),
        ("18h30-19h30 (tous les 15 jours)", dt.time(18, 30), dt.time(19, 30), "fortnightly", ""),
        ("Variable selon groupes", None, None, None, "Variable selon groupes"),
        ("14h-16h (mer) / 17h-19h (ven)", dt.time(14, 0), dt.time(16, 0), None, "14h-16h (mer) / 17h-19h (ven)"),
        ("19h30-18h00", None, None, None, "19h30-18h00"),  # reversed: kept for a person to fix
    ],
)
def test_delivery_hours_seen_in_real_directories(text, start, end, frequency, note):
    parsed = parse_hours(text)
    assert (parsed.start, parsed.end, parsed.frequency, parsed.note) == (start, end, frequency, note)


@pytest.mark.parametrize(
    ("text", "status"),
    [("actif", "active"), ("", "active"), ("fermé", "closed"), ("désabonné", "dormant"), ("En création", "creating")],
)
def test_statuses(text, status):
    assert parse_status(text) == status


def test_unknown_status_is_none():
    assert parse_status("peut-être") is None


@pytest.mark.parametrize(
    ("text", "frequency"),
    [("hebdo", "weekly"), ("/15 jours", "fortnightly"), ("1 / mois", "monthly"), ("ponctuel", None)],
)
def test_frequencies(text, frequency):
    assert frequency_in(text) == frequency


def test_accepting_dates_ids_and_postal_codes():
    assert parse_accepting("Liste d'attente") == "waiting_list"
    assert parse_accepting("complet") == "full"
    assert parse_date("2013-07-24") == dt.date(2013, 7, 24)
    assert parse_date("24/07/2013") == dt.date(2013, 7, 24)
    assert parse_date("bientôt") is None
    assert split_ids("A| B |A|") == ["A", "B"]
    assert normalize_postal_code("1000") == "01000"
    assert normalize_postal_code("33 130") == "33130"
    assert normalize_postal_code("Bègles") == ""


CATEGORIES = [
    ("legumes", "Légumes", ["legumes", "maraicher", "endives"]),
    ("fruits", "Fruits", ["pomme", "poire", "fraise"]),
    ("oeufs", "Œufs", ["oeuf"]),
    ("volailles", "Volailles", ["volaille", "poulet"]),
    ("viande-bovine", "Viande bovine", ["boeuf", "veau"]),
    ("produits-laitiers-vache", "Produits laitiers de vache", ["fromage", "produits laitiers"]),
    ("produits-laitiers-chevre", "Produits laitiers de chèvre", ["fromage de chevre", "chevre"]),
    ("jus-cidre", "Jus et cidre", ["cidre", "poire"]),
    ("autres", "Autres produits", ["autre"]),
]


@pytest.mark.parametrize(
    ("text", "slugs"),
    [
        ("volailles et oeufs", ["volailles", "oeufs"]),
        ("fromage de chèvre", ["produits-laitiers-chevre"]),  # the longest alias wins
        ("boeuf, veau", ["viande-bovine"]),
        ("pomme, poire", ["fruits"]),  # "poire" is shared: the first category wins
        ("légumes maraîcher", ["legumes"]),
        ("Produits laitiers de chèvre|oeufs", ["produits-laitiers-chevre", "oeufs"]),  # exported names
        ("legumes|oeufs", ["legumes", "oeufs"]),  # exported slugs
        ("bière artisanale", []),
    ],
)
def test_products_are_found_through_aliases(text, slugs):
    assert ProductMatcher(CATEGORIES).match(text) == slugs


@given(st.text(max_size=60))
def test_product_matching_never_crashes_and_returns_known_slugs(text):
    known = {slug for slug, _name, _aliases in CATEGORIES}
    found = ProductMatcher(CATEGORIES).match(text)
    assert set(found) <= known
    assert len(found) == len(set(found))
