"""Writing and deleting demo rows fast: COPY instead of INSERT (`directory.bulk`); SQL deletes that keep Django's
cascade rules."""

from __future__ import annotations

import numpy as np
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.models import CASCADE

from ..bulk import copy_objects, copy_rows  # noqa: F401 (born here; the importer writes with them too)


def copy_columns(model, columns: dict[str, list]) -> int:
    """COPY rows given column by column (field attname → values); other fields take their defaults.

    For the hundreds of thousands of partnerships, where building model instances would
    dominate the run time. Defaults (and auto_now values) come from one template instance.
    """
    lengths = {len(values) for values in columns.values()}
    if len(lengths) != 1:
        raise ValueError("every column needs the same number of values")
    n = lengths.pop()
    if not n:
        return 0
    meta = model._meta
    template = model()
    fields = [f for f in meta.concrete_fields if f is not meta.pk]
    unknown = set(columns) - {f.attname for f in fields}
    if unknown:
        raise ValueError(f"unknown fields {sorted(unknown)}")
    conn = connections[DEFAULT_DB_ALIAS]
    constants = {
        f.attname: f.get_db_prep_save(f.pre_save(template, True), conn) for f in fields if f.attname not in columns
    }
    names = [f.attname for f in fields]
    data = [columns[name] if name in columns else [constants[name]] * n for name in names]
    return copy_rows(meta.db_table, [connection.ops.quote_name(f.column) for f in fields], zip(*data, strict=True))


def through_table(model, field_name: str) -> tuple[str, list[str]]:
    through = model._meta.get_field(field_name).remote_field.through
    fields = [f for f in through._meta.fields if f.is_relation]
    own = next(f for f in fields if f.related_model is model)
    other = next(f for f in fields if f is not own)
    return through._meta.db_table, [own.column, other.column]


def delete_demo_rows(model) -> int:
    """DELETE … WHERE is_demo, with Django's cascade rules, fast on 100,000 rows.

    Rows that only point at demo rows (M2M links, partnerships: anything without dependents of
    its own) go with one SQL statement each; the few demo rows that something richer refers to
    (a match, a message thread…) go through Django's collector, which applies on_delete.
    """
    table = model._meta.db_table
    demo_ids = f"SELECT id FROM {table} WHERE is_demo"  # noqa: S608
    referenced: set[int] = set()
    with connection.cursor() as cursor:
        for m2m in model._meta.local_many_to_many:
            through = m2m.remote_field.through._meta
            column = through.get_field(m2m.m2m_field_name()).column
            cursor.execute(f"DELETE FROM {through.db_table} WHERE {column} IN ({demo_ids})")  # noqa: S608
        for rel in model._meta.related_objects:
            if rel.many_to_many:
                through = rel.through._meta
                column = through.get_field(rel.field.m2m_reverse_field_name()).column
                cursor.execute(f"DELETE FROM {through.db_table} WHERE {column} IN ({demo_ids})")  # noqa: S608
                continue
            related = rel.related_model._meta
            column = rel.field.column
            plain = rel.on_delete is CASCADE and not related.related_objects and not related.many_to_many
            if plain:
                cursor.execute(f"DELETE FROM {related.db_table} WHERE {column} IN ({demo_ids})")  # noqa: S608
            else:
                cursor.execute(f"SELECT DISTINCT {column} FROM {related.db_table} WHERE {column} IN ({demo_ids})")  # noqa: S608
                referenced.update(row[0] for row in cursor.fetchall())
        if referenced:
            model.objects.filter(pk__in=referenced).delete()
        cursor.execute(f"DELETE FROM {table} WHERE is_demo")  # noqa: S608
        return len(referenced) + cursor.rowcount


def matrix_pairs(ids: np.ndarray, matrix: np.ndarray, column_ids: np.ndarray):
    rows, cols = np.nonzero(matrix)
    return zip(ids[rows].tolist(), column_ids[cols].tolist(), strict=True)


def product_matrix(slugs_per_row: list[list[str]], slugs: list[str]) -> np.ndarray:
    position = {slug: i for i, slug in enumerate(slugs)}
    matrix = np.zeros((len(slugs_per_row), len(slugs)), dtype=bool)
    for row, row_slugs in enumerate(slugs_per_row):
        matrix[row, [position[s] for s in row_slugs]] = True
    return matrix
