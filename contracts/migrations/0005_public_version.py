"""An AMAP's public page lists its open contracts: a change to them bumps the public pages' version."""

from django.db import migrations


def _sql(statement: str) -> str:
    return statement.format(table="contracts_contract")


class Migration(migrations.Migration):
    dependencies = [
        ("contracts", "0004_prepared_file"),
        ("directory", "0012_public_version"),
    ]

    operations = [
        migrations.RunSQL(
            _sql(
                """
CREATE CONSTRAINT TRIGGER {table}_public_version AFTER INSERT OR UPDATE OR DELETE ON {table}
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION directory_public_version_bump();
CREATE TRIGGER {table}_public_version_truncate AFTER TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION directory_public_version_bump();
"""
            ),
            _sql(
                """
DROP TRIGGER IF EXISTS {table}_public_version ON {table};
DROP TRIGGER IF EXISTS {table}_public_version_truncate ON {table};
"""
            ),
        ),
    ]
