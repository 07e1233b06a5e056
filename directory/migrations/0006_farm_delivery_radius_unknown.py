"""A farm's delivery radius may be unknown (null) instead of a default nobody stated."""

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import migrations, models


def forget_default_radius(apps, schema_editor):
    # The importer never read a radius: imported farms still at the former default 30 km
    # never stated one. Farms entered by hand ("manual") and demo farms keep theirs.
    Farm = apps.get_model("directory", "Farm")
    Farm.objects.exclude(source="manual").filter(is_demo=False, delivery_radius_km=30).update(delivery_radius_km=None)


class Migration(migrations.Migration):
    dependencies = [("directory", "0005_amap_manager_roles")]

    operations = [
        migrations.AlterField(
            model_name="farm",
            name="delivery_radius_km",
            field=models.PositiveSmallIntegerField(
                blank=True,
                help_text="Vide : non renseigné.",
                null=True,
                validators=[MinValueValidator(1), MaxValueValidator(500)],
                verbose_name="rayon de livraison (km)",
            ),
        ),
        migrations.RunPython(forget_default_radius, migrations.RunPython.noop),
    ]
