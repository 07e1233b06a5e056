import pytest
from django.db import IntegrityError, transaction

from directory.models import Farm
from geo.coordinates import geodesic_distance_m
from tests.factories import AmapFactory, FarmFactory, PartnershipFactory


def test_farm_public_location_is_masked_stable_and_near(db):
    farm = FarmFactory()
    # Masked 500–1,500 m away from the exact point (pyproj geodesic distance).
    offset = geodesic_distance_m(farm.location, farm.public_location)
    assert 500 <= offset <= 1500
    farm.name = "Nouveau nom"
    farm.save()
    farm.refresh_from_db()
    assert geodesic_distance_m(farm.location, farm.public_location) == pytest.approx(offset, abs=0.5)


def test_farm_without_location_has_no_public_location(db):
    farm = FarmFactory(location=None)
    assert farm.public_location is None


def test_same_source_and_external_id_cannot_exist_twice(db):
    AmapFactory(source="gironde", external_id="X1")
    with pytest.raises(IntegrityError), transaction.atomic():
        AmapFactory(source="gironde", external_id="X1")


def test_partnership_is_unique_per_product(db):
    partnership = PartnershipFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        PartnershipFactory(amap=partnership.amap, farm=partnership.farm, product=partnership.product)
    assert Farm.objects.count() == 1
