"""Reads on France's territories."""

from django.contrib.gis.db.models.functions import Distance, GeometryDistance
from django.contrib.gis.geos import Point
from django.contrib.gis.measure import D

from .models import Commune

# Simplified coastlines can leave a quay or a beach just outside every polygon.
COAST_TOLERANCE_KM = 3


def commune_at_point(*, point: Point, include_arrondissements: bool = False) -> Commune | None:
    """The commune whose outline contains `point`, else the nearest one within a few km."""
    communes = Commune.objects.all() if include_arrondissements else Commune.objects.municipalities()
    if include_arrondissements:
        # An arrondissement is more precise than its city: try it first.
        inside = communes.filter(geom__intersects=point).order_by("kind").first()  # "ARM" < "COM"
    else:
        inside = communes.filter(geom__intersects=point).first()
    if inside is not None:
        return inside
    # <-> walks the GiST index on the outlines; Distance() (metres) keeps far-off sea points out.
    nearest = (
        communes.exclude(geom=None)
        .order_by(GeometryDistance("geom", point))
        .annotate(distance=Distance("geom", point))
        .first()
    )
    if nearest is not None and nearest.distance <= D(km=COAST_TOLERANCE_KM):
        return nearest
    return None


def commune_by_code(code: str) -> Commune | None:
    return Commune.objects.filter(code=code).first()
