"""Load the product taxonomy (fixtures/product_categories.json); re-running updates it."""

import json
from pathlib import Path

from django.db import migrations

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "product_categories.json"


def load_categories(apps, schema_editor):
    ProductCategory = apps.get_model("directory", "ProductCategory")
    for position, row in enumerate(json.loads(FIXTURE.read_text(encoding="utf-8"))):
        ProductCategory.objects.update_or_create(
            slug=row["slug"],
            defaults={
                "name": row["name"],
                "family": row["family"],
                "aliases": row["aliases"],
                "position": position,
            },
        )


class Migration(migrations.Migration):
    dependencies = [("directory", "0001_initial")]
    operations = [migrations.RunPython(load_categories, migrations.RunPython.noop)]
