"""The public pages' data version: one counter, bumped when a transaction that changed the data commits.

Anonymous visitors' pages are kept whole in the cache under this version (directory.page_cache). Database
triggers rather than Django signals, so that bulk writes (imports, `load_demo`, `QuerySet.update`, SQL)
bump it too. The row-level triggers are deferred to the commit and bump once per transaction: a long
import holds the counter's row lock only while it commits, never while it runs, and the new version
becomes visible together with the data (a reader that reads the version before the data never files
old data under a new version).
"""

from django.db import migrations

# The tables public pages show (contracts adds its own in its migration 0005).
TABLES = [
    "directory_productcategory",
    "directory_network",
    "directory_network_regions",
    "directory_network_departments",
    "directory_amap",
    "directory_amap_products",
    "directory_amap_networks",
    "directory_farm",
    "directory_farm_products",
    "directory_farm_networks",
    "directory_partnership",
]

FUNCTION = """
CREATE TABLE directory_public_version (
    id smallint PRIMARY KEY CHECK (id = 1),
    version bigint NOT NULL,
    changed_at timestamptz NOT NULL
);
INSERT INTO directory_public_version VALUES (1, 1, now());
CREATE FUNCTION directory_public_version_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Once per transaction: the flag set_config(..., true) sets lasts until the transaction ends.
    IF current_setting('atlas.public_version_bumped', true) IS DISTINCT FROM 'on' THEN
        PERFORM set_config('atlas.public_version_bumped', 'on', true);
        INSERT INTO directory_public_version AS v (id, version, changed_at) VALUES (1, 1, now())
        ON CONFLICT (id) DO UPDATE SET version = v.version + 1, changed_at = now();
    END IF;
    RETURN NULL;
END $$;
"""


def triggers_sql(table: str) -> str:
    return f"""
CREATE CONSTRAINT TRIGGER {table}_public_version AFTER INSERT OR UPDATE OR DELETE ON {table}
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION directory_public_version_bump();
CREATE TRIGGER {table}_public_version_truncate AFTER TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION directory_public_version_bump();
"""


def drop_triggers_sql(table: str) -> str:
    return f"""
DROP TRIGGER IF EXISTS {table}_public_version ON {table};
DROP TRIGGER IF EXISTS {table}_public_version_truncate ON {table};
"""


class Migration(migrations.Migration):
    dependencies = [
        ("directory", "0011_history_verification"),
    ]

    operations = [
        migrations.RunSQL(
            FUNCTION + "".join(triggers_sql(table) for table in TABLES),
            "".join(drop_triggers_sql(table) for table in TABLES)
            + "DROP FUNCTION directory_public_version_bump(); DROP TABLE directory_public_version;",
        ),
    ]
