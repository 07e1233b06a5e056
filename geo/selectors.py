"""Reads on France's territories."""

from collections.abc import Sequence

from django.contrib.gis.db.models.functions import Distance, GeometryDistance
from django.contrib.gis.geos import Point
from django.contrib.gis.measure import D
from django.db import connection
from psycopg import sql

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


# --- many points at once (an import checks its rows a chunk at a time) ----------------------

LonLat = tuple[float, float]


def commune_distances_m(*, pairs: Sequence[tuple[str, float, float]]) -> dict[tuple[str, float, float], float | None]:
    """For each (INSEE code, lon, lat): metres from the point to that commune's outline (0 inside), in one query.

    The distance is the one `Distance("geom", point)` gives (`ST_DistanceSphere`); None when the
    code is unknown or the commune has no outline. A point inside the outline is found first with
    the planar test, about twice as fast, and the same answer at a commune's scale.
    """
    if not pairs:
        return {}
    codes, lons, lats = (list(column) for column in zip(*pairs, strict=True))
    query = sql.SQL(
        """
        SELECT v.i, CASE WHEN ST_Intersects(c.geom, v.pt) THEN 0 ELSE ST_DistanceSphere(c.geom, v.pt) END
        FROM (
            SELECT i, code, ST_SetSRID(ST_MakePoint(lon, lat), 4326) AS pt
            FROM unnest(%s::text[], %s::float8[], %s::float8[]) WITH ORDINALITY AS u(code, lon, lat, i)
        ) AS v
        JOIN {commune} AS c ON c.code = v.code
        """
    ).format(commune=sql.Identifier(Commune._meta.db_table))
    with connection.cursor() as cursor:
        cursor.execute(query, [codes, lons, lats])
        found = dict(cursor.fetchall())
    return {pair: found.get(i) for i, pair in enumerate(pairs, start=1)}


def communes_at_points(*, points: Sequence[LonLat]) -> dict[LonLat, Commune | None]:
    """`commune_at_point` for many (lon, lat) points in a few queries (outlines of the geometry deferred)."""
    points = list(dict.fromkeys(points))
    if not points:
        return {}
    table = sql.Identifier(Commune._meta.db_table)
    lons, lats = [p[0] for p in points], [p[1] for p in points]
    # The first commune by name whose outline holds the point, as `.first()` on the default ordering.
    inside = sql.SQL(
        """
        SELECT v.i, (
            SELECT c.code FROM {commune} AS c
            WHERE c.kind = %s AND ST_Intersects(c.geom, ST_SetSRID(ST_MakePoint(v.lon, v.lat), 4326))
            ORDER BY c.name, c.code LIMIT 1
        )
        FROM unnest(%s::float8[], %s::float8[]) WITH ORDINALITY AS v(lon, lat, i)
        """
    ).format(commune=table)
    # <-> walks the GiST index on the outlines; ST_DistanceSphere (metres) keeps far-off sea points out.
    nearest = sql.SQL(
        """
        SELECT v.i, n.code, n.metres
        FROM unnest(%s::float8[], %s::float8[]) WITH ORDINALITY AS v(lon, lat, i)
        CROSS JOIN LATERAL (
            SELECT c.code, ST_DistanceSphere(c.geom, ST_SetSRID(ST_MakePoint(v.lon, v.lat), 4326)) AS metres
            FROM {commune} AS c
            WHERE c.kind = %s AND c.geom IS NOT NULL
            ORDER BY c.geom <-> ST_SetSRID(ST_MakePoint(v.lon, v.lat), 4326)
            LIMIT 1
        ) AS n
        """
    ).format(commune=table)
    codes: dict[int, str] = {}
    with connection.cursor() as cursor:
        cursor.execute(inside, [Commune.Kind.COMMUNE, lons, lats])
        codes.update((i, code) for i, code in cursor.fetchall() if code is not None)
        outside = [i for i in range(1, len(points) + 1) if i not in codes]
        if outside:
            cursor.execute(
                nearest,
                [[lons[i - 1] for i in outside], [lats[i - 1] for i in outside], Commune.Kind.COMMUNE],
            )
            limit_m = D(km=COAST_TOLERANCE_KM).m
            for j, code, metres in cursor.fetchall():
                if metres is not None and metres <= limit_m:
                    codes[outside[j - 1]] = code
    communes = Commune.objects.defer("geom").in_bulk(set(codes.values()))
    return {point: communes.get(codes.get(i)) for i, point in enumerate(points, start=1)}
