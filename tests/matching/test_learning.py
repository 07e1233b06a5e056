"""The learned ranking (matching/learning): no leak across folds, it learns a non-distance signal,
and it falls back to the fixed weights when the directory holds too few links."""

import numpy as np
import pytest
from django.contrib.gis.geos import Point

from directory.models import Partnership
from matching import engine
from matching.learning.features import FEATURES, Snapshot, load_snapshot, questions_for_amap
from matching.learning.ranker import LinearRanker
from matching.learning.store import matching_model_train
from matching.learning.training import cross_validate, fit, training_pairs
from matching.models import MatchingModel
from matching.selectors import Query, active_ranker, candidates, matches_for
from tests.factories import AmapFactory, FarmFactory, PartnershipFactory, product
from tests.matching.conftest import point_at

BORDEAUX = Point(-0.5792, 44.8378, srid=4326)


def _synthetic(seed: int = 7) -> Snapshot:
    """60 AMAPs and 50 egg farms in a 120 km square; links follow the farms' existing tours:
    a farm is chosen with odds ∝ (1 + its AMAPs)² / (1 + km / 60), so nearest-first is a weak guess."""
    rng = np.random.default_rng(seed)
    n_amaps, n_farms, eggs = 60, 50, 1
    amap_lon, amap_lat = rng.uniform(-1.3, 0.2, n_amaps), rng.uniform(44.3, 45.3, n_amaps)
    farm_lon, farm_lat = rng.uniform(-1.3, 0.2, n_farms), rng.uniform(44.3, 45.3, n_farms)
    partners = np.zeros(n_farms)
    links = []
    for _round in range(4):
        for a in rng.permutation(n_amaps):
            km = np.hypot((farm_lon - amap_lon[a]) * 79, (farm_lat - amap_lat[a]) * 111)
            taken = {f for (aa, f) in links if aa == a}
            odds = (1 + partners) ** 2 / (1 + km / 60)
            odds[list(taken)] = 0
            f = int(rng.choice(n_farms, p=odds / odds.sum()))
            links.append((int(a), f))
            partners[f] += 1
    link = np.array(links, dtype=np.int64)
    return Snapshot(
        amap_id=np.arange(1, n_amaps + 1),
        amap_lon=amap_lon,
        amap_lat=amap_lat,
        farm_id=np.arange(1, n_farms + 1),
        farm_lon=farm_lon,
        farm_lat=farm_lat,
        farm_capacity=np.full(n_farms, np.nan),
        farms_of_product={eggs: np.arange(n_farms)},
        link_id=np.arange(1, len(link) + 1),
        link_amap=link[:, 0],
        link_farm=link[:, 1],
        link_product=np.full(len(link), eggs),
    )


def test_the_fitted_ranking_beats_nearest_first_where_partners_follow_existing_tours():
    snapshot = _synthetic()
    assert len(snapshot.link_id) >= 200
    report = cross_validate(snapshot, folds=10, k=10, radius_km=300)
    assert report.links == len(snapshot.link_id)
    assert report.recall("learned", 3) > report.recall("nearest", 3) + 0.05
    ranker = fit(snapshot)
    assert ranker.coefficients["partners"] > 0  # it found the signal
    assert ranker.coefficients.get("log_distance", 0.0) <= 0  # and kept "closer is better"


def _synthetic_tours(seed: int = 7) -> Snapshot:
    """80 AMAPs (Tuesday or Thursday) and 40 egg farms in a 120 km square; each new link goes to a farm
    with odds ∝ exp(−km the AMAP adds to that farm's loop of its day / 8): farms whose rounds already
    pass nearby are chosen (the marginal detour, `matching.detours`), a signal nearest-first cannot see."""
    from matching.detours import detour_m, farm_legs

    rng = np.random.default_rng(seed)
    n_amaps, n_farms, eggs = 80, 40, 1
    amap_lon, amap_lat = rng.uniform(-1.3, 0.2, n_amaps), rng.uniform(44.3, 45.3, n_amaps)
    farm_lon, farm_lat = rng.uniform(-1.3, 0.2, n_farms), rng.uniform(44.3, 45.3, n_farms)
    days = np.where(rng.random(n_amaps) < 0.5, 1 << 1, 1 << 3)
    links: list[tuple[int, int]] = []
    for _round in range(4):
        for a in rng.permutation(n_amaps):
            stops = np.array(links, dtype=np.int64).reshape(-1, 2)
            legs = farm_legs(
                depot_lon=farm_lon,
                depot_lat=farm_lat,
                stop_farm=stops[:, 1],
                stop_id=stops[:, 0],
                stop_lon=amap_lon[stops[:, 0]],
                stop_lat=amap_lat[stops[:, 0]],
                stop_days=days[stops[:, 0]],
            )
            everyone = np.arange(n_farms)
            here = np.full(n_farms, amap_lon[a]), np.full(n_farms, amap_lat[a])
            detour, _error = detour_m(legs, everyone, *here, days[a], farm_lon, farm_lat)
            odds = np.exp(-detour / 8000.0)
            odds[[f for (aa, f) in links if aa == a]] = 0
            links.append((int(a), int(rng.choice(n_farms, p=odds / odds.sum()))))
    link = np.array(links, dtype=np.int64)
    return Snapshot(
        amap_id=np.arange(1, n_amaps + 1),
        amap_lon=amap_lon,
        amap_lat=amap_lat,
        farm_id=np.arange(1, n_farms + 1),
        farm_lon=farm_lon,
        farm_lat=farm_lat,
        farm_capacity=np.full(n_farms, np.nan),
        farms_of_product={eggs: np.arange(n_farms)},
        link_id=np.arange(1, len(link) + 1),
        link_amap=link[:, 0],
        link_farm=link[:, 1],
        link_product=np.full(len(link), eggs),
        amap_days=days,
    )


def test_the_fitted_ranking_learns_the_marginal_detour_where_partners_follow_the_farms_rounds():
    snapshot = _synthetic_tours()
    report = cross_validate(snapshot, folds=10, k=10, radius_km=300)
    assert report.links == len(snapshot.link_id) >= 300
    assert report.recall("learned", 3) > report.recall("nearest", 3) + 0.05
    assert report.recall("learned", 10) >= report.recall("nearest", 10)
    ranker = fit(snapshot)
    assert ranker.coefficients["marginal_detour"] < 0  # more km added to the round, less likely


def test_fewer_than_200_links_fit_nothing():
    snapshot = _synthetic()
    keep = snapshot.link_id <= 150
    small = Snapshot(
        **{
            **snapshot.__dict__,
            "link_id": snapshot.link_id[keep],
            "link_amap": snapshot.link_amap[keep],
            "link_farm": snapshot.link_farm[keep],
            "link_product": snapshot.link_product[keep],
        }
    )
    assert fit(small) is None
    assert fit(small, min_links=0) is not None


def test_a_ranker_round_trips_through_json_without_pickle():
    ranker = fit(_synthetic())
    again = LinearRanker.from_json(ranker.to_json())
    x = np.random.default_rng(1).normal(size=(5, len(FEATURES)))
    assert np.allclose(again.logit(x), ranker.logit(x))
    with pytest.raises(ValueError):
        LinearRanker.from_json({"kind": "pickle"})


def _small_directory():
    """Three AMAPs around Bordeaux, four egg farms, links between them."""
    eggs = product("oeufs")
    amaps = [AmapFactory(location=point_at(BORDEAUX, km=km, azimuth=az)) for km, az in ((0, 0), (12, 90), (25, 200))]
    farms = [
        FarmFactory(location=point_at(BORDEAUX, km=km, azimuth=az), products=[eggs], delivery_radius_km=None)
        for km, az in ((8, 10), (20, 100), (30, 250), (40, 300))
    ]
    for amap, farm in ((0, 0), (0, 1), (1, 1), (1, 2), (2, 1), (2, 3)):
        PartnershipFactory(amap=amaps[amap], farm=farms[farm], product=eggs)
    return amaps, farms, eggs


@pytest.mark.django_db
def test_a_left_out_amaps_links_are_absent_from_every_feature_and_training_row():
    amaps, _farms, eggs = _small_directory()
    left_out = amaps[0]
    snapshot = load_snapshot()
    x_index = int(np.flatnonzero(snapshot.amap_id == left_out.pk)[0])
    diffs, questions = training_pairs(snapshot, {x_index})
    assert questions and all(q.amap != x_index for q in questions)

    # The same rows from a directory where X's links never existed.
    Partnership.objects.filter(amap=left_out).delete()
    without = load_snapshot()
    assert left_out.pk not in set(without.amap_id[without.link_amap].tolist())
    diffs_without, questions_without = training_pairs(without, set())
    assert len(questions_without) == len(questions)
    for a, b in zip(questions, questions_without, strict=True):
        assert (a.amap, a.product) == (b.amap, b.product)
        assert np.array_equal(a.farms, b.farms) and np.allclose(a.x, b.x)
    assert np.allclose(diffs, diffs_without)
    # The detours in those rows come from the farms' loops (not all out-and-backs), and X's links
    # would have changed them: the comparison above can see a leak.
    detour, distance = FEATURES.index("marginal_detour"), FEATURES.index("log_distance")
    x = np.concatenate([q.x for q in questions])
    assert np.any(np.expm1(x[:, detour]) < 2 * np.expm1(x[:, distance]) - 0.5)
    _diffs, leaky = training_pairs(snapshot, set())
    leaky_rows = {(q.amap, q.product): q.x for q in leaky}
    assert any(not np.allclose(q.x, leaky_rows[(q.amap, q.product)]) for q in questions)


TOUR_FEATURES = ("partners", "nearest_delivery", "within_15", "within_30", "within_50", "marginal_detour")


def _request_path_features(amap, eggs, hidden=()) -> dict[int, np.ndarray]:
    """Farm id → the request path's features for "AMAP cherche paysan: œufs" from `amap`."""
    from matching.learning.features import table_features

    query = Query(
        kind=engine.AMAP_SEEKS_FARM,
        origin=amap.location,
        product_ids=[eggs.pk],
        weekdays=list(amap.delivery_weekdays),
        radius_km=100,
        amap=amap,
        hidden_partnership_ids=set(hidden),
    )
    need, table, _extras = candidates(query)
    x = table_features(table, engine.score_table(need, table).components)
    return {int(farm): x[i] for i, farm in enumerate(table.org_id) if table.annonce_id[i] == 0}


@pytest.mark.django_db
def test_hidden_links_never_reach_the_left_out_amaps_features():
    """Training's features of X's questions, the request path's with X's links hidden, and the
    request path's in a directory where X's links never existed: the same partners, delivery
    points, rings and detours (the farms' loops are built without X)."""
    amaps, farms, eggs = _small_directory()
    left_out = amaps[0]
    snapshot = load_snapshot()
    x_index = int(np.flatnonzero(snapshot.amap_id == left_out.pk)[0])
    hidden = snapshot.links_of({x_index})
    assert len(hidden) == 2
    asked = questions_for_amap(snapshot, x_index, hidden=hidden, radius_km=300)
    hidden_ids = set(Partnership.objects.filter(amap=left_out).values_list("pk", flat=True))
    request_hidden = _request_path_features(left_out, eggs, hidden_ids)
    request_leaky = _request_path_features(left_out, eggs)  # X's links not hidden
    Partnership.objects.filter(amap=left_out).delete()
    request_clean = _request_path_features(left_out, eggs)
    columns = [FEATURES.index(name) for name in TOUR_FEATURES]
    compared = 0
    for question in asked:
        for row, farm in enumerate(question.farms.tolist()):
            farm_id = int(snapshot.farm_id[farm])
            assert np.allclose(question.x[row, columns], request_clean[farm_id][columns], atol=1e-9)
            assert np.allclose(request_hidden[farm_id], request_clean[farm_id], atol=1e-9)
            compared += 1
    assert compared == len(farms)
    # Not hidden, X's own links show: its farms' loops pass through X itself (a detour of 0).
    detour = FEATURES.index("marginal_detour")
    assert any(request_leaky[f][detour] == 0 and request_clean[f][detour] > 0 for f in request_clean)


@pytest.mark.django_db
def test_under_200_links_train_matching_stores_nothing_and_the_fixed_weights_rank():
    _small_directory()
    assert matching_model_train() is None
    assert not MatchingModel.objects.exists()
    assert active_ranker() is None


@pytest.mark.django_db
def test_a_stored_model_ranks_and_its_reasons_are_french_sentences_without_internal_names():
    amaps, farms, eggs = _small_directory()
    model = matching_model_train(min_links=0)
    assert model is not None and model.version == 1 and model.card["links"] == 6
    assert active_ranker().version == 1
    query = Query(
        kind=engine.AMAP_SEEKS_FARM,
        origin=amaps[0].location,
        product_ids=[eggs.pk],
        weekdays=[],
        radius_km=100,
        amap=amaps[0],
    )
    results = matches_for(query, with_drive_times=False)
    assert results
    text = " ".join(reason for match in results for reason in match.reasons)
    for internal in FEATURES + tuple(engine.WEIGHTS):
        assert internal not in text
    assert any("AMAP livrée" in reason for match in results for reason in match.reasons)


@pytest.mark.django_db
def test_the_model_card_shows_to_staff_only_on_their_dashboard():
    from django.test import Client
    from django.urls import reverse

    from tests.factories import UserFactory

    _small_directory()
    matching_model_train(min_links=0)
    staff, farmer = UserFactory(is_staff=True), UserFactory()
    for user, shown in ((staff, True), (farmer, False)):
        client = Client()
        client.force_login(user)
        html = client.get(reverse("accounts:dashboard")).content.decode()
        assert ("Classement des mises en relation" in html) is shown
        assert ("6 partenariats réels de 3 AMAP" in html) is shown
    for internal in FEATURES:
        assert internal not in html
