"""The marginal detour feature (matching/detours.py): the estimate against the page's exact tours,
the out-and-back without a loop, the request path's column, and the bulk path's error bound."""

import numpy as np
import pytest

from matching import detours, engine, tours
from matching.bulk.distances import approx_distance_with_error
from matching.selectors import Query, candidates
from tests.factories import LIBOURNE, AmapFactory, FarmFactory, PartnershipFactory, product

from .conftest import farm_annonce, geodesic_m, point_at

TUESDAY, THURSDAY, FRIDAY = 1 << 1, 1 << 3, 1 << 4


def _legs_of(farm_tours: tours.FarmTours, days_of: dict[int, int]) -> detours.Legs:
    """The estimate's legs from the page's tours (stops missing from `days_of`: on no loop)."""
    stops = sorted({(s.amap_id, s.lon, s.lat) for t in farm_tours.tours.values() for s in t.stops})
    return detours.farm_legs(
        depot_lon=np.array([farm_tours.depot[0]]),
        depot_lat=np.array([farm_tours.depot[1]]),
        stop_farm=np.zeros(len(stops), dtype=np.int64),
        stop_id=np.array([s[0] for s in stops]),
        stop_lon=np.array([s[1] for s in stops]),
        stop_lat=np.array([s[2] for s in stops]),
        stop_days=np.array([days_of.get(s[0], 0) for s in stops]),
    )


@pytest.fixture
def two_day_farm(db):
    """A farm at Libourne: two AMAPs on Tuesdays, one on Thursdays."""
    eggs = product("oeufs")
    farm = FarmFactory(name="Ferme des deux jours", location=LIBOURNE, products=[eggs])
    farm.refresh_from_db()
    tuesday = [
        AmapFactory(location=point_at(farm.public_location, km=km, azimuth=az), delivery_weekdays=[2])
        for km, az in ((12, 10), (15, 80))
    ]
    thursday = AmapFactory(location=point_at(farm.public_location, km=20, azimuth=200), delivery_weekdays=[4])
    for amap in (*tuesday, thursday):
        PartnershipFactory(amap=amap, farm=farm, product=eggs)
    return farm, tuesday, thursday


def test_up_to_two_stops_a_day_the_estimate_is_the_pages_exact_insertion(two_day_farm):
    farm, tuesday, thursday = two_day_farm
    exact = tours.farm_tours(farm=farm)
    legs = _legs_of(exact, {tuesday[0].pk: TUESDAY, tuesday[1].pk: TUESDAY, thursday.pk: THURSDAY})
    rng = np.random.default_rng(5)
    places = [point_at(farm.public_location, km=km, azimuth=az) for km, az in rng.uniform((2, 0), (30, 360), (12, 2))]
    for days in (TUESDAY, THURSDAY, TUESDAY | THURSDAY):
        page = tours.detours(exact, [(p.x, p.y, days) for p in places])
        estimate, error = detours.detour_m(
            legs,
            np.zeros(len(places), dtype=np.int64),
            [p.x for p in places],
            [p.y for p in places],
            days,
            farm.public_location.x,
            farm.public_location.y,
        )
        assert error is None
        assert estimate == pytest.approx([d.geodesic_m for d in page], abs=0.01)


def test_an_amap_on_the_way_adds_less_than_an_out_and_back_and_a_day_without_loop_is_one(two_day_farm):
    farm, tuesday, _thursday = two_day_farm
    legs = _legs_of(tours.farm_tours(farm=farm), {tuesday[0].pk: TUESDAY, tuesday[1].pk: TUESDAY})
    between = point_at(tuesday[0].location, km=4, azimuth=120)  # between the two Tuesday stops
    detour, _error = detours.detour_m(
        legs, np.zeros(2, dtype=np.int64), [between.x] * 2, [between.y] * 2, [TUESDAY, FRIDAY], *farm.public_location
    )
    out_and_back = 2 * geodesic_m(farm.public_location, between)  # pyproj, the reference
    assert detour[0] < 0.25 * out_and_back
    assert detour[1] == pytest.approx(out_and_back, rel=1e-12)  # no loop on Fridays: a new trip


def test_the_loop_visits_the_nearest_stop_first_and_is_the_same_whatever_the_input_order():
    depot = (0.0, 45.0)
    stops = [(0.30, 45.0), (0.10, 45.0), (0.20, 45.05), (0.05, 45.2)]
    legs = [
        detours.farm_legs(
            depot_lon=np.array([depot[0]]),
            depot_lat=np.array([depot[1]]),
            stop_farm=np.zeros(4, dtype=np.int64),
            stop_id=np.array(ids),
            stop_lon=np.array([stops[i][0] for i in order]),
            stop_lat=np.array([stops[i][1] for i in order]),
            stop_days=np.full(4, TUESDAY),
        )
        for ids, order in (([1, 2, 3, 4], [0, 1, 2, 3]), ([4, 3, 2, 1], [0, 1, 2, 3]))
    ]
    # Depot → (0.10) → (0.20, 45.05) → (0.30) → (0.05, 45.2) → depot: nearest each time, then back.
    assert list(zip(legs[0].b_lon, legs[0].b_lat, strict=True)) == [
        (0.10, 45.0),
        (0.20, 45.05),
        (0.30, 45.0),
        (0.05, 45.2),
        depot,
    ]
    assert np.array_equal(legs[0].length_m, legs[1].length_m)


@pytest.mark.django_db
def test_the_request_path_scores_each_amap_with_the_detour_it_adds_to_the_farms_loops(two_day_farm):
    farm, tuesday, _thursday = two_day_farm
    on_the_way = AmapFactory(location=point_at(tuesday[0].location, km=3, azimuth=130), delivery_weekdays=[2])
    off_day = AmapFactory(location=point_at(tuesday[0].location, km=3, azimuth=130), delivery_weekdays=[5])
    annonce = farm_annonce(farm, offered=("oeufs",), radius_km=40, weekdays=(2, 5))
    _need, table, _extras = candidates(Query.for_annonce(annonce))
    rows = {int(org): i for i, org in enumerate(table.org_id)}
    page = tours.detours(
        tours.farm_tours(farm=farm),
        [(a.location.x, a.location.y, 1 << (a.delivery_weekdays[0] - 1)) for a in (on_the_way, off_day)],
    )
    assert table.detour_m[rows[on_the_way.pk]] == pytest.approx(page[0].geodesic_m, abs=0.01)
    assert table.detour_m[rows[off_day.pk]] == pytest.approx(
        2 * geodesic_m(farm.public_location, off_day.location), abs=0.01
    )
    assert table.detour_m[rows[on_the_way.pk]] < table.detour_m[rows[off_day.pk]] / 3


def test_the_bulk_approximation_stays_within_its_error_bound():
    """Random loops and places from 0 to 1,500 km: |approximate − exact| ≤ the stated error."""
    rng = np.random.default_rng(11)
    n_farms, n_stops, n_rows = 40, 200, 3000
    farm_lon, farm_lat = rng.uniform(-5, 8, n_farms), rng.uniform(42, 51, n_farms)
    stop_farm = np.sort(rng.integers(0, n_farms, n_stops))
    legs = detours.farm_legs(
        depot_lon=farm_lon,
        depot_lat=farm_lat,
        stop_farm=stop_farm,
        stop_id=np.arange(n_stops),
        stop_lon=farm_lon[stop_farm] + rng.normal(0, 0.5, n_stops),
        stop_lat=farm_lat[stop_farm] + rng.normal(0, 0.4, n_stops),
        stop_days=rng.choice([TUESDAY, THURSDAY, TUESDAY | THURSDAY], n_stops),
    )
    farm = rng.integers(0, n_farms, n_rows)
    lon = farm_lon[farm] + rng.normal(0, 1.0, n_rows) * rng.choice([0.1, 1, 8], n_rows)
    lat = farm_lat[farm] + rng.normal(0, 0.7, n_rows) * rng.choice([0.1, 1, 6], n_rows)
    days = rng.choice([TUESDAY, THURSDAY, FRIDAY, engine.ALL_DAYS], n_rows)
    args = (legs, farm, lon, lat, days, farm_lon[farm], farm_lat[farm])
    exact, _none = detours.detour_m(*args)
    approx, error = detours.detour_m(*args, distance=approx_distance_with_error)
    assert np.all(np.abs(approx - exact) <= error)
    # On the feature's scale (log of km), narrow enough to decide almost every comparison exactly.
    spread = np.log1p((approx + error) / 1000) - np.log1p(np.maximum(approx - error, 0) / 1000)
    assert np.median(spread) < 0.002
