"""Re-mask every farm with the keyed mask (geo.masking version 2).

Version 1 drew the offset from sha256(seed) with a public seed: every stored public point gave
back its farm's exact point. Each one is recomputed here with LOCATION_MASK_KEY, so no public
point stays derivable from public data. The seed rule and the coarse precisions are copied
here (frozen), the algorithm is called by its version's name. There is no way back.
"""

from django.conf import settings
from django.db import migrations
from psycopg import sql

from geo.masking import LandOutlines, mask_lonlat_v2

BATCH = 5000
COARSE = {"commune", "postal_code"}  # LocationPrecision: the commune's point, nothing to mask


def _seed(source, external_id, name, commune_id):
    return f"{source}:{external_id}" if external_id else f"{name}:{commune_id}"


def remask_farms(apps, schema_editor):
    Farm = apps.get_model("directory", "Farm")
    connection = schema_editor.connection
    farm_table = sql.Identifier(Farm._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            sql.SQL(
                """
                SELECT id, ST_X(location::geometry), ST_Y(location::geometry), location_precision,
                       source, external_id, name, commune_id
                FROM {farm} WHERE location IS NOT NULL ORDER BY id
                """
            ).format(farm=farm_table)
        )
        rows = cursor.fetchall()
    if not rows:
        return
    land = LandOutlines.from_models(apps.get_model("geo", "Department"), apps.get_model("geo", "Commune"))
    key = settings.LOCATION_MASK_KEY
    points = []
    for pk, lon, lat, precision, source, external_id, name, commune_id in rows:
        if precision in COARSE:
            points.append((pk, lon, lat))
            continue
        inside = land.inside(lon=lon, lat=lat, commune_code=commune_id)
        points.append(
            (pk, *mask_lonlat_v2(lon, lat, seed=_seed(source, external_id, name, commune_id), key=key, inside=inside))
        )
    update = sql.SQL(
        """
        UPDATE {farm} AS f
        SET public_location = ST_SetSRID(ST_MakePoint(v.lon, v.lat), 4326)::geography, updated_at = now()
        FROM unnest(%s::bigint[], %s::float8[], %s::float8[]) AS v(id, lon, lat)
        WHERE f.id = v.id
        """
    ).format(farm=farm_table)
    with connection.cursor() as cursor:
        for start in range(0, len(points), BATCH):
            batch = points[start : start + BATCH]
            # updated_at moves: cached maps and tiles (versioned by the latest change) drop the old points.
            cursor.execute(update, [[p[0] for p in batch], [p[1] for p in batch], [p[2] for p in batch]])


class Migration(migrations.Migration):
    dependencies = [
        ("directory", "0006_farm_delivery_radius_unknown"),
        ("geo", "0001_initial"),
    ]

    operations = [migrations.RunPython(remask_farms, migrations.RunPython.noop, elidable=False)]
