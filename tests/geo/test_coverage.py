"""geo.coverage: nearest distances, population coverage, densities, white zones, history, areas."""

import datetime as dt
import math

import numpy as np
import pytest
import shapely
from django.contrib.gis.geos import Polygon
from pyproj import Geod, Transformer

from geo import coverage as gc

GEOD = Geod(ellps="WGS84")
BORDEAUX = (-0.5792, 44.8378)  # Place de la Comédie


def _at(origin, azimuth, metres):
    """The point `metres` away from origin along `azimuth` (pyproj geodesic)."""
    lon, lat, _back = GEOD.fwd(origin[0], origin[1], azimuth, metres)
    return float(lon), float(lat)


def _units(rows):
    """Units from (code, population, department, region, lon, lat)."""
    return gc.units_from_rows(
        [(code, f"Commune {code}", pop, dep, reg, lon, lat) for code, pop, dep, reg, lon, lat in rows]
    )


def test_nearest_is_the_exact_geodesic_minimum():
    rng = np.random.default_rng(7)
    points = gc.PointSet(rng.uniform(-1.5, 1.5, 600), rng.uniform(44, 46, 600))
    target_lon, target_lat = rng.uniform(-2, 2, 400), rng.uniform(43.5, 46.5, 400)
    distances, index = points.nearest(target_lon, target_lat)
    # Brute force over every pair with pyproj's WGS84 geodesic.
    _a, _b, all_d = GEOD.inv(
        np.repeat(target_lon, 600), np.repeat(target_lat, 600), np.tile(points.lon, 400), np.tile(points.lat, 400)
    )
    all_d = all_d.reshape(400, 600)
    np.testing.assert_allclose(distances, all_d.min(axis=1), rtol=0, atol=1e-6)
    np.testing.assert_allclose(all_d[np.arange(400), index], distances, atol=1e-6)


def test_covered_and_within_agree_with_brute_force_at_the_threshold():
    rng = np.random.default_rng(11)
    points = gc.PointSet(rng.uniform(-1, 1, 300), rng.uniform(44.5, 45.5, 300))
    # Targets placed by pyproj at 9,999 m and 10,001 m from a point: decided at the metre.
    near = [_at((points.lon[i], points.lat[i]), rng.uniform(0, 360), 9999) for i in range(50)]
    far = [_at((points.lon[i], points.lat[i]), rng.uniform(0, 360), 10001) for i in range(50)]
    lon = np.array([p[0] for p in near + far] + list(rng.uniform(-1.5, 1.5, 300)))
    lat = np.array([p[1] for p in near + far] + list(rng.uniform(44, 46, 300)))
    _a, _b, d = GEOD.inv(
        np.repeat(lon, 300), np.repeat(lat, 300), np.tile(points.lon, len(lon)), np.tile(points.lat, len(lon))
    )
    d = d.reshape(len(lon), 300)
    np.testing.assert_array_equal(points.covered(lon, lat, 10_000), d.min(axis=1) <= 10_000)
    assert points.covered(lon[:50], lat[:50], 10_000).all()
    for i, found in enumerate(points.within(lon, lat, 10_000)):
        assert sorted(found.tolist()) == np.nonzero(d[i] <= 10_000)[0].tolist()
    np.testing.assert_array_equal(points.count_within(lon, lat, 10_000), (d <= 10_000).sum(axis=1))


def test_nearest_among_thousands_of_nearly_equidistant_points():
    # 5,000 points on a 2 km circle: the sphere cannot tell them apart, the geodesic can.
    points = [_at(BORDEAUX, az, 2000 + (az % 7)) for az in np.linspace(0, 360, 5000, endpoint=False)]
    ps = gc.PointSet([p[0] for p in points], [p[1] for p in points])
    distance, index = ps.nearest(np.array([BORDEAUX[0]]), np.array([BORDEAUX[1]]))
    assert distance[0] == pytest.approx(2000.0, abs=1e-3) and index[0] == 0


def test_nearest_in_a_dense_cluster_checks_beyond_the_shortlist():
    # 50 points on a 3 km circle around the target: all within 1 % of each other on the sphere.
    points = [_at(BORDEAUX, az, 3000 + az / 100) for az in range(0, 360, 7)]
    ps = gc.PointSet([p[0] for p in points], [p[1] for p in points])
    distance, _index = ps.nearest(np.array([BORDEAUX[0]]), np.array([BORDEAUX[1]]))
    assert distance[0] == pytest.approx(3000.0, abs=1e-3)


def test_no_point_means_infinitely_far():
    distances, index = gc.PointSet([], []).nearest(np.array([0.0]), np.array([45.0]))
    assert math.isinf(distances[0]) and index[0] == -1


def test_reference_point_coverage_counts_communes_by_their_point_at_the_metre():
    # Commune points placed by pyproj at 4,999 m, 5,001 m and 12 km from the single AMAP.
    a, b, c = _at(BORDEAUX, 10, 4999), _at(BORDEAUX, 100, 5001), _at(BORDEAUX, 250, 12000)
    units = _units([("A", 1000, "33", "75", *a), ("B", 3000, "33", "75", *b), ("C", 6000, "33", "75", *c)])
    distances = gc.nearest_distances(units=units, points=gc.PointSet([BORDEAUX[0]], [BORDEAUX[1]]))
    five = gc.population_coverage(units=units, distances_m=distances, radius_km=5)
    assert (five.covered_population, five.population, five.covered_communes) == (1000, 10000, 1)
    assert five.share == pytest.approx(0.1)
    ten = gc.population_coverage(units=units, distances_m=distances, radius_km=10)
    assert ten.share == pytest.approx(0.4)
    assert gc.population_coverage(units=units, distances_m=distances, radius_km=12.001).share == pytest.approx(1.0)
    assert five.as_dict()["method_label"] == "point de référence de la commune"


def test_coverage_curve_matches_each_radius():
    rng = np.random.default_rng(3)
    rows = [
        (f"C{i}", int(rng.integers(10, 5000)), "33", "75", *_at(BORDEAUX, rng.uniform(0, 360), rng.uniform(0, 40000)))
        for i in range(300)
    ]
    units = _units(rows)
    distances = gc.nearest_distances(units=units, points=gc.PointSet([BORDEAUX[0]], [BORDEAUX[1]]))
    curve = gc.coverage_curve(units=units, distances_m=distances)
    assert [f.radius_km for f in curve] == list(range(1, 31))
    for figure in curve:
        direct = gc.population_coverage(units=units, distances_m=distances, radius_km=figure.radius_km)
        assert figure.covered_population == direct.covered_population
    shares = [f.share for f in curve]
    assert shares == sorted(shares)


def test_density_per_100k_by_commune_department_region():
    units = _units(
        [
            ("33063", 200_000, "33", "75", *BORDEAUX),
            ("33281", 50_000, "33", "75", *_at(BORDEAUX, 270, 5000)),
            ("24322", 50_000, "24", "75", *_at(BORDEAUX, 90, 100000)),
            ("31555", 500_000, "31", "76", *_at(BORDEAUX, 135, 200000)),
        ]
    )
    items = ["33063", "33063", "33281", "31555", "99999"]  # the last one lies outside the units
    by_commune = gc.density_per_100k(units=units, item_unit_codes=items, level="commune")
    assert by_commune["33063"].per_100k == pytest.approx(1.0)
    assert by_commune["24322"].count == 0 and by_commune["24322"].per_100k == 0
    by_department = gc.density_per_100k(units=units, item_unit_codes=items, level="department")
    assert by_department["33"].count == 3 and by_department["33"].per_100k == pytest.approx(1.2)
    by_region = gc.density_per_100k(units=units, item_unit_codes=items, level="region")
    assert by_region["75"].population == 300_000 and by_region["75"].per_100k == pytest.approx(1.0)
    assert by_region["76"].per_100k == pytest.approx(0.2)


def test_white_zones_single_communes_and_groups_of_neighbours():
    amap = BORDEAUX
    rows = [
        ("NEAR", 90_000, "33", "75", *_at(amap, 0, 2000)),  # covered
        ("BIG", 5_000, "33", "75", *_at(amap, 90, 30000)),  # uncovered, alone
        ("S1", 600, "33", "75", *_at(amap, 180, 25000)),  # uncovered, small, with S2 and S3 adjacent
        ("S2", 300, "33", "75", *_at(amap, 185, 28000)),
        ("S3", 200, "33", "75", *_at(amap, 190, 31000)),
        ("FAR", 400, "33", "75", *_at(amap, 270, 40000)),  # uncovered, small, alone
    ]
    units = _units(rows)
    distances = gc.nearest_distances(units=units, points=gc.PointSet([amap[0]], [amap[1]]))
    adjacency = [("S1", "S2"), ("S2", "S3"), ("NEAR", "S1")]  # NEAR is covered: not part of any zone
    communes, groups = gc.white_zones(
        units=units, distances_m=distances, radius_km=10, min_population=1000, adjacency=adjacency
    )
    assert [z.codes for z in communes] == [("BIG",)]
    assert communes[0].nearest_m == pytest.approx(30000, abs=1e-3)
    assert len(groups) == 1
    group = groups[0]
    assert group.codes == ("S1", "S2", "S3") and group.population == 1100
    assert group.nearest_m == pytest.approx(25000, abs=1e-3)  # from its closest member
    # A lower threshold ranks by population.
    communes, _groups = gc.white_zones(
        units=units, distances_m=distances, radius_km=10, min_population=300, adjacency=adjacency
    )
    assert [z.codes[0] for z in communes] == ["BIG", "S1", "FAR", "S2"]


def test_white_zones_without_any_point_list_the_largest_communes():
    units = _units([("A", 10, "33", "75", *BORDEAUX), ("B", 5000, "33", "75", *_at(BORDEAUX, 0, 1000))])
    distances = gc.nearest_distances(units=units, points=gc.PointSet([], []))
    communes, _groups = gc.white_zones(units=units, distances_m=distances, radius_km=10, min_population=0, adjacency=[])
    assert [z.codes for z in communes] == [("B",), ("A",)]
    assert communes[0].as_dict()["nearest_km"] is None


def test_history_counts_points_open_at_each_date():
    a, b = _at(BORDEAUX, 0, 20000), _at(BORDEAUX, 180, 20000)
    units = _units([("A", 1000, "33", "75", *a), ("B", 3000, "33", "75", *b)])
    history = gc.coverage_history(
        units=units,
        lon=np.array([a[0], b[0]]),
        lat=np.array([a[1], b[1]]),
        opened=[dt.date(2010, 5, 1), dt.date(2015, 1, 1)],
        closed=[dt.date(2020, 6, 30), None],
        dates=[dt.date(2009, 12, 31), dt.date(2012, 12, 31), dt.date(2016, 12, 31), dt.date(2021, 12, 31)],
        radius_km=5,
    )
    assert [h.points for h in history] == [0, 1, 2, 1]
    assert [h.covered_population for h in history] == [0, 1000, 4000, 3000]
    assert history[2].share == pytest.approx(1.0)


def _square(center_xy, side_m, srid):
    """A square of `side_m` in a metric projection, as lon/lat WKB with dense edges."""
    x, y = center_xy
    h = side_m / 2
    ring = shapely.segmentize(shapely.box(x - h, y - h, x + h, y + h), 100)
    to_lonlat = Transformer.from_crs(srid, 4326, always_xy=True)
    return shapely.to_wkb(shapely.transform(ring, lambda xy: np.column_stack(to_lonlat.transform(xy[:, 0], xy[:, 1]))))


@pytest.mark.parametrize(
    ("department", "srid", "center_lonlat"),
    [("33", 2154, BORDEAUX), ("974", 2975, (55.45, -21.1)), ("971", 5490, (-61.55, 16.25))],
)
def test_area_weighted_share_of_a_square_cut_by_a_circle(department, srid, center_lonlat):
    to_metric = Transformer.from_crs(4326, srid, always_xy=True)
    cx, cy = to_metric.transform(*center_lonlat)
    square = _square((cx, cy), 10_000, srid)
    units = _units([("SQ", 1000, department, "75", *center_lonlat)])
    # An AMAP on the middle of the square's western edge, 4 km radius: half a disc is inside.
    to_lonlat = Transformer.from_crs(srid, 4326, always_xy=True)
    amap = to_lonlat.transform(cx - 5000, cy)
    shares = gc.area_weighted_shares(
        units=units, lon=np.array([amap[0]]), lat=np.array([amap[1]]), radius_km=4, geometries={"SQ": square}
    )
    expected = math.pi * 4000**2 / 2 / 10_000**2
    assert shares[0] == pytest.approx(expected, rel=0.01)
    figure = gc.area_weighted_coverage(units=units, shares=shares, radius_km=4)
    assert figure.covered_population == pytest.approx(1000 * expected, rel=0.01)
    assert figure.as_dict()["method_label"] == "surface pondérée"
    # Far away: nothing; right on top with a large radius: everything.
    far = gc.area_weighted_shares(
        units=units, lon=np.array([0.0]), lat=np.array([0.0]), radius_km=4, geometries={"SQ": square}
    )
    assert far[0] == 0.0
    whole = gc.area_weighted_shares(
        units=units,
        lon=np.array([center_lonlat[0]]),
        lat=np.array([center_lonlat[1]]),
        radius_km=20,
        geometries={"SQ": square},
    )
    assert whole[0] == pytest.approx(1.0)


def test_area_weighted_is_refused_where_too_costly():
    small = _units([("A", 10, "33", "75", *BORDEAUX)])
    assert gc.area_weighted_too_costly(units=small, points=10) is None
    assert "point de référence" in gc.area_weighted_too_costly(units=small, points=gc.AREA_WEIGHTED_MAX_POINTS + 1)


@pytest.mark.django_db
def test_load_units_splits_paris_into_arrondissements():
    units = gc.load_units(department_codes=["75"])
    assert len(units) == 20 and "75056" not in set(units.code)
    assert units.total_population == 2_103_778  # INSEE 2023, sum of the 20 arrondissements
    gironde = gc.load_units(department_codes=["33"])
    assert "33063" in set(gironde.code) and set(gironde.department) == {"33"}


@pytest.mark.django_db
def test_load_units_of_a_drawn_polygon_and_of_nothing():
    around_bordeaux = Polygon.from_bbox((-0.75, 44.78, -0.52, 44.90))
    around_bordeaux.srid = 4326
    units = gc.load_units(polygon=around_bordeaux)
    assert {"33063", "33281"} <= set(units.code)
    assert len(gc.load_units()) == 0


@pytest.mark.django_db
def test_unit_adjacency_from_outlines():
    pairs = set(gc.unit_adjacency(["33063", "33281", "33243"]))
    assert ("33063", "33281") in pairs  # Bordeaux and Mérignac share a border
    assert not any("33243" in pair for pair in pairs)  # Libourne is 30 km away
