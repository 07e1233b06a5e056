"""Helpers for the matching tests: places at known geodesic distances, annonces in one call."""

import pytest
from django.contrib.gis.geos import Point
from pyproj import Geod

from directory.models import ProductCategory
from matching import services
from matching.models import Annonce
from tests.factories import UserFactory

GEOD = Geod(ellps="WGS84")


def point_at(origin: Point, *, km: float, azimuth: float = 90.0) -> Point:
    """The point `km` kilometres from `origin` along `azimuth` (pyproj.Geod WGS84, the reference)."""
    lon, lat, _back = GEOD.fwd(origin.x, origin.y, azimuth, km * 1000.0)
    return Point(lon, lat, srid=4326)


def geodesic_m(a: Point, b: Point) -> float:
    return GEOD.inv(a.x, a.y, b.x, b.y)[2]


def products(*slugs: str) -> list[ProductCategory]:
    return [ProductCategory.objects.get(slug=slug) for slug in slugs]


def farm_annonce(farm, *, offered=("oeufs",), radius_km=40, weekdays=(2,), shares=None, user=None) -> Annonce:
    user = user or UserFactory()
    farm.managers.add(user)
    return services.annonce_publish(
        user=user,
        kind=Annonce.Kind.FARM_SEEKS_AMAP,
        farm=farm,
        products=products(*offered),
        radius_km=radius_km,
        delivery_weekdays=list(weekdays),
        shares=shares,
    )


def amap_annonce(amap, *, wanted=("oeufs",), radius_km=50, weekdays=None, shares=None, user=None) -> Annonce:
    user = user or UserFactory()
    amap.managers.add(user)
    return services.annonce_publish(
        user=user,
        kind=Annonce.Kind.AMAP_SEEKS_FARM,
        amap=amap,
        products=products(*wanted),
        radius_km=radius_km,
        delivery_weekdays=list(weekdays) if weekdays else None,
        shares=shares,
    )


@pytest.fixture(autouse=True)
def _estimated_routing(settings):
    """Tests use the drive-time estimate unless they set up their own routing server."""
    settings.ROUTING_BACKEND = "estimate"
    settings.ROUTING_CIRCUITY_FACTOR = 1.3
    settings.ROUTING_SPEED_KMH = 60


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    """The default hasher costs ~0.7 s a user; tests create dozens."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
