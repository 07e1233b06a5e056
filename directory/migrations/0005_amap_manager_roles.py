"""Give AMAP managers a role (admin or référent), keeping the existing many-to-many table."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("directory", "0004_updated_at_indexes_for_maps"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            # The table, its columns and its unique pair already exist: only Django's view changes.
            state_operations=[
                migrations.CreateModel(
                    name="AmapManager",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        (
                            "amap",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="manager_roles",
                                to="directory.amap",
                                verbose_name="AMAP",
                            ),
                        ),
                        (
                            "user",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="amap_roles",
                                to=settings.AUTH_USER_MODEL,
                                verbose_name="personne",
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "gestionnaire d'AMAP",
                        "verbose_name_plural": "gestionnaires d'AMAP",
                        "db_table": "directory_amap_managers",
                        "unique_together": {("amap", "user")},
                    },
                ),
                migrations.AlterField(
                    model_name="amap",
                    name="managers",
                    field=models.ManyToManyField(
                        blank=True,
                        related_name="managed_amaps",
                        through="directory.AmapManager",
                        to=settings.AUTH_USER_MODEL,
                        verbose_name="gestionnaires",
                    ),
                ),
            ],
            database_operations=[],
        ),
        migrations.AddField(
            model_name="amapmanager",
            name="role",
            field=models.CharField(
                choices=[("admin", "administrateur·rice"), ("referent", "référent·e")],
                default="admin",
                max_length=20,
                verbose_name="rôle",
            ),
        ),
    ]
