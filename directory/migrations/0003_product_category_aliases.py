"""Re-sync the product taxonomy's aliases from fixtures/product_categories.json (additive)."""

import json
from pathlib import Path

from django.db import migrations

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "product_categories.json"


def sync_aliases(apps, schema_editor):
    ProductCategory = apps.get_model("directory", "ProductCategory")
    for position, row in enumerate(json.loads(FIXTURE.read_text(encoding="utf-8"))):
        category, created = ProductCategory.objects.get_or_create(
            slug=row["slug"],
            defaults={"name": row["name"], "family": row["family"], "aliases": row["aliases"], "position": position},
        )
        if not created:
            # Keep aliases someone added in the admin; add the fixture's new ones.
            merged = list(dict.fromkeys([*category.aliases, *row["aliases"]]))
            if merged != category.aliases:
                category.aliases = merged
                category.save(update_fields=["aliases"])


class Migration(migrations.Migration):
    dependencies = [("directory", "0002_product_categories")]
    operations = [migrations.RunPython(sync_aliases, migrations.RunPython.noop)]
