"""The one search behind pages and API: nearest AMAPs/farms, exact against a brute-force oracle."""

import random
import re

import numpy as np
import pytest
from django.contrib.gis.geos import Point
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from pyproj import Geod

from directory.models import Amap, Network, ProductCategory
from directory.selectors import amap_features_near, amaps_near, farms_near, shortlist_size
from directory.selectors.nearest import _AMAPS, _nearest_query
from geo.models import Commune
from tests.factories import BORDEAUX, MERIGNAC, AmapFactory, FarmFactory, NetworkFactory

pytestmark = pytest.mark.django_db

GEOD = Geod(ellps="WGS84")
PRODUCTS = ["legumes", "fruits", "oeufs", "pain", "miel", "produits-laitiers-chevre"]
MAINLAND = (-4.8, 42.5, 8.2, 51.0)  # lon/lat box of mainland France
REUNION = (55.22, -21.39, 55.84, -20.87)


def random_point(rng: random.Random, box: tuple[float, float, float, float]) -> tuple[float, float]:
    return (round(rng.uniform(box[0], box[2]), 6), round(rng.uniform(box[1], box[3]), 6))


def directory_sample(seed: int) -> list[dict]:
    """AMAPs spread over France, a dense cluster around Bordeaux and a few in La Réunion.

    Returns the attributes the oracle filters on, one dict per AMAP (with its id).
    """
    rng = random.Random(seed)
    commune = Commune.objects.get(code="33063")
    networks = [NetworkFactory(slug="reseau-a"), NetworkFactory(slug="reseau-b")]
    categories = {c.slug: c for c in ProductCategory.objects.filter(slug__in=PRODUCTS)}
    points = [random_point(rng, MAINLAND) for _ in range(500)]
    points += [random_point(rng, (-0.75, 44.75, -0.45, 44.95)) for _ in range(200)]
    points += [random_point(rng, REUNION) for _ in range(20)]
    statuses = [Amap.Status.ACTIVE] * 8 + [Amap.Status.CLOSED, Amap.Status.DORMANT]
    amaps = Amap.objects.bulk_create(
        Amap(
            name=f"AMAP oracle {i}",
            location=Point(lon, lat, srid=4326),
            commune=commune,
            status=rng.choice(statuses),
            accepting_members=rng.choice(list(Amap.Accepting.values)),
            delivery_weekdays=sorted(rng.sample(range(1, 8), rng.randint(0, 2))),
        )
        for i, (lon, lat) in enumerate(points)
    )
    rows = []
    product_links, network_links = [], []
    for amap in amaps:
        products = set(rng.sample(PRODUCTS, rng.randint(0, 4)))
        network = rng.choice([None, "reseau-a", "reseau-b"])
        product_links += [Amap.products.through(amap=amap, productcategory=categories[p]) for p in products]
        if network:
            network_links.append(Amap.networks.through(amap=amap, network=networks[network == "reseau-b"]))
        rows.append(
            {
                "id": amap.pk,
                "lon": amap.location.x,
                "lat": amap.location.y,
                "active": amap.status == Amap.Status.ACTIVE,
                "accepting": amap.accepting_members == Amap.Accepting.OPEN,
                "weekdays": set(amap.delivery_weekdays),
                "products": products,
                "network": network,
            }
        )
    Amap.products.through.objects.bulk_create(product_links)
    Amap.networks.through.objects.bulk_create(network_links)
    return rows


def oracle(rows: list[dict], lon: float, lat: float, keep=lambda row: row["active"]) -> list[tuple[int, float]]:
    """Every kept AMAP with its WGS84 geodesic distance (pyproj), nearest first."""
    kept = [row for row in rows if keep(row)]
    lons = np.array([row["lon"] for row in kept])
    lats = np.array([row["lat"] for row in kept])
    _fwd, _back, dist = GEOD.inv(np.full(len(kept), lon), np.full(len(kept), lat), lons, lats)
    return sorted(zip([row["id"] for row in kept], dist.tolist(), strict=True), key=lambda pair: pair[1])


def assert_same_ranking(got: list, expected: list[tuple[int, float]]) -> None:
    """Same ids in the same order (two AMAPs within 1 m of each other may swap), distances within 0.1 %."""
    assert len(got) == len(expected)
    truth = dict(expected)
    for position, (amap, (expected_id, expected_m)) in enumerate(zip(got, expected, strict=True)):
        if amap.pk != expected_id:
            assert amap.pk in truth and abs(truth[amap.pk] - expected_m) < 1.0, f"rank {position + 1} differs"
        assert amap.distance_m == pytest.approx(truth[amap.pk], rel=1e-3)


@pytest.fixture
def sample():
    return directory_sample(seed=20260)


def test_nearest_ten_match_the_geodesic_oracle_at_random_points(sample):
    rng = random.Random(7)
    queries = [random_point(rng, MAINLAND) for _ in range(20)]
    queries += [random_point(rng, (-0.7, 44.78, -0.5, 44.9)) for _ in range(5)]  # inside the dense cluster
    queries += [random_point(rng, REUNION), (-61.53, 16.24)]  # overseas (Guadeloupe has none: 6,000+ km)
    for lon, lat in queries:
        got = amaps_near(point=Point(lon, lat, srid=4326), limit=10)
        assert_same_ranking(got, oracle(sample, lon, lat)[:10])


def test_filters_match_the_oracle_with_the_same_filters(sample):
    rng = random.Random(11)
    cases = [
        ({"products": ["legumes"]}, lambda r: "legumes" in r["products"]),
        ({"products": ["oeufs", "pain"]}, lambda r: {"oeufs", "pain"} <= r["products"]),
        ({"weekday": 3}, lambda r: 3 in r["weekdays"]),
        ({"accepting": True}, lambda r: r["accepting"]),
        ({"accepting": False}, lambda r: not r["accepting"]),
        ({"network": "reseau-b"}, lambda r: r["network"] == "reseau-b"),
        (
            {"products": ["legumes"], "weekday": 2, "accepting": True},
            lambda r: "legumes" in r["products"] and 2 in r["weekdays"] and r["accepting"],
        ),
        ({"bbox": (-1.0, 44.0, 1.0, 46.0)}, lambda r: -1.0 <= r["lon"] <= 1.0 and 44.0 <= r["lat"] <= 46.0),
    ]
    for filters, keep in cases:
        for _ in range(4):
            lon, lat = random_point(rng, MAINLAND)
            got = amaps_near(point=Point(lon, lat, srid=4326), limit=10, **filters)
            assert_same_ranking(got, oracle(sample, lon, lat, lambda r, keep=keep: r["active"] and keep(r))[:10])


def test_pages_and_api_show_the_same_search(sample, client, settings):
    """One search: the pages' AMAP instances, the selector's features and the API's answer agree."""
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"anon": "1000/minute", "user": "1000/minute"},
    }
    cache.clear()
    rng = random.Random(5)
    cases = [
        ({}, {}),
        ({"products": ["oeufs", "pain"]}, {"products": "oeufs,pain"}),
        ({"weekday": 3, "accepting": False}, {"weekday": "3", "accepting": "false"}),
        ({"network": "reseau-a", "radius_km": 300.0}, {"network": "reseau-a", "radius_km": "300"}),
    ]
    for filters, query in cases:
        lon, lat = random_point(rng, MAINLAND)
        point = Point(lon, lat, srid=4326)
        amaps = amaps_near(point=point, limit=12, offset=3, **filters)
        found = amap_features_near(point=point, limit=12, offset=3, **filters)
        response = client.get("/api/v1/amaps/", {"near": f"{lon},{lat}", "limit": 12, "offset": 3, **query})
        published = response.json()["features"]
        assert len(amaps) > 0
        assert [a.pk for a in amaps] == [f.id for f in found] == [f["id"] for f in published]
        assert [a.distance_m for a in amaps] == [f.distance_m for f in found]
        assert [f.feature for f in found] == published
        for amap, feature in zip(amaps, published, strict=True):
            assert feature["properties"]["distance_m"] == pytest.approx(amap.distance_m, abs=0.05)
            assert [amap.location.x, amap.location.y] == feature["geometry"]["coordinates"]
            assert amap.commune.name == feature["properties"]["commune"]["name"] == "Bordeaux"
            assert [p.slug for p in amap.product_list] == [p["slug"] for p in feature["properties"]["products"]]


def test_inactive_amaps_are_found_only_on_request(sample):
    lon, lat = BORDEAUX.x, BORDEAUX.y
    got = amaps_near(point=BORDEAUX, limit=10, include_inactive=True)
    assert_same_ranking(got, oracle(sample, lon, lat, keep=lambda r: True)[:10])


def test_radius_keeps_exactly_the_amaps_within_it(sample):
    lon, lat = -0.6, 44.85
    expected = [(pk, m) for pk, m in oracle(sample, lon, lat) if m <= 5000]
    got = amaps_near(point=Point(lon, lat, srid=4326), limit=100, radius_km=5)
    # 5 km around Mérignac–Bordeaux holds some but not all of the 200-AMAP cluster
    assert 0 < len(expected) < 100
    assert_same_ranking(got, expected)


def test_pages_continue_the_same_ranking(sample):
    lon, lat = -0.6, 44.85
    expected = oracle(sample, lon, lat)[:30]
    pages = [amaps_near(point=Point(lon, lat, srid=4326), limit=10, offset=offset) for offset in (0, 10, 20)]
    assert_same_ranking([amap for page in pages for amap in page], expected)


def test_ellipsoid_order_wins_over_sphere_order_even_beyond_the_first_shortlist():
    """Twenty AMAPs due east are nearer on the sphere, one due north is nearer on the ellipsoid.

    At 45° N a metre of latitude is shorter and a metre of longitude longer on WGS84 than on
    PostGIS's sphere, so the index's order is wrong here; the exact distance must decide.
    """
    origin = Point(2.0, 45.0, srid=4326)
    commune = Commune.objects.get(code="33063")
    # The sphere (R = 6,371,008.8 m) puts the east points at 10,000–10,019 m and the north one at 10,020 m.
    east = [Point(2.0 + (10_000 + i) / (6_371_008.8 * np.cos(np.radians(45))) * 180 / np.pi, 45.0) for i in range(20)]
    north = Point(2.0, 45.0 + 10_020 / 6_371_008.8 * 180 / np.pi)
    Amap.objects.bulk_create(
        Amap(name=f"Est {i}", location=Point(p.x, p.y, srid=4326), commune=commune) for i, p in enumerate(east)
    )
    north_amap = AmapFactory(name="Nord", location=Point(north.x, north.y, srid=4326))

    # geodesic distances from pyproj.Geod(ellps="WGS84"): north ≈ 10,006 m, east ≥ 10,028 m
    north_m = GEOD.inv(2.0, 45.0, north.x, north.y)[2]
    nearest_east_m = GEOD.inv(2.0, 45.0, east[0].x, east[0].y)[2]
    assert north_m < nearest_east_m

    first = amaps_near(point=origin, limit=1)
    assert first[0].pk == north_amap.pk
    assert first[0].distance_m == pytest.approx(north_m, abs=0.01)


def test_results_arrive_in_one_query_whatever_the_limit(sample):
    for limit in (1, 50):
        with CaptureQueriesContext(connection) as queries:
            amaps = amaps_near(point=MERIGNAC, limit=limit)
            shown = [
                (amap.commune.name, [p.name for p in amap.product_list], [n.slug for n in amap.network_list])
                for amap in amaps
            ]
        assert len(amaps) == limit
        assert len(queries) == 1  # commune joined, products and networks as arrays in the same query
    # the lists are those of the database, in the usual order
    for amap, (_commune, products, networks) in zip(amaps, shown, strict=True):
        assert products == [p.name for p in amap.products.all()]
        assert networks == [n.slug for n in amap.networks.order_by("name")]


def test_farms_are_ranked_and_filtered_on_their_public_point_only():
    near_farm = FarmFactory(name="Ferme proche", location=MERIGNAC, products=["legumes"])
    far_farm = FarmFactory(name="Ferme lointaine", location=Point(-0.2430, 44.9150, srid=4326), products=["miel"])
    FarmFactory(name="Ferme fermée", location=BORDEAUX, is_active=False)
    near_farm.refresh_from_db()
    public_m = GEOD.inv(BORDEAUX.x, BORDEAUX.y, near_farm.public_location.x, near_farm.public_location.y)[2]

    farms = farms_near(point=BORDEAUX, limit=10)
    assert [f.name for f in farms] == ["Ferme proche", "Ferme lointaine"]
    # the distance shown is the one to the masked point, never to the farm itself
    assert farms[0].distance_m == pytest.approx(public_m, rel=1e-3)
    assert "location" in farms[0].get_deferred_fields()

    assert [f.pk for f in farms_near(point=BORDEAUX, products=["miel"])] == [far_farm.pk]
    network = NetworkFactory(slug="reseau-fermes")
    far_farm.networks.add(network)
    assert [f.pk for f in farms_near(point=BORDEAUX, network="reseau-fermes")] == [far_farm.pk]


def test_farm_radius_applies_to_the_public_point():
    farm = FarmFactory(location=BORDEAUX)
    farm.refresh_from_db()
    public_m = GEOD.inv(BORDEAUX.x, BORDEAUX.y, farm.public_location.x, farm.public_location.y)[2]
    assert 500 <= public_m <= 1500  # geo.masking moves a private point by 500–1,500 m
    assert farms_near(point=BORDEAUX, radius_km=(public_m - 50) / 1000) == []
    assert [f.pk for f in farms_near(point=BORDEAUX, radius_km=(public_m + 50) / 1000)] == [farm.pk]


def bulk_amaps(count: int, *, seed: int) -> None:
    rng = random.Random(seed)
    commune = Commune.objects.get(code="33063")
    amaps = Amap.objects.bulk_create(
        (
            Amap(
                name=f"AMAP {i}",
                location=Point(*random_point(rng, MAINLAND), srid=4326),
                commune=commune,
                accepting_members=rng.choice(list(Amap.Accepting.values)),
                delivery_weekdays=[rng.randint(1, 7)],
            )
            for i in range(count)
        ),
        batch_size=2000,
    )
    legumes = ProductCategory.objects.get(slug="legumes")
    Amap.products.through.objects.bulk_create(
        (Amap.products.through(amap=amap, productcategory=legumes) for amap in amaps if rng.random() < 0.6),
        batch_size=5000,
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE directory_amap_products")
        cursor.execute("ANALYZE directory_amap")


def test_knn_query_walks_the_gist_index_at_ten_thousand_amaps():
    bulk_amaps(12_000, seed=3)
    assert Amap.objects.count() >= 10_000
    index = Amap._meta.get_field("location")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = %s AND indexdef ILIKE %s",
            [Amap._meta.db_table, f"%USING gist ({index.column})%"],
        )
        (gist_name,) = cursor.fetchone()

    def prepared_plans(**filters) -> dict[str, list[str]]:
        """The custom and generic plans of the search's own statement, as PostgreSQL keeps it prepared."""
        for _ in range(8):  # psycopg prepares a statement after a few runs (settings: prepare_threshold)
            amap_features_near(point=BORDEAUX, limit=10, **filters)
        query = _nearest_query(_AMAPS, point=BORDEAUX, limit=10, offset=0, **filters)
        sql = query.sql(shortlist_size(10))
        names = list(dict.fromkeys(re.findall(r"%\((\w+)\)s", sql)))
        sent = re.sub(r"%\((\w+)\)s", lambda match: f"${names.index(match.group(1)) + 1}", sql)
        plans = {}
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT name, parameter_types::text[] FROM pg_prepared_statements WHERE statement = %s", [sent]
            )
            ((name, types),) = cursor.fetchall()
            arguments = ", ".join(f"%s::{type_}" for type_ in types)
            for mode in ("force_custom_plan", "force_generic_plan"):
                cursor.execute(f"SET plan_cache_mode = {mode}")
                cursor.execute(f"EXPLAIN EXECUTE {name}({arguments})", [query.params[n] for n in names])
                plans[mode] = [row[0] for row in cursor.fetchall()]
            cursor.execute("RESET plan_cache_mode")
        return plans

    def assert_index_walk(plan: list[str]) -> None:
        text = "\n".join(plan)
        scans = [i for i, line in enumerate(plan) if f"Index Scan using {gist_name}" in line]
        assert len(scans) == 1, text
        # the GiST index is walked in `<->` order and cut by the shortlist's LIMIT: only the
        # shortlist's rows are ever read, measured and sorted, never the whole table
        assert plan[scans[0] + 1].strip().startswith("Order By: (location <-> "), text
        # Walking up from the scan: only nested loops (the EXISTS filters as semi-joins) until the
        # LIMIT, no Sort or Hash that would need every matching row first.
        nodes = [(len(line) - len(line.lstrip(" ->")), line.strip(" ->")) for line in plan[: scans[0]]]
        depth, ancestors = len(plan[scans[0]]) - len(plan[scans[0]].lstrip(" ->")), []
        for indent, node in reversed(nodes):
            if indent < depth and node.split(" ")[0] in {"Limit", "Nested", "Sort", "Hash", "Materialize"}:
                ancestors.append(node.split("  (")[0])
                depth = indent
                if node.startswith("Limit"):
                    break
        assert ancestors and ancestors[-1] == "Limit", text
        assert set(ancestors[:-1]) <= {"Nested Loop", "Nested Loop Semi Join"}, text
        assert f"Seq Scan on {Amap._meta.db_table} " not in text, text  # (its link tables are small)

    def planned_with_values(**filters) -> list[str]:
        """The plan of the search's statement planned with its values, as at each run of a filtered one."""
        query = _nearest_query(_AMAPS, point=BORDEAUX, limit=10, offset=0, **filters)
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN " + connection.ops.compose_sql(query.sql(shortlist_size(10)), query.params))
            return [row[0] for row in cursor.fetchall()]

    connection.ensure_connection()
    if connection.connection.prepare_threshold is not None:  # settings: DATABASE_PREPARED_STATEMENTS
        for plan in prepared_plans().values():  # the plain search, whichever plan PostgreSQL keeps
            assert_index_walk(plan)
    assert_index_walk(planned_with_values())
    assert_index_walk(planned_with_values(weekday=2, accepting=True, products=["legumes"]))

    # and the selector gives the same ten as the oracle at this size
    rows = Amap.objects.values_list("pk", "location")
    lon, lat = BORDEAUX.x, BORDEAUX.y
    pks = np.array([pk for pk, _ in rows])
    dist = GEOD.inv(
        np.full(len(pks), lon),
        np.full(len(pks), lat),
        np.array([p.x for _, p in rows]),
        np.array([p.y for _, p in rows]),
    )[2]
    expected = [int(pks[i]) for i in np.argsort(dist, kind="stable")[:10]]
    assert [a.pk for a in amaps_near(point=BORDEAUX, limit=10)] == expected


def test_network_filter_needs_membership_not_proximity():
    network = Network.objects.create(name="Réseau Gironde", slug="amap-gironde", level=Network.Level.DEPARTMENTAL)
    member = AmapFactory(name="Membre", location=Point(-0.2430, 44.9150, srid=4326))
    member.networks.add(network)
    AmapFactory(name="Voisine", location=BORDEAUX)
    assert [a.name for a in amaps_near(point=BORDEAUX, network="amap-gironde")] == ["Membre"]
