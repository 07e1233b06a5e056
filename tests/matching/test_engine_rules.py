"""The match engine's rules on constructed cases: reach, weekday, product gap, closed AMAPs, scores, reasons."""

import math

import pytest

from directory.models import Amap
from matching import engine
from matching.selectors import matches_for_annonce
from tests.factories import BORDEAUX, LIBOURNE, AmapFactory, FarmFactory, PartnershipFactory, product

from .conftest import amap_annonce, farm_annonce, geodesic_m, point_at

pytestmark = pytest.mark.django_db


def CommuneFarm(**kwargs):  # noqa: N802 (a factory)
    """A farm known to its commune only: its public point is its point, so the distances below are exact.

    Matching measures farms at their public point (issue 12); with an exact point, a 500–1,500 m
    mask would blur the radius boundaries these tests are about.
    """
    return FarmFactory(location_precision="commune", **kwargs)


def names(matches):
    return [m.name for m in matches]


def test_farm_annonce_proposes_amaps_within_its_drive_radius_only():
    farm = FarmFactory(location=LIBOURNE)
    here = farm.public_location  # matching measures from the farm's public point (issue 12)
    inside = AmapFactory(name="Dedans", location=point_at(here, km=39.9))
    outside = AmapFactory(name="Dehors", location=point_at(here, km=40.1))
    annonce = farm_annonce(farm, radius_km=40)

    found = names(matches_for_annonce(annonce=annonce))

    assert inside.name in found
    assert outside.name not in found


def test_weekday_must_fit_when_both_sides_name_one():
    farm = FarmFactory(location=LIBOURNE)
    tuesday = AmapFactory(name="Mardi", location=point_at(LIBOURNE, km=10), delivery_weekdays=[2])
    thursday = AmapFactory(name="Jeudi", location=point_at(LIBOURNE, km=10, azimuth=0), delivery_weekdays=[4])
    AmapFactory(name="Inconnu", location=point_at(LIBOURNE, km=10, azimuth=180), delivery_weekdays=[])
    annonce = farm_annonce(farm, weekdays=[2])

    matches = {m.name: m for m in matches_for_annonce(annonce=annonce)}

    assert tuesday.name in matches and thursday.name not in matches
    assert "livraison le mardi compatible" in matches["Mardi"].reasons
    # An AMAP that never said its day is possible, but scores lower on that component.
    assert matches["Inconnu"].components["weekday"] == 0.5
    assert "jour de livraison non renseigné" in matches["Inconnu"].reasons
    assert matches["Mardi"].components["weekday"] == 1.0


def test_amap_with_an_active_partner_for_the_product_is_not_proposed():
    farm = FarmFactory(location=LIBOURNE)
    supplied = AmapFactory(name="Déjà servie", location=point_at(LIBOURNE, km=5))
    PartnershipFactory(amap=supplied, farm=FarmFactory(name="Autre"), product=product("oeufs"))
    former = AmapFactory(name="Ancien partenaire", location=point_at(LIBOURNE, km=6))
    PartnershipFactory(amap=former, farm=FarmFactory(name="Parti"), product=product("oeufs"), is_active=False)
    lacking = AmapFactory(name="Sans œufs", location=point_at(LIBOURNE, km=7))
    PartnershipFactory(amap=lacking, farm=FarmFactory(name="Maraîcher"), product=product("legumes"))
    annonce = farm_annonce(farm, offered=("oeufs",))

    matches = {m.name: m for m in matches_for_annonce(annonce=annonce)}

    assert "Déjà servie" not in matches
    assert "Ancien partenaire" in matches
    assert "aucun producteur d'œufs actuellement" in matches["Sans œufs"].reasons
    assert matches["Sans œufs"].components["product_gap"] == 1.0


def test_listed_product_without_a_partner_counts_half():
    farm = FarmFactory(location=LIBOURNE)
    AmapFactory(name="Affiche des œufs", location=point_at(LIBOURNE, km=5), products=["oeufs"])
    annonce = farm_annonce(farm, offered=("oeufs",))

    (match,) = matches_for_annonce(annonce=annonce)

    assert match.components["product_gap"] == 0.5
    assert "Œufs parmi ses produits, mais aucun producteur partenaire enregistré" in match.reasons


@pytest.mark.parametrize("status", [Amap.Status.CLOSED, Amap.Status.DORMANT, Amap.Status.CREATING])
def test_an_amap_that_is_not_active_is_never_proposed_even_with_an_open_annonce(status):
    farm = FarmFactory(location=LIBOURNE)
    amap = AmapFactory(name="Fermée", location=point_at(LIBOURNE, km=3))
    amap_annonce(amap, wanted=("oeufs",))
    amap.status = status
    amap.save()
    annonce = farm_annonce(farm)

    assert "Fermée" not in names(matches_for_annonce(annonce=annonce))


def test_scores_are_ordered_and_made_of_the_weighted_components():
    farm = FarmFactory(location=LIBOURNE)
    for km in (3, 8, 15, 22, 30, 37):
        AmapFactory(location=point_at(LIBOURNE, km=km, azimuth=km * 7), member_count=km, accepting_members="open")
    annonce = farm_annonce(farm)

    matches = matches_for_annonce(annonce=annonce)

    assert len(matches) == 6
    scores = [m.score for m in matches]
    assert scores == sorted(scores, reverse=True)
    for match in matches:
        assert 0.0 <= match.score <= 1.0
        assert set(match.components) == set(engine.WEIGHTS)
        assert all(0.0 <= value <= 1.0 for value in match.components.values())
        weighted = sum(engine.WEIGHTS[name] * value for name, value in match.components.items())
        assert match.score == pytest.approx(weighted, abs=1e-3)


def test_distance_reason_and_drive_time_are_true():
    farm = FarmFactory(location=LIBOURNE)
    amap = AmapFactory(name="Bordeaux", location=BORDEAUX)
    annonce = farm_annonce(farm, radius_km=40)

    (match,) = matches_for_annonce(annonce=annonce)

    # From the farm's public point (never its farmhouse) to Bordeaux, pyproj.Geod(ellps="WGS84")
    expected_m = geodesic_m(farm.public_location, amap.location)
    assert match.distance_m == pytest.approx(expected_m, abs=1.0)
    km = round(expected_m / 1000)
    # The estimate is kept to a tenth of a minute (as stored and in the API), then shown in whole minutes.
    minutes = round(round(expected_m / 1000 * 1.3 / 60 * 60, 1))
    assert match.reasons[0] == f"à {km} km, environ {minutes} min de route (estimation)"
    assert match.drive_source == "estimation"
    assert match.drive_minutes == pytest.approx(expected_m / 1000 * 1.3, abs=0.1)
    # Halved every 20 km, whatever the annonce's radius.
    assert match.components["distance"] == pytest.approx(0.5 ** (expected_m / 20_000), abs=1e-3)


def test_tour_synergy_names_the_amap_the_farm_already_delivers():
    farm = FarmFactory(location=LIBOURNE)
    delivered = AmapFactory(name="AMAP du Marché", location=point_at(LIBOURNE, km=20, azimuth=270))
    PartnershipFactory(amap=delivered, farm=farm, product=product("legumes"))
    neighbour = AmapFactory(name="Voisine", location=point_at(delivered.location, km=4, azimuth=0))
    far = AmapFactory(name="Loin de la tournée", location=point_at(LIBOURNE, km=20, azimuth=90))
    annonce = farm_annonce(farm, offered=("oeufs",))

    matches = {m.name: m for m in matches_for_annonce(annonce=annonce)}

    assert "vous livrez déjà « AMAP du Marché » à 4,0 km" in matches[neighbour.name].reasons
    assert matches[neighbour.name].components["tour_synergy"] == pytest.approx(1 - 4 / 15, abs=1e-3)
    assert matches[far.name].components["tour_synergy"] == 0.0
    # The AMAP the farm already supplies with vegetables still lacks eggs: the best fit of all.
    assert "vous livrez déjà cette AMAP" in matches[delivered.name].reasons
    assert matches[neighbour.name].score > matches[far.name].score


def test_reciprocal_annonce_counts_only_within_its_own_radius_and_for_the_products():
    farm = FarmFactory(location=LIBOURNE)
    asking = AmapFactory(name="Demandeuse", location=point_at(LIBOURNE, km=25))
    amap_annonce(asking, wanted=("oeufs",), radius_km=30)
    too_strict = AmapFactory(name="Trop loin pour elle", location=point_at(LIBOURNE, km=25, azimuth=0))
    amap_annonce(too_strict, wanted=("oeufs",), radius_km=10)
    other_product = AmapFactory(name="Veut du pain", location=point_at(LIBOURNE, km=25, azimuth=180))
    amap_annonce(other_product, wanted=("pain",), radius_km=30)
    annonce = farm_annonce(farm, offered=("oeufs",))

    matches = {m.name: m for m in matches_for_annonce(annonce=annonce)}

    assert matches["Demandeuse"].components["reciprocal"] == 1.0
    assert matches["Demandeuse"].annonce_id is not None
    assert "a publié une annonce « AMAP cherche paysan »" in matches["Demandeuse"].reasons
    assert matches["Trop loin pour elle"].components["reciprocal"] == 0.0
    assert matches["Veut du pain"].components["reciprocal"] == 0.0
    assert names(matches_for_annonce(annonce=annonce))[0] == "Demandeuse"


def test_amap_annonce_proposes_producing_farms_whose_own_radius_reaches_it():
    amap = AmapFactory(name="AMAP Bordeaux", location=BORDEAUX)
    reaches = CommuneFarm(name="Atteint", location=point_at(BORDEAUX, km=25), delivery_radius_km=30, products=["oeufs"])
    CommuneFarm(
        name="Trop court", location=point_at(BORDEAUX, km=25, azimuth=0), delivery_radius_km=20, products=["oeufs"]
    )
    CommuneFarm(name="Autre produit", location=point_at(BORDEAUX, km=5), products=["pain"])
    CommuneFarm(name="Complet", location=point_at(BORDEAUX, km=5, azimuth=0), products=["oeufs"], capacity_shares=0)
    CommuneFarm(
        name="Au-delà de l'AMAP", location=point_at(BORDEAUX, km=45), delivery_radius_km=100, products=["oeufs"]
    )
    partner = CommuneFarm(name="Déjà partenaire", location=point_at(BORDEAUX, km=8), products=["oeufs"])
    PartnershipFactory(amap=amap, farm=partner, product=product("oeufs"))
    annonce = amap_annonce(amap, wanted=("oeufs",), radius_km=40)

    matches = {m.name: m for m in matches_for_annonce(annonce=annonce)}

    assert set(matches) == {reaches.name}
    match = matches[reaches.name]
    assert match.counterpart_type == "farm"
    assert "produit : œufs" in match.reasons
    # Farms are measured at their public point, given to 100 m.
    assert match.distance_m == pytest.approx(25_000, abs=100)
    assert match.distance_m % 100 == 0


def test_a_farm_that_never_stated_its_radius_is_ranked_by_distance_not_cut():
    amap = AmapFactory(name="AMAP Bordeaux", location=BORDEAUX)
    near = CommuneFarm(name="Proche", location=point_at(BORDEAUX, km=12), delivery_radius_km=None, products=["oeufs"])
    far = CommuneFarm(
        name="Lointaine", location=point_at(BORDEAUX, km=55, azimuth=0), delivery_radius_km=None, products=["oeufs"]
    )
    stated = CommuneFarm(
        name="Rayon déclaré", location=point_at(BORDEAUX, km=45, azimuth=180), delivery_radius_km=40, products=["oeufs"]
    )
    annonce = amap_annonce(amap, wanted=("oeufs",), radius_km=100)

    matches = {m.name: m for m in matches_for_annonce(annonce=annonce)}

    # An explicit radius stays a hard limit; an unknown one is no limit at all.
    assert stated.name not in matches
    assert list(matches) == [near.name, far.name]
    assert "rayon de livraison non renseigné" in matches[far.name].reasons
    assert matches[near.name].components["distance"] > matches[far.name].components["distance"]
    assert matches[far.name].components["distance"] == pytest.approx(0.5 ** (55 / 20), abs=1e-3)
    # The AMAP's own radius still applies.
    strict = amap_annonce(AmapFactory(name="AMAP stricte", location=BORDEAUX), wanted=("oeufs",), radius_km=50)
    assert [m.name for m in matches_for_annonce(annonce=strict)] == [near.name]


def test_farm_annonce_is_a_reciprocal_candidate_for_an_amap_annonce():
    amap = AmapFactory(name="AMAP Bordeaux", location=BORDEAUX, delivery_weekdays=[2])
    offering = FarmFactory(name="Propose", location=point_at(BORDEAUX, km=12), products=["legumes"])
    farm_annonce(offering, offered=("oeufs",), radius_km=20, weekdays=[2], shares=40)
    quiet = FarmFactory(name="Discrète", location=point_at(BORDEAUX, km=12, azimuth=0), products=["oeufs"])
    annonce = amap_annonce(amap, wanted=("oeufs",), radius_km=30, shares=30)

    matches = {m.name: m for m in matches_for_annonce(annonce=annonce)}

    assert matches["Propose"].components["reciprocal"] == 1.0
    assert "peut fournir 40 parts" in matches["Propose"].reasons
    assert "livraison le mardi compatible" in matches["Propose"].reasons
    assert matches["Discrète"].components["weekday"] == 0.5
    assert matches["Propose"].score > matches[quiet.name].score


def test_every_reason_is_true_on_a_mixed_neighbourhood():
    """Check each sentence against the data it claims to state."""
    farm = FarmFactory(location=LIBOURNE)
    delivered = AmapFactory(name="Tournée", location=point_at(LIBOURNE, km=12, azimuth=300), delivery_weekdays=[2])
    PartnershipFactory(amap=delivered, farm=farm, product=product("legumes"))
    amaps = [
        AmapFactory(
            name=f"A{i}",
            location=point_at(LIBOURNE, km=3 + 4 * i, azimuth=40 * i),
            delivery_weekdays=[2] if i % 3 else [],
            member_count=None if i % 2 else 20 + i,
            accepting_members=["open", "waiting_list", "full", "unknown"][i % 4],
            products=["oeufs"] if i % 4 == 1 else [],
        )
        for i in range(8)
    ]
    annonce = farm_annonce(farm, offered=("oeufs", "volailles"), weekdays=[2])
    by_name = {a.name: a for a in [delivered, *amaps]}

    for match in matches_for_annonce(annonce=annonce, limit=20):
        amap = by_name[match.name]
        distance_km = geodesic_m(farm.public_location, amap.location) / 1000  # from the public point
        first = match.reasons[0]
        shown = float(first.split(" km")[0].removeprefix("à ").replace(",", "."))
        assert shown == pytest.approx(distance_km, abs=0.05 if distance_km < 10 else 0.5)
        partnered = set(amap.partnerships.filter(is_active=True).values_list("product__slug", flat=True))
        listed = set(amap.products.values_list("slug", flat=True))
        for slug, de_name in (("oeufs", "d'œufs"), ("volailles", "de volailles")):
            if f"aucun producteur {de_name} actuellement" in match.reasons:
                assert slug not in partnered and slug not in listed
        if "livraison le mardi compatible" in match.reasons:
            assert 2 in amap.delivery_weekdays
        if "jour de livraison non renseigné" in match.reasons:
            assert amap.delivery_weekdays == []
        if "accepte de nouveaux membres" in match.reasons:
            assert amap.accepting_members == "open"
        if "a une liste d'attente" in match.reasons:
            assert amap.accepting_members == "waiting_list"
        for reason in match.reasons:
            if reason.endswith("foyers adhérents"):
                assert int(reason.split()[0]) == amap.member_count
            if reason.startswith("vous livrez déjà « Tournée » à "):
                km = float(reason.split(" à ")[1].removesuffix(" km").replace(",", "."))
                true_km = geodesic_m(delivered.location, amap.location) / 1000
                assert km == pytest.approx(true_km, abs=0.05 if true_km < 10 else 0.5)
                assert km <= 15
        assert math.isfinite(match.score)
