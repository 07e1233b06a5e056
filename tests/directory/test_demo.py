"""The demo directory: labelled, deterministic, in real communes weighted by population."""

from collections import Counter

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from benchmarks.common import ensure_demo, format_value, percentile
from directory.models import Amap, Farm, Network, Partnership
from geo.coordinates import geodesic_distance_m, in_france
from tests.factories import AmapFactory, FarmFactory, NetworkFactory, PartnershipFactory


def load(**options):
    call_command("load_demo", verbosity=0, **options)


def snapshot():
    """What a visitor would see of the demo directory, without database ids."""
    amaps = [
        (
            a.external_id,
            a.name,
            a.commune_id,
            round(a.location.x, 6),
            round(a.location.y, 6),
            tuple(a.delivery_weekdays),
            a.delivery_start,
            a.status,
            a.accepting_members,
            tuple(sorted(p.slug for p in a.products.all())),
            tuple(sorted(n.slug for n in a.networks.all())),
        )
        for a in Amap.objects.filter(is_demo=True).prefetch_related("products", "networks").order_by("external_id")
    ]
    farms = [
        (f.external_id, f.name, f.commune_id, f.location.coords, f.public_location.coords, tuple(f.labels))
        for f in Farm.objects.filter(is_demo=True).order_by("external_id")
    ]
    partnerships = sorted(
        Partnership.objects.filter(amap__is_demo=True).values_list(
            "amap__external_id", "farm__external_id", "product__slug", "since", "until"
        )
    )
    return amaps, farms, partnerships


def test_load_demo_creates_the_requested_directory(db):
    load(amaps=300, farms=400, seed=3)

    assert Amap.objects.filter(is_demo=True).count() == 300
    assert Farm.objects.filter(is_demo=True).count() == 400
    assert Partnership.objects.filter(amap__is_demo=True).count() > 300
    national = Network.objects.get(slug="demo-national")
    assert national.level == Network.Level.NATIONAL
    assert national.amaps.exists()
    emerging = set(Network.objects.filter(status=Network.Status.EMERGING).values_list("regions__name", flat=True))
    assert {"Bourgogne-Franche-Comté", "Centre-Val de Loire"} <= emerging
    assert Network.objects.filter(level=Network.Level.DEPARTMENTAL, departments__code="33").exists()


def test_same_seed_same_directory_other_seed_other_directory(db):
    load(amaps=150, farms=150, seed=7)
    first = snapshot()
    load(amaps=150, farms=150, seed=7, clear=True)
    assert snapshot() == first
    load(amaps=150, farms=150, seed=8, clear=True)
    assert snapshot()[0] != first[0]


def test_demo_rows_say_they_are_demo(db):
    load(amaps=100, farms=100, seed=1)
    for amap in Amap.objects.filter(is_demo=True):
        assert amap.name.endswith("(démo)")
        assert amap.source == "demo"
        assert amap.contact_email.endswith("@example.org")
    for farm in Farm.objects.filter(is_demo=True):
        assert farm.name.endswith("(démo)")
        assert farm.source == "demo"
    assert all(n.name.endswith("(démo)") for n in Network.objects.filter(slug__startswith="demo-"))


def test_every_demo_place_lies_in_or_next_to_its_commune_in_france(db):
    load(amaps=400, farms=400, seed=2)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT max(ST_Distance(a.location, c.geom::geography)) FROM directory_amap a
            JOIN geo_commune c ON c.code = a.commune_id WHERE a.is_demo
            """
        )
        assert cursor.fetchone()[0] < 3000
        cursor.execute(
            """
            SELECT max(ST_Distance(f.location, c.geom::geography)) FROM directory_farm f
            JOIN geo_commune c ON c.code = f.commune_id WHERE f.is_demo
            """
        )
        assert cursor.fetchone()[0] < 4500
    for amap in Amap.objects.filter(is_demo=True):
        assert in_france(amap.location.x, amap.location.y)
        assert amap.commune.kind == "COM"  # Paris, Lyon, Marseille: the city, not the arrondissement


def test_farms_show_only_a_masked_point(db):
    load(amaps=20, farms=200, seed=4)
    for farm in Farm.objects.filter(is_demo=True):
        assert 499 <= geodesic_distance_m(farm.location, farm.public_location) <= 1501


def test_amaps_follow_population_overseas_included(db):
    load(amaps=3000, farms=0, seed=5)
    by_commune = Counter(Amap.objects.filter(is_demo=True).values_list("commune_id", flat=True))
    small_villages = Amap.objects.filter(is_demo=True, commune__population__lt=1000).values_list(
        "commune_id", flat=True
    )
    busiest_village = max(Counter(small_villages).values(), default=0)
    # Paris 2.1 M inhabitants, Marseille 0.9 M, Lyon 0.5 M out of 68 M: about 90, 40 and 20 of 3,000.
    assert by_commune["75056"] > 50
    assert by_commune["13055"] > 20
    assert by_commune["69123"] > 8
    assert busiest_village <= 2
    overseas = Amap.objects.filter(is_demo=True, commune__department__code__startswith="97").count()
    assert 40 < overseas < 160  # 2.2 M of 68 M people live overseas
    # Paris's AMAPs are spread over its arrondissements, not stacked on the town hall.
    paris = Amap.objects.filter(is_demo=True, commune_id="75056")
    assert len({a.postal_code for a in paris}) > 10


def test_products_days_and_statuses_look_like_amaps(db):
    load(amaps=1000, farms=600, seed=6)
    amaps = Amap.objects.filter(is_demo=True)
    assert amaps.filter(products__slug="legumes").count() > 900
    assert 300 < amaps.filter(products__slug="oeufs").count() < 900
    weekdays = Counter(day for days in amaps.values_list("delivery_weekdays", flat=True) for day in days)
    assert weekdays[2] + weekdays[3] + weekdays[4] > 0.6 * sum(weekdays.values())
    assert weekdays[6] > 50  # Saturday mornings
    for amap in amaps.exclude(delivery_start=None):
        assert 9 <= amap.delivery_start.hour <= 19
        assert amap.delivery_end > amap.delivery_start
        if amap.delivery_weekdays == [6]:
            assert amap.delivery_start.hour < 12
    statuses = Counter(amaps.values_list("status", flat=True))
    assert statuses["active"] > 800
    assert 0 < statuses["closed"] < 100
    assert 0 < statuses["dormant"] < 100
    for amap in amaps.filter(status="closed"):
        assert amap.closed_on >= (amap.founded_on or amap.closed_on)
    founded = [d.year for d in amaps.exclude(founded_on=None).values_list("founded_on", flat=True)]
    assert min(founded) >= 2001 and max(founded) <= 2025
    assert len(set(amaps.values_list("accepting_members", flat=True))) == 4
    students = amaps.filter(kind=Amap.Kind.STUDENT)
    assert students.exists()
    assert all(a.name.startswith("AMAP étudiante") for a in students)


def test_partners_are_nearby_farms_producing_the_product(db):
    load(amaps=300, farms=1500, seed=9)
    partnerships = Partnership.objects.filter(amap__is_demo=True).select_related("amap", "farm", "product")
    assert partnerships.count() > 300
    for partnership in partnerships[:300]:
        assert partnership.farm.products.filter(pk=partnership.product_id).exists()
        assert partnership.amap.products.filter(pk=partnership.product_id).exists()
        distance = geodesic_distance_m(partnership.amap.location, partnership.farm.location)
        assert distance <= partnership.farm.delivery_radius_km * 1000 * 1.01
        if partnership.until:
            assert not partnership.is_active
            assert partnership.until >= partnership.since


def test_clear_removes_only_demo_rows(db):
    real_amap = AmapFactory(name="AMAP réelle")
    real_farm = FarmFactory(name="Ferme réelle")
    PartnershipFactory(amap=real_amap, farm=real_farm)
    real_network = NetworkFactory(name="Réseau réel", slug="reseau-reel")
    load(amaps=50, farms=50, seed=1)
    real_amap.networks.add(Network.objects.get(slug="demo-national"))

    load(clear=True)

    assert not Amap.objects.filter(is_demo=True).exists()
    assert not Farm.objects.filter(is_demo=True).exists()
    assert not Network.objects.filter(slug__startswith="demo-").exists()
    assert list(Amap.objects.values_list("name", flat=True)) == ["AMAP réelle"]
    assert list(Farm.objects.values_list("name", flat=True)) == ["Ferme réelle"]
    assert Partnership.objects.filter(amap=real_amap, farm=real_farm).exists()
    assert Network.objects.filter(pk=real_network.pk).exists()


def test_if_empty_keeps_an_existing_demo_and_a_second_load_needs_clear(db):
    load(amaps=40, farms=30, seed=1)
    load(amaps=80, farms=60, seed=2, if_empty=True)
    assert Amap.objects.filter(is_demo=True).count() == 40
    with pytest.raises(CommandError, match="--clear"):
        load(amaps=80, farms=60, seed=2)
    load(amaps=80, farms=60, seed=2, clear=True)
    assert Amap.objects.filter(is_demo=True).count() == 80


def test_benchmark_ensure_demo_regenerates_only_when_needed(db):
    assert ensure_demo(amaps=30, farms=20, seed=1) is True
    assert ensure_demo(amaps=30, farms=20, seed=1) is False
    assert ensure_demo(amaps=30, farms=20, seed=2) is True
    assert ensure_demo(amaps=35, farms=20, seed=2) is True
    assert Amap.objects.filter(is_demo=True).count() == 35


def test_benchmark_figures_are_readable():
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([5.0], 95) == 5.0
    assert [format_value(v) for v in (17.2345, 0.0012346, 123456.7, 42.0)] == ["17.23", "0.001235", "123457", "42"]
