"""Delivery tours (matching/tours.py): the route through a farm's AMAPs of one day (OR-Tools), the
marginal detour of a candidate AMAP, the farm's public point as depot, and who may see the page."""

import itertools

import numpy as np
import pytest
from django.test import Client
from django.urls import reverse

from matching import tours
from tests.factories import LIBOURNE, AmapFactory, FarmFactory, PartnershipFactory, UserFactory, product

from .conftest import farm_annonce, geodesic_m, point_at

pytestmark = pytest.mark.django_db


def _loop_length(matrix: np.ndarray, order: list[int]) -> float:
    loop = [0, *order, 0]
    return float(sum(matrix[a, b] for a, b in itertools.pairwise(loop)))


def test_the_route_is_the_shortest_loop_on_random_days():
    """OR-Tools against every permutation, exact up to 9 stops, OR-Tools beyond, on random days of 3 to 11 stops."""
    rng = np.random.default_rng(3)
    for n in (3, 4, 5, 6, 7, 8):
        lons, lats = rng.uniform(-0.6, 0.2, n + 1), rng.uniform(44.7, 45.2, n + 1)
        matrix = tours._geodesic_matrix(lons, lats)
        order = tours.solve_route(matrix)
        assert sorted(order) == list(range(1, n + 1))
        best = min(_loop_length(matrix, list(p)) for p in itertools.permutations(range(1, n + 1)))
        assert _loop_length(matrix, order) == pytest.approx(best, rel=1e-6)
        assert tours.solve_route(matrix) == order  # deterministic


def test_beyond_nine_stops_or_tools_is_within_one_percent_of_the_optimum():
    rng = np.random.default_rng(4)
    for n in (10, 12):
        lons, lats = rng.uniform(-0.6, 0.2, n + 1), rng.uniform(44.7, 45.2, n + 1)
        matrix = tours._geodesic_matrix(lons, lats)
        order = tours.solve_route(matrix)
        assert sorted(order) == list(range(1, n + 1))
        assert tours.solve_route(matrix) == order  # deterministic
        exact = _loop_length(matrix, tours._held_karp(matrix))
        assert exact <= _loop_length(matrix, order) <= exact * 1.01


def test_cheapest_insertion_is_zero_on_the_route_and_an_out_and_back_alone():
    # Depot and two stops on a line west–east: a point between them costs nothing extra.
    lons = np.array([0.0, 0.1, 0.2, 0.15])
    lats = np.array([45.0, 45.0, 45.0, 45.0])
    matrix = tours._geodesic_matrix(lons, lats)
    cost = tours.insertion_costs(matrix[:3, :3], [0, 1, 2], matrix[3:, :3])
    assert cost[0] == pytest.approx(0.0, abs=1.0)  # geodesics along a parallel are not quite straight
    # Alone (loop of the depot only): out and back.
    alone = tours.insertion_costs(matrix[:1, :1], [0], matrix[3:, :1])
    assert alone[0] == pytest.approx(2 * matrix[0, 3])


@pytest.fixture
def thursday_farm():
    """A farm at Libourne delivering eggs on Thursdays to three AMAPs, and on Tuesdays to one."""
    eggs = product("oeufs")
    farm = FarmFactory(name="Ferme des Tournées", location=LIBOURNE, products=[eggs])
    farm.refresh_from_db()
    thursday = [
        AmapFactory(
            name=f"AMAP jeudi {i}", location=point_at(farm.public_location, km=km, azimuth=az), delivery_weekdays=[4]
        )
        for i, (km, az) in enumerate(((10, 0), (14, 60), (10, 120)))
    ]
    tuesday = AmapFactory(
        name="AMAP mardi", location=point_at(farm.public_location, km=20, azimuth=250), delivery_weekdays=[2]
    )
    undated = AmapFactory(
        name="AMAP sans jour", location=point_at(farm.public_location, km=5, azimuth=180), delivery_weekdays=[]
    )
    for amap in (*thursday, tuesday, undated):
        PartnershipFactory(amap=amap, farm=farm, product=eggs)
    return farm, thursday, tuesday


def test_a_farms_tours_start_from_its_public_point_day_by_day(thursday_farm):
    farm, thursday, tuesday = thursday_farm
    assert farm.public_location.distance(farm.location) > 0  # the mask really moved the point
    result = tours.farm_tours(farm=farm)
    assert sorted(result.tours) == [2, 4]
    assert [s.name for s in result.undated] == ["AMAP sans jour"]
    jeudi = result.tours[4]
    assert jeudi.depot == (farm.public_location.x, farm.public_location.y)
    assert {s.amap_id for s in jeudi.stops} == {a.pk for a in thursday}
    # The loop's length, leg by leg with pyproj from the public point (the reference).
    points = [
        farm.public_location,
        *(a.location for a in sorted(thursday, key=lambda a: [s.amap_id for s in jeudi.stops].index(a.pk))),
    ]
    legs = sum(geodesic_m(a, b) for a, b in itertools.pairwise([*points, points[0]]))
    assert jeudi.length_m == pytest.approx(legs, rel=1e-9)
    assert jeudi.road_m == pytest.approx(legs * 1.3, rel=1e-9)  # the estimate's circuity factor
    assert result.tours[2].length_m == pytest.approx(2 * geodesic_m(farm.public_location, tuesday.location), rel=1e-9)


def test_an_amap_on_the_way_costs_less_than_one_off_the_route(thursday_farm):
    farm, thursday, _tuesday = thursday_farm
    result = tours.farm_tours(farm=farm)
    on_the_way = point_at(thursday[0].location, km=5, azimuth=90)  # between the first two stops
    off_route = point_at(farm.public_location, km=25, azimuth=300)
    near, far, other_day = tours.detours(
        result,
        [(on_the_way.x, on_the_way.y, 1 << 3), (off_route.x, off_route.y, 1 << 3), (off_route.x, off_route.y, 1 << 4)],
    )
    assert near.weekday == 4 and near.joins_tour and far.joins_tour
    assert near.km < 5 < far.km
    # Friday: no tour yet, an out-and-back from the farm's public point.
    assert other_day.weekday == 5 and not other_day.joins_tour
    assert other_day.geodesic_m == pytest.approx(2 * geodesic_m(farm.public_location, off_route), rel=1e-9)
    assert tours.describe_detour(near).startswith("+") and "sur votre tournée du jeudi" in tours.describe_detour(near)
    assert "nouvelle tournée le vendredi" in tours.describe_detour(other_day)


def test_the_farms_matches_show_what_each_amap_adds_to_its_tour(thursday_farm):
    farm, thursday, _tuesday = thursday_farm
    candidate = AmapFactory(
        name="AMAP candidate", location=point_at(thursday[0].location, km=4, azimuth=90), delivery_weekdays=[4]
    )
    annonce = farm_annonce(farm, offered=("oeufs",), radius_km=40, weekdays=(4,))
    client = Client()
    client.force_login(farm.managers.first())
    page = client.get(reverse("matching:annonce_detail", args=[annonce.pk])).content.decode()
    assert "AMAP candidate" in page
    assert "sur votre tournée du jeudi" in page
    assert candidate.pk


ROLES = ("anonymous", "unrelated", "other_farmer", "farmer", "staff")
# Who sees a farm's tours page: its managers and the staff; to anyone else it does not exist.
TOURS_PAGE = {"anonymous": "login", "unrelated": 404, "other_farmer": 404, "farmer": 200, "staff": 200}


def test_the_tours_page_answers_each_role_as_the_table_says(thursday_farm):
    farm, _thursday, _tuesday = thursday_farm
    users = {
        "anonymous": None,
        "unrelated": UserFactory(),
        "other_farmer": UserFactory(),
        "farmer": UserFactory(),
        "staff": UserFactory(is_staff=True),
    }
    FarmFactory(name="Autre ferme").managers.add(users["other_farmer"])
    farm.managers.add(users["farmer"])
    url = reverse("matching:farm_tours", args=[farm.pk])
    seen = {}
    for role in ROLES:
        client = Client()
        if users[role] is not None:
            client.force_login(users[role])
        response = client.get(url)
        code = response.status_code
        if code == 302 and "/connexion" in response.url or code == 302 and "login" in response.url:
            code = "login"
        seen[role] = code
    assert seen == TOURS_PAGE


def test_the_tours_page_draws_the_route_from_the_public_point_only(thursday_farm):
    farm, _thursday, _tuesday = thursday_farm
    user = UserFactory()
    farm.managers.add(user)
    client = Client()
    client.force_login(user)
    html = client.get(reverse("matching:farm_tours", args=[farm.pk])).content.decode()
    assert "Tournée du jeudi" in html and "Tournée du mardi" in html and "AMAP sans jour" in html
    assert "LineString" in html
    for coordinate in (farm.location.x, farm.location.y):
        assert f"{coordinate:.5f}"[:-1] not in html  # not even rounded to 1 m
    assert f"{farm.public_location.x}"[:8] in html
