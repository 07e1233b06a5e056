"""Issue 12: an AMAP moving its annonce's delivery place and reading the matches cannot locate a farmhouse."""

import numpy as np
import pytest
from django.contrib.gis.geos import Point
from django.urls import reverse
from scipy.optimize import least_squares

from tests.factories import BORDEAUX, LIBOURNE, AmapFactory, FarmFactory

from .conftest import GEOD, amap_annonce, geodesic_m, point_at

pytestmark = pytest.mark.django_db


def trilaterate(circles: list[tuple[float, float, float]], start: tuple[float, float]) -> tuple[float, float]:
    """The (lon, lat) whose geodesic distances best fit the (lon, lat, metres) circles (least squares)."""

    def residuals(p):
        return [GEOD.inv(p[0], p[1], lon, lat)[2] - d for lon, lat, d in circles]

    return tuple(least_squares(residuals, np.array(start), x_scale=[1e-3, 1e-3]).x)


def test_three_delivery_places_and_their_matches_do_not_locate_the_farmhouse(client):
    farm = FarmFactory(name="Ferme des Graves", location=LIBOURNE, products=["oeufs"], delivery_radius_km=60)
    farm.refresh_from_db()
    amap = AmapFactory(location=BORDEAUX, products=[])
    annonce = amap_annonce(amap, wanted=("oeufs",), radius_km=60)
    owner = amap.managers.get()
    client.force_login(owner)

    circles = []
    for azimuth in (0.0, 120.0, 240.0):
        place = point_at(LIBOURNE, km=8, azimuth=azimuth)  # around where the attacker thinks the farm is
        response = client.patch(
            reverse("annonce-detail", args=[annonce.pk]),
            {"delivery_place": f"{place.y:.6f}, {place.x:.6f}"},
            content_type="application/json",
        )
        assert response.status_code == 200, response.json()
        matches = client.get(reverse("annonce-matches", args=[annonce.pk])).json()["results"]
        (found,) = [m for m in matches if (m["counterpart"]["type"], m["counterpart"]["id"]) == ("farm", farm.pk)]
        circles.append((place.x, place.y, found["distance_m"]))

    estimate = Point(*trilaterate(circles, start=(LIBOURNE.x, LIBOURNE.y)), srid=4326)
    # The estimate converges on the public point (to the 100 m rounding), never on the farmhouse.
    assert geodesic_m(farm.location, estimate) >= 400.0
    assert geodesic_m(farm.public_location, estimate) <= 200.0
