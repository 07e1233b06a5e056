"""The engine against an independent brute-force reference on random data, and bulk against request."""

import json
import random

import numpy as np
import pytest
from django.contrib.gis.geos import Point
from pyproj import Geod

from directory.models import Amap, Partnership
from matching import bulk, engine
from matching.models import Annonce
from matching.selectors import Query, candidates, matches_for
from tests.factories import AmapFactory, FarmFactory, PartnershipFactory, UserFactory, product

from .conftest import amap_annonce, farm_annonce

pytestmark = pytest.mark.django_db

GEOD = Geod(ellps="WGS84")
SLUGS = ["legumes", "oeufs", "pain", "miel"]


def random_directory(seed: int, *, amaps: int = 80, farms: int = 80, links: int = 60):
    rng = random.Random(seed)

    def place():
        # Around Bordeaux, out to ~70 km
        return Point(-0.58 + rng.uniform(-0.9, 0.9), 44.84 + rng.uniform(-0.6, 0.6), srid=4326)

    amap_objs = [
        AmapFactory(
            location=place(),
            status=rng.choice(["active"] * 6 + ["closed", "dormant"]),
            delivery_weekdays=rng.choice([[], [2], [4], [2, 5], [6]]),
            member_count=rng.choice([None, 10, 25, 60]),
            accepting_members=rng.choice(["open", "waiting_list", "full", "unknown"]),
            products=rng.sample(SLUGS, rng.randint(0, 2)),
        )
        for _ in range(amaps)
    ]
    farm_objs = [
        FarmFactory(
            location=place(),
            delivery_radius_km=rng.choice([None, 10, 20, 30, 50]),  # None: never stated
            capacity_shares=rng.choice([None, 0, 15, 40]),
            is_active=rng.random() > 0.1,
            products=rng.sample(SLUGS, rng.randint(1, 2)),
        )
        for _ in range(farms)
    ]
    pairs = {(rng.randrange(amaps), rng.randrange(farms), rng.choice(SLUGS)) for _ in range(links)}
    for amap_index, farm_index, slug in sorted(pairs):
        PartnershipFactory(
            amap=amap_objs[amap_index], farm=farm_objs[farm_index], product=product(slug), is_active=rng.random() > 0.2
        )
    user = UserFactory()
    annonces = []
    for farm in rng.sample([f for f in farm_objs if f.is_active], 6):
        annonces.append(
            farm_annonce(
                farm,
                offered=rng.sample(SLUGS, rng.randint(1, 2)),
                radius_km=rng.choice([15, 25, 40]),
                weekdays=rng.choice([[], [2], [4, 6]]),
                shares=rng.choice([None, 20]),
                user=user,
            )
        )
    for amap in rng.sample([a for a in amap_objs if a.status == "active"], 6):
        annonces.append(
            amap_annonce(
                amap,
                wanted=rng.sample(SLUGS, 1),
                radius_km=rng.choice([20, 35, 60]),
                weekdays=rng.choice([None, [2], [5]]),
                shares=rng.choice([None, 30]),
                user=user,
            )
        )
    return annonces


def geodesic_m(a: Point, b: Point) -> float:
    return GEOD.inv(a.x, a.y, b.x, b.y)[2]


def reference_candidates(annonce: Annonce) -> set[int]:
    """Who may be proposed, computed row by row with pyproj, without the engine's code.

    Farms and annonces are measured at their public points (a farm's masked point), as matching
    does: no distance or order reveals a farmhouse (issue 12).
    """
    from directory.models import Farm

    wanted = set(annonce.products.values_list("pk", flat=True))
    days = set(annonce.delivery_weekdays)
    active_links = list(Partnership.objects.filter(is_active=True).values_list("amap_id", "farm_id", "product_id"))
    live = [a for a in Annonce.objects.live().prefetch_related("products") if a.pk != annonce.pk]
    result = set()
    if annonce.kind == Annonce.Kind.FARM_SEEKS_AMAP:
        for amap in Amap.objects.filter(status="active"):
            d = geodesic_m(annonce.public_location, amap.location)
            supplied = {product for amap_id, _farm, product in active_links if amap_id == amap.pk}
            day_ok = not days or not amap.delivery_weekdays or days & set(amap.delivery_weekdays)
            if d <= annonce.radius_km * 1000 and day_ok and wanted - supplied:
                result.add(amap.pk)
        for other in live:
            if other.kind != Annonce.Kind.AMAP_SEEKS_FARM or other.amap.status != "active":
                continue
            d = geodesic_m(annonce.public_location, other.public_location)
            other_days = set(other.delivery_weekdays)
            day_ok = not days or not other_days or days & other_days
            if (
                d <= annonce.radius_km * 1000
                and d <= other.radius_km * 1000
                and day_ok
                and wanted & {p.pk for p in other.products.all()}
            ):
                result.add(other.amap_id)
    else:

        def already(farm_id):
            return {p for amap_id, f, p in active_links if amap_id == annonce.amap_id and f == farm_id}

        for farm in Farm.objects.filter(is_active=True).exclude(location=None).prefetch_related("products"):
            d = geodesic_m(annonce.public_location, farm.public_location)
            produced = {p.pk for p in farm.products.all()}
            if (
                d <= annonce.radius_km * 1000
                and (farm.delivery_radius_km is None or d <= farm.delivery_radius_km * 1000)
                and farm.capacity_shares != 0
                and (wanted & produced) - already(farm.pk)
            ):
                result.add(farm.pk)
        for other in live:
            if other.kind != Annonce.Kind.FARM_SEEKS_AMAP or not other.farm.is_active:
                continue
            d = geodesic_m(annonce.public_location, other.public_location)
            other_days = set(other.delivery_weekdays)
            day_ok = not days or not other_days or days & other_days
            offered = {p.pk for p in other.products.all()}
            if (
                d <= annonce.radius_km * 1000
                and d <= other.radius_km * 1000
                and day_ok
                and (wanted & offered) - already(other.farm_id)
            ):
                result.add(other.farm_id)
    return result


def engine_candidates(annonce: Annonce) -> set[int]:
    need, table, _extras = candidates(Query.for_annonce(annonce))
    scored = engine.score_table(need, table)
    return {int(table.org_id[i]) for i in engine.rank(table, scored)}


@pytest.mark.parametrize("seed", [1, 2])
def test_candidates_within_reach_equal_an_independent_geodesic_computation(seed):
    annonces = random_directory(seed)
    checked = 0
    for annonce in annonces:
        expected = reference_candidates(annonce)
        assert engine_candidates(annonce) == expected, annonce
        checked += len(expected)
    assert checked > 20  # the random directory really produced candidates


def test_distances_are_true_geodesic_metres():
    annonces = random_directory(4)
    for annonce in annonces:
        if annonce.kind != Annonce.Kind.FARM_SEEKS_AMAP:
            continue
        for match in matches_for(Query.for_annonce(annonce), limit=50, with_drive_times=False):
            amap = Amap.objects.get(pk=match.counterpart_id)
            place = Annonce.objects.get(pk=match.annonce_id).public_location if match.annonce_id else amap.location
            # PostGIS geography distance vs pyproj.Geod(ellps="WGS84"): both exact on the ellipsoid
            assert match.distance_m == pytest.approx(geodesic_m(annonce.public_location, place), abs=0.1)


def bulk_rankings(*, k: int, first: int) -> tuple[bulk.BulkReport, dict[int, list[tuple]]]:
    report, results = bulk.compute(k=k, shortlist=first)
    stored: dict[int, list[tuple]] = {}
    for result in results:
        for i, annonce_id in enumerate(result.annonce_id.tolist()):
            stored.setdefault(annonce_id, []).append(
                (int(result.counterpart_id[i]), float(result.score[i]), float(result.distance_m[i]), result.reasons[i])
            )
    return report, stored


@pytest.mark.parametrize(
    ("seed", "k", "first", "heavy_tour"), [(5, 10, 1, 32), (6, 5, 2, 1), (8, 10, 64, 32), (9, 3, 1, 2)]
)
def test_bulk_top_k_equals_the_request_path_top_k_for_every_annonce(seed, k, first, heavy_tour, monkeypatch):
    """Same counterparts in the same order, same scores, distances and reasons, whatever the
    first pass's size: a tiny one (1 or 2 nearest points per day and product) forces the bulk
    path to prove, and widen, almost every annonce's search. `heavy_tour` 1 or 2 sends the
    farms' delivery points through their KD-trees (the path of farms delivering to many AMAPs)."""
    monkeypatch.setattr(bulk.tours, "HEAVY_TOUR", heavy_tour)
    annonces = random_directory(seed, amaps=120, farms=120)
    report, stored = bulk_rankings(k=k, first=first)
    if first < 10:
        assert report.widened > 0
    compared = 0
    for annonce in annonces:
        request = matches_for(Query.for_annonce(annonce), limit=k, with_drive_times=False)
        from_bulk = stored.get(annonce.pk, [])
        assert [m.counterpart_id for m in request] == [row[0] for row in from_bulk], annonce
        for match, (_id, score, distance, reasons) in zip(request, from_bulk, strict=True):
            assert score == pytest.approx(match.score, abs=1e-4)
            assert distance == pytest.approx(match.distance_m, abs=0.5)
            assert json.loads(reasons) == match.reasons
        compared += len(request)
    assert compared >= 2 * len(annonces)  # the annonces really had matches to compare


def test_bulk_keeps_only_eligible_counterparts_best_first():
    annonces = random_directory(7)
    _report, stored = bulk_rankings(k=5, first=2)
    for annonce in annonces:
        rows = stored.get(annonce.pk, [])
        assert {row[0] for row in rows} <= reference_candidates(annonce)
        scores = [row[1] for row in rows]
        assert scores == sorted(scores, reverse=True)
        assert len(rows) <= 5


def _store_learned_model() -> None:
    """A learned ranking as training stores one (signs as features.LEARNED_SIGNS), every feature weighing."""
    from matching.learning.ranker import LinearRanker
    from matching.models import MatchingModel

    ranker = LinearRanker(
        coefficients={
            "log_distance": -1.3,
            "partners": 0.6,
            "nearest_delivery": -0.4,
            "within_15": 0.3,
            "within_30": 0.2,
            "within_50": 0.1,
            "marginal_detour": -0.5,
            "product_fit": 2.0,
            "weekday": 1.0,
            "size_openness": 1.0,
            "reciprocal": 1.0,
        },
        intercept=1.5,
        reference={
            "log_distance": 3.0,
            "partners": 0.7,
            "nearest_delivery": 3.0,
            "marginal_detour": 3.5,
            "product_fit": 1.0,
        },
    )
    MatchingModel.objects.create(version=1, parameters=ranker.to_json(), card={}, links=0, is_active=True)


@pytest.mark.parametrize(
    ("seed", "k", "first", "heavy_tour", "links", "max_tiers"),
    [(5, 10, 1, 32, 60, 16), (6, 5, 2, 1, 250, 16), (8, 10, 64, 32, 250, 16), (9, 10, 1, 32, 250, 0)],
)
def test_with_a_stored_model_bulk_top_k_equals_the_request_path_top_k(
    seed, k, first, heavy_tour, links, max_tiers, monkeypatch
):
    """The learned score in bulk: same counterparts, order, scores and reasons (ordered by
    contribution) as the request path, which ranks with the stored model too. With 250 links
    farms deliver to several AMAPs a day: the detours of their loops weigh in the ranking.
    `max_tiers` 0 widens every farm-side search with one ball per annonce (`search._one_ball`)."""
    monkeypatch.setattr(bulk.tours, "HEAVY_TOUR", heavy_tour)
    monkeypatch.setattr(bulk.search, "MAX_TIERS", max_tiers)
    annonces = random_directory(seed, amaps=120, farms=120, links=links)
    _store_learned_model()
    report, stored = bulk_rankings(k=k, first=first)
    if first < 10:
        assert report.widened > 0
    compared = joined_loops = 0
    for annonce in annonces:
        request = matches_for(Query.for_annonce(annonce), limit=k, with_drive_times=False)
        fixed = matches_for(Query.for_annonce(annonce), limit=k, with_drive_times=False, ranker=None)
        from_bulk = stored.get(annonce.pk, [])
        assert [m.counterpart_id for m in request] == [row[0] for row in from_bulk], annonce
        for match, (_id, score, distance, reasons) in zip(request, from_bulk, strict=True):
            assert score == pytest.approx(match.score, abs=1e-4)
            assert distance == pytest.approx(match.distance_m, abs=0.5)
            assert json.loads(reasons) == match.reasons
        compared += len(request)
        if [m.counterpart_id for m in fixed] != [m.counterpart_id for m in request]:
            compared += 1000  # the stored model really ranks differently from the fixed weights somewhere
        _need, table, _extras = candidates(Query.for_annonce(annonce))
        top = np.isin(table.org_id, [m.counterpart_id for m in request])
        joined_loops += int(np.sum(top & (table.detour_m < 2 * table.distance_m - 100)))
    assert compared >= 1000 + 2 * len(annonces)
    if links > 100:
        assert joined_loops > 0  # some of the best matches join a farm's loop rather than start a new one
