"""The offline geocoder answers the spellings people type, with the INSEE codes of COG 2025."""

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geo.coordinates import in_france
from geo.geocoding import (
    Candidate,
    GeocodingError,
    commune_codes_matching,
    geocode,
    geocode_parts,
    parse_lat_lon,
    reset_gazetteer_cache,
)
from geo.text import normalize_place_name

pytestmark = pytest.mark.django_db


def codes(candidates: list[Candidate]) -> list[str]:
    return [c.commune.code for c in candidates]


# INSEE codes checked in the loaded COG 2025 table (geo_commune).
@pytest.mark.parametrize(
    ("text", "insee"),
    [
        ("Bordeaux", "33063"),
        ("bordeaux", "33063"),
        ("BORDEAUX", "33063"),
        ("mérignac", "33281"),  # three Mérignac: the Gironde one is the most populous
        ("Merignac", "33281"),
        ("st etienne", "42218"),
        ("Saint-Étienne", "42218"),
        ("ST-ETIENNE", "42218"),
        ("Sainte Foy la Grande", "33402"),
        ("Ste-Foy-la-Grande", "33402"),
        ("sainte-foy-la-grande", "33402"),
        ("St Émilion", "33394"),
        ("Le Havre", "76351"),
        ("Havre", "76351"),
        ("Les Sables-d'Olonne", "85194"),
        ("sables d olonne", "85194"),
        ("L'Haÿ-les-Roses", "94038"),
        ("Marseille", "13055"),
        ("marseile", "13055"),  # typo
        ("bordeau", "33063"),  # typo
        ("Saint-Etiene", "42218"),  # typo
        ("Civrac de Blaye", "33126"),
    ],
)
def test_commune_names_in_usual_spellings(text, insee):
    candidates = geocode(text)
    assert candidates[0].commune.code == insee
    assert candidates[0].precision == "commune"
    assert candidates[0].label.startswith(candidates[0].commune.name)


def test_exact_name_outranks_typo_guesses():
    exact = geocode("Marseille")[0]
    typo = geocode("marseile")[0]
    assert exact.score == 1.0
    assert 0.5 < typo.score < exact.score
    assert geocode("Marseile (13)")[0].commune.code == "13055"


@pytest.mark.parametrize(
    ("text", "insee", "label"),
    [
        ("33000", "33063", "Bordeaux (33000)"),
        ("33 000", "33063", "Bordeaux (33000)"),
        ("33700", "33281", "Mérignac (33700)"),
        ("75011", "75111", "Paris 11e Arrondissement (75011)"),  # an arrondissement, not all of Paris
        ("69007", "69387", "Lyon 7e Arrondissement (69007)"),
        ("13001", "13201", "Marseille 1er Arrondissement (13001)"),
    ],
)
def test_postal_codes(text, insee, label):
    first = geocode(text)[0]
    assert (first.commune.code, first.label, first.precision) == (insee, label, "postal_code")


def test_postal_code_shared_by_several_communes_lists_them_most_populous_first():
    candidates = geocode("33920")
    assert len(candidates) > 3
    assert "33126" in codes(candidates)  # Civrac-de-Blaye
    populations = [c.commune.population for c in candidates]
    assert populations == sorted(populations, reverse=True)


@pytest.mark.parametrize(("text", "insee"), [("33063", "33063"), ("2A004", "2A004"), ("2a004", "2A004")])
def test_insee_codes(text, insee):
    assert geocode(text)[0].commune.code == insee


def test_a_code_that_is_both_a_postal_code_and_an_insee_code_gives_both_postal_first():
    # 69007 is Lyon 7e's postal code and Ampuis's INSEE code.
    assert codes(geocode("69007")) == ["69387", "69007"]


@pytest.mark.parametrize(
    ("text", "insee"),
    [
        ("Lyon 3e", "69383"),
        ("Lyon 7e", "69387"),
        ("lyon 7ème", "69387"),
        ("Lyon 7e arrondissement", "69387"),
        ("Paris 11", "75111"),
        ("Paris 11e", "75111"),
        ("paris 11eme arr", "75111"),
        ("Marseille 1er", "13201"),
        ("Marseille 16e", "13216"),
        ("Lyon 7e Arrondissement", "69387"),
    ],
)
def test_arrondissements(text, insee):
    first = geocode(text)[0]
    assert first.commune.code == insee
    assert first.commune.kind == "ARM"
    assert first.score == 1.0


def test_unknown_arrondissement_is_no_match():
    assert geocode("Paris 25e") == []


@pytest.mark.parametrize(
    ("text", "insee"),
    [
        ("33000 Bordeaux", "33063"),
        ("Bordeaux 33000", "33063"),
        ("Bordeaux, 33000", "33063"),
        ("Saint-Denis 93", "93066"),
        ("Saint-Denis (93)", "93066"),
        ("Saint-Denis (974)", "97411"),
        ("Saint-Denis 974", "97411"),
        ("93 Saint-Denis", "93066"),
        ("33220 Ste Foy la Grande", "33402"),
        ("Paris 75011", "75111"),
        ("Mérignac 16", "16216"),  # the Charente one
        ("Ajaccio 2A", "2A004"),
        ("33 000 Bordeaux", "33063"),
        ("Bordeaux, France", "33063"),
        ("Bordeaux Cedex 9", "33063"),
        ("St-Denis (93)", "93066"),
        ("Romagne (Gironde)", "33358"),
        ("Sillas (sud-Gironde)", "33513"),
        ("Monbahus, Lot-et-Garonne", "47170"),
        ("Saint-Denis (La Réunion)", "97411"),
    ],
)
def test_name_with_postal_code_or_department(text, insee):
    candidates = geocode(text)
    assert candidates[0].commune.code == insee
    assert candidates[0].score == 1.0


@pytest.mark.parametrize(
    ("text", "insee"),
    [
        ("Chalons", "51108"),  # Châlons-en-Champagne before Chalons-du-Maine and Chalon
        ("Le Taillan", "33519"),  # Le Taillan-Médoc, not Taillant
        ("saint eti", "42218"),  # the beginning of Saint-Étienne
        ("aix en prov", "13001"),
    ],
)
def test_the_beginning_of_a_name_finds_the_bigger_town(text, insee):
    assert geocode(text)[0].commune.code == insee


def test_a_village_named_like_the_start_of_a_big_town_offers_both():
    # Aix is a village of Corrèze; most people typing "Aix" mean Aix-en-Provence.
    candidates = geocode("Aix")
    assert codes(candidates)[:2] == ["19002", "13001"]
    assert candidates[0].score == 1.0
    assert 0.95 < candidates[1].score < 1.0


def test_an_explicit_department_is_respected():
    # Bessan is in Hérault; "Bessan 33" (a Gironde château) is no commune of Gironde.
    assert geocode("Bessan 33") == []
    assert geocode("Bessan (Gironde)") == []
    assert codes(geocode("Bessan 34")) == ["34031"]


def test_unknown_name_with_a_known_postal_code_falls_back_on_the_code():
    # Marcillac merged into Val-de-Livenne (33380) in 2019; COG 2025 no longer knows the name.
    candidates = geocode("Marcillac 33860")
    assert "33380" in codes(candidates)
    assert all(c.precision == "postal_code" and c.score < 0.9 for c in candidates)


def test_ambiguous_name_gives_every_homonym_most_populous_first():
    candidates = geocode("Saint-Denis")
    # La Réunion (155k) then Seine-Saint-Denis (149k), then the villages.
    assert codes(candidates)[:2] == ["97411", "93066"]
    assert len(candidates) > 2
    assert all(c.score == 1.0 for c in candidates)
    assert all(c.commune.search_name == "saint denis" for c in candidates)
    populations = [c.commune.population for c in candidates]
    assert populations == sorted(populations, reverse=True)


def test_unique_name_is_not_ambiguous():
    assert codes(geocode("Bordeaux")) == ["33063"]
    assert codes(geocode("Sainte-Foy-la-Grande")) == ["33402"]


def test_limit_caps_the_list():
    assert len(geocode("Saint-Denis", limit=2)) == 2


def test_nothing_matches():
    assert geocode("Zzyzxqwv") == []
    assert geocode("99999") == []


@pytest.mark.parametrize("text", ["", "   ", "!!!", "?", "x" * 201])
def test_empty_or_absurd_input_is_refused_in_french(text):
    with pytest.raises(GeocodingError) as error:
        geocode(text)
    assert str(error.value)


def test_candidate_has_a_wgs84_point_inside_its_commune():
    bordeaux = geocode("Bordeaux")[0]
    assert bordeaux.point.srid == 4326
    assert bordeaux.commune.geom.contains(bordeaux.point)  # the outline loads on demand
    assert bordeaux.commune.department_id == "33"


# --------------------------------------------------------------------------- coordinates


@pytest.mark.parametrize(
    "text",
    ["44.84, -0.58", "44.84,-0.58", "44.84 -0.58", "44,84 -0,58", "44,84, -0,58", "44,84;-0,58", "44,84,-0,58"],
)
def test_lat_lon_in_usual_writings(text):
    [candidate] = geocode(text)
    assert (candidate.point.y, candidate.point.x) == pytest.approx((44.84, -0.58))
    assert candidate.precision == "exact"
    assert candidate.commune.code == "33063"
    assert "Bordeaux" in candidate.label


def test_overseas_coordinates():
    [candidate] = geocode("-20.88, 55.45")  # Saint-Denis, La Réunion
    assert candidate.commune.code == "97411"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("91.5, 2.3", "latitude"),
        ("44.8, 181", "longitude"),
        ("-0.58, 44.84", "inversées"),  # lon, lat instead of lat, lon
        ("40.71, -74.0", "hors de France"),  # New York
        ("44.84, -0.58, 12", "latitude, longitude"),
    ],
)
def test_coordinates_that_cannot_be_in_france_are_refused(text, reason):
    with pytest.raises(GeocodingError, match=reason):
        geocode(text)


@given(st.text(max_size=40))
def test_coordinate_parser_raises_nothing_but_geocoding_error(text):
    try:
        point = parse_lat_lon(text)
    except GeocodingError as error:
        assert str(error)
        return
    if point is not None:
        assert math.isfinite(point.x) and math.isfinite(point.y)
        assert in_france(point.x, point.y)


numbers = st.floats(allow_nan=True, allow_infinity=True, width=64)


@given(numbers, numbers, st.sampled_from([", ", ",", " ", "; "]), st.booleans())
def test_coordinate_parser_never_returns_out_of_range_points(lat, lon, separator, french_commas):
    text = f"{lat}{separator}{lon}"
    if french_commas:
        text = text.replace(".", ",")
    try:
        point = parse_lat_lon(text)
    except GeocodingError:
        return
    if point is not None:
        assert -90 <= point.y <= 90 and -180 <= point.x <= 180
        assert in_france(point.x, point.y)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=60, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=60))
def test_geocode_raises_nothing_but_geocoding_error(text):
    try:
        candidates = geocode(text)
    except GeocodingError:
        return
    for candidate in candidates:
        assert 0.0 <= candidate.score <= 1.0
        assert -90 <= candidate.point.y <= 90 and -180 <= candidate.point.x <= 180


@given(st.text(max_size=60))
def test_normalisation_is_idempotent_and_plain_ascii(text):
    once = normalize_place_name(text)
    assert normalize_place_name(once) == once or once.split()[0] in {"le", "la", "les", "l"}
    assert once == once.strip()
    assert all(c.isascii() and (c.isalnum() or c == " ") for c in once)


# --------------------------------------------------------------------------- structured input (importers)


@pytest.mark.parametrize(
    ("parts", "insee", "precision"),
    [
        ({"postal_code": "33920", "commune": "Civrac de Blaye"}, "33126", "commune"),
        ({"postal_code": "33920", "commune": "CIVRAC-DE-BLAYE"}, "33126", "commune"),
        ({"postal_code": "33920", "commune": "Civrac de Blay"}, "33126", "commune"),  # typo inside the postal code
        ({"address": "1 route de Blaye, 33920 Civrac de Blaye"}, "33126", "commune"),
        ({"address": "Le Bourg 33920 Civrac-de-Blaye"}, "33126", "commune"),
        ({"address": "Civrac de Blaye 33920"}, "33126", "commune"),
        ({"commune": "Merignac"}, "33281", "commune"),
        ({"commune": "Mérignac", "postal_code": "16200"}, "16216", "commune"),
        ({"commune": "Mérignac", "postal_code": "33999"}, "33281", "commune"),  # wrong code, right département
        ({"commune": "Lyon", "postal_code": "69007"}, "69387", "commune"),
        ({"commune": "33063"}, "33063", "commune"),
        ({"commune": "Lyon 7e"}, "69387", "commune"),
        ({"commune": "Saint-Denis (93)"}, "93066", "commune"),
        ({"commune": "Marseile"}, "13055", "commune"),
        ({"postal_code": "33700"}, "33281", "postal_code"),
        ({"postal_code": 33700.0}, "33281", "postal_code"),  # a spreadsheet's number
        ({"postal_code": "1000"}, "01053", "postal_code"),  # Excel dropped the leading zero of 01000 (Bourg)
        ({"postal_code": "33000", "commune": "Nowhere-sur-Rien"}, "33063", "postal_code"),
        ({"postal_code": "16360", "commune": "Baignes"}, "16025", "commune"),  # Baignes-Sainte-Radegonde
        ({"postal_code": "33710", "commune": "Bayon"}, "33035", "commune"),  # Bayon-sur-Gironde
        ({"postal_code": "33860", "commune": "Marcillac"}, "33380", "postal_code"),  # merged into Val-de-Livenne
        ({"address": "Romagne (Gironde )"}, "33358", "commune"),
        ({"address": "St Lons les mines"}, "40269", "commune"),  # Saint-Lon-les-Mines
        ({"postal_code": "33076", "commune": "Bordeaux Cedex"}, "33063", "commune"),  # a CEDEX code is no postal code
    ],
)
def test_geocode_parts(parts, insee, precision):
    first = geocode_parts(**parts)[0]
    assert (first.commune.code, first.precision) == (insee, precision)


def test_geocode_parts_needs_something():
    with pytest.raises(GeocodingError):
        geocode_parts(address=" ", postal_code="", commune="")


# --------------------------------------------------------------------------- commune search (API)


def test_commune_search_by_name_prefix_postal_and_insee():
    assert commune_codes_matching("bordeaux")[0] == "33063"
    assert commune_codes_matching("bord")[0] == "33063"
    assert commune_codes_matching("33000") == ["33063"]
    assert commune_codes_matching("2A00")[0] == "2A004"
    assert commune_codes_matching("saint denis")[:2] == ["97411", "93066"]
    assert commune_codes_matching("")[:1] == []


def test_cache_reset_rebuilds_the_index():
    geocode("Bordeaux")
    reset_gazetteer_cache()
    assert codes(geocode("Bordeaux")) == ["33063"]


@pytest.mark.parametrize(
    "text", ["Saint-Denis", "75011", "Lyon 7e", "mérignac", "33920", "44.84, -0.58", "Ajaccio", "Paris 11", "69007"]
)
def test_every_label_geocodes_back_to_its_own_place(text):
    # The search page offers candidates by their label: choosing one must find that very place.
    for candidate in geocode(text):
        again = geocode(candidate.label)[0]
        assert again.commune.code == candidate.commune.code
        assert again.point.equals_exact(candidate.point, 1e-9)
