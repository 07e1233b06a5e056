"""Farm annonces take their farm's new keyed mask; stored matches measure from public points."""

from django.db import migrations
from django.db.models import OuterRef, Subquery
from psycopg import sql


def annonces_follow_farms(apps, schema_editor):
    # directory 0007 re-masked every farm: a farm annonce still holds the farm's old,
    # derivable public point until it takes the new one.
    Annonce = apps.get_model("matching", "Annonce")
    Farm = apps.get_model("directory", "Farm")
    farms = Farm.objects.filter(pk=OuterRef("farm_id"))
    Annonce.objects.filter(kind="paysan_cherche_amap", farm__location__isnull=False).update(
        location=Subquery(farms.values("location")[:1]),
        public_location=Subquery(farms.values("public_location")[:1]),
    )


def stored_distances_from_public_points(apps, schema_editor):
    # Stored matches (match_all) measured farms at their exact point; the next match_all rewrites
    # them whole (sentences included), this leaves no exact distance in the meantime.
    Match = apps.get_model("matching", "Match")
    Annonce = apps.get_model("matching", "Annonce")
    Farm = apps.get_model("directory", "Farm")
    Amap = apps.get_model("directory", "Amap")
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            sql.SQL(
                """
                UPDATE {match} m SET distance_m = round(ST_Distance(n.public_location, f.public_location)::numeric, -2)
                FROM {annonce} n, {farm} f
                WHERE n.id = m.annonce_id AND f.id = m.farm_id AND f.public_location IS NOT NULL
                """
            ).format(
                match=sql.Identifier(Match._meta.db_table),
                annonce=sql.Identifier(Annonce._meta.db_table),
                farm=sql.Identifier(Farm._meta.db_table),
            )
        )
        cursor.execute(
            sql.SQL(
                """
                UPDATE {match} m SET distance_m = ST_Distance(n.public_location, a.location)
                FROM {annonce} n, {amap} a
                WHERE n.id = m.annonce_id AND a.id = m.amap_id AND n.kind = 'paysan_cherche_amap'
                """
            ).format(
                match=sql.Identifier(Match._meta.db_table),
                annonce=sql.Identifier(Annonce._meta.db_table),
                amap=sql.Identifier(Amap._meta.db_table),
            )
        )


class Migration(migrations.Migration):
    dependencies = [
        ("matching", "0002_match_as_derived_data"),
        ("directory", "0007_farm_keyed_location_mask"),
    ]

    operations = [
        migrations.RunPython(annonces_follow_farms, migrations.RunPython.noop),
        migrations.RunPython(stored_distances_from_public_points, migrations.RunPython.noop),
    ]
