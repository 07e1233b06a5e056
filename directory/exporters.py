"""Write the directory out as GeoJSON or CSV, in the column names the importer reads back.

Features are built by PostGIS (`json_build_object`, `ST_AsGeoJSON`) and streamed through a
server-side cursor, so a 100k-AMAP export never holds the directory in Python.

Farms leave with their public (masked) point only, never the exact one, and without their
address, e-mail or phone: those stay private.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TextIO

from django.db import connection, transaction

from .csv_export import csv_writer
from .models import Amap, LocationPrecision

FORMATS = ("geojson", "csv")
KINDS = ("amap", "farm", "partnership")

_WEEKDAY_NAMES = ["Lundi", "Mardi", "Mercredi", "Jeudi", "Vendredi", "Samedi", "Dimanche"]
_STATUS_WORDS = {"active": "actif", "closed": "fermé", "dormant": "en sommeil", "creating": "en création"}
_FREQUENCY_WORDS = {
    "weekly": "chaque semaine",
    "fortnightly": "toutes les deux semaines",
    "monthly": "chaque mois",
    "other": "autre",
}
_ACCEPTING_WORDS = {"open": "ouvert", "waiting_list": "liste d'attente", "full": "complet", "unknown": ""}
_KIND_WORDS = {k.value: str(k.label) for k in Amap.Kind}
_COARSE = [LocationPrecision.COMMUNE.value, LocationPrecision.POSTAL_CODE.value]


def _case(column: str, words: dict[str, str]) -> tuple[str, list[str]]:
    """A CASE expression mapping stored codes to French words, with its parameters."""
    parts, params = [], []
    for code, word in words.items():
        parts.append("WHEN %s THEN %s")
        params.extend([code, word])
    return f"CASE {column} {' '.join(parts)} ELSE '' END", params


def _hhmm(column: str) -> str:
    return f"to_char({column}, 'HH24\"h\"MI')"


@dataclass(frozen=True)
class _Column:
    name: str
    sql: str
    params: tuple = ()


def _products(table: str, owner: str, alias: str) -> _Column:
    # Constant table and column names only (S608 is about values, which never appear here).
    return _Column(
        "produits",
        f"COALESCE((SELECT string_agg(p.slug, '|' ORDER BY p.position, p.slug) FROM {table} link "  # noqa: S608
        f"JOIN directory_productcategory p ON p.id = link.productcategory_id WHERE link.{owner} = {alias}.id), '')",
    )


def _amap_columns() -> list[_Column]:
    status_sql, status_params = _case("a.status", _STATUS_WORDS)
    frequency_sql, frequency_params = _case("a.delivery_frequency", _FREQUENCY_WORDS)
    accepting_sql, accepting_params = _case("a.accepting_members", _ACCEPTING_WORDS)
    kind_sql, kind_params = _case("a.kind", _KIND_WORDS)
    return [
        _Column("id", "CASE WHEN a.external_id <> '' THEN a.external_id ELSE 'atlas-' || a.id END"),
        _Column("nom", "a.name"),
        _Column("type", kind_sql, tuple(kind_params)),
        _Column("etat", status_sql, tuple(status_params)),
        _Column("adresse", "a.address"),
        _Column("code_postal", "a.postal_code"),
        _Column("ville", "COALESCE(c.name, '')"),
        _Column("insee", "COALESCE(a.commune_id, '')"),
        _Column("lat", "ST_Y(a.location::geometry)"),
        _Column("lon", "ST_X(a.location::geometry)"),
        _Column("precision", "a.location_precision"),
        _Column(
            "jour",
            "array_to_string(ARRAY(SELECT (%s::text[])[d] FROM unnest(a.delivery_weekdays) AS d ORDER BY d), ' + ')",
            (_WEEKDAY_NAMES,),
        ),
        _Column(
            "horaire",
            f"CASE WHEN a.delivery_start IS NULL THEN '' WHEN a.delivery_end IS NULL THEN {_hhmm('a.delivery_start')} "
            f"ELSE {_hhmm('a.delivery_start')} || '-' || {_hhmm('a.delivery_end')} END",
        ),
        _Column("frequence", frequency_sql, tuple(frequency_params)),
        _Column("precisions_livraison", "a.delivery_notes"),
        _products("directory_amap_products", "amap_id", "a"),
        _Column("nouveaux_membres", accepting_sql, tuple(accepting_params)),
        _Column("plateforme", "a.platform"),
        _Column("site_web", "a.website"),
        _Column("email", "a.contact_email"),  # the AMAP's public contact address
        _Column("telephone", "a.phone"),
        _Column("date_creation", "COALESCE(to_char(a.founded_on, 'YYYY-MM-DD'), '')"),
        _Column("rna_id", "a.rna_id"),
        _Column("description", "a.description"),
        _Column("source", "a.source"),
    ]


def _farm_columns() -> list[_Column]:
    return [
        _Column("id", "CASE WHEN f.external_id <> '' THEN f.external_id ELSE 'atlas-' || f.id END"),
        _Column("nom", "f.name"),
        _Column("actif", "CASE WHEN f.is_active THEN 'oui' ELSE 'non' END"),
        _Column("code_postal", "f.postal_code"),
        _Column("ville", "COALESCE(c.name, '')"),
        _Column("insee", "COALESCE(f.commune_id, '')"),
        # Public point only: the exact location never leaves the database.
        _Column("lat", "ST_Y(f.public_location::geometry)"),
        _Column("lon", "ST_X(f.public_location::geometry)"),
        _Column(
            "precision",
            "CASE WHEN f.public_location IS NULL THEN '' "
            "WHEN f.location_precision = ANY(%s) THEN f.location_precision ELSE 'approximatif' END",
            (_COARSE,),
        ),
        _products("directory_farm_products", "farm_id", "f"),
        _Column("produits_detail", "f.product_details"),
        _Column("labels", "array_to_string(f.labels, '|')"),
        _Column("rayon_livraison_km", "f.delivery_radius_km"),
        _Column("site_web", "f.website"),
        _Column("description", "f.description"),
        _Column("source", "f.source"),
    ]


def _partnership_columns() -> list[_Column]:
    return [
        _Column("amap_id", "CASE WHEN a.external_id <> '' THEN a.external_id ELSE 'atlas-' || a.id END"),
        _Column("amap", "a.name"),
        _Column("producteur_id", "CASE WHEN f.external_id <> '' THEN f.external_id ELSE 'atlas-' || f.id END"),
        _Column("producteur", "f.name"),
        _Column("produits", "p.slug"),
        _Column("depuis", "COALESCE(to_char(s.since, 'YYYY-MM-DD'), '')"),
        _Column("jusqu_au", "COALESCE(to_char(s.until, 'YYYY-MM-DD'), '')"),
        _Column("actif", "CASE WHEN s.is_active THEN 'oui' ELSE 'non' END"),
        _Column("source", "s.source"),
    ]


_FROM = {
    "amap": ("directory_amap a LEFT JOIN geo_commune c ON c.code = a.commune_id", "a", "a.location", "a.name, a.id"),
    "farm": (
        "directory_farm f LEFT JOIN geo_commune c ON c.code = f.commune_id",
        "f",
        "f.public_location",
        "f.name, f.id",
    ),
    "partnership": (
        "directory_partnership s JOIN directory_amap a ON a.id = s.amap_id JOIN directory_farm f ON f.id = s.farm_id "
        "JOIN directory_productcategory p ON p.id = s.product_id",
        "s",
        None,
        "a.name, a.id, f.name, f.id, p.position",
    ),
}
_COLUMNS = {"amap": _amap_columns, "farm": _farm_columns, "partnership": _partnership_columns}


def export_columns(kind: str) -> list[str]:
    return [column.name for column in _COLUMNS[kind]()]


def _where(kind: str, source: str | None) -> tuple[str, list]:
    if source is None:
        return "", []
    return f" WHERE {_FROM[kind][1]}.source = %s", [source]


def _stream(sql: str, params: list) -> Iterator[tuple]:
    # A server-side cursor (inside a transaction) keeps memory flat whatever the directory's size.
    with transaction.atomic(), connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(2000):
            yield from rows


def _feature_rows(kind: str, *, source: str | None, label: str | None) -> Iterator[str]:
    table, _alias, geometry, order = _FROM[kind]
    columns = _COLUMNS[kind]()
    pairs, params = [], []
    if label is not None:
        pairs.append("'objet', %s")
        params.append(label)
    for column in columns:
        if column.name in {"lat", "lon"}:
            continue  # in the geometry
        pairs.append(f"'{column.name}', {column.sql}")
        params.extend(column.params)
    assert len(pairs) <= 50, "json_build_object takes at most 100 arguments"
    properties = f"json_build_object({', '.join(pairs)})"
    where, where_params = _where(kind, source)
    # Only constant fragments are formatted in; every value travels as a parameter.
    sql = (
        "SELECT json_build_object('type', 'Feature', "  # noqa: S608
        f"'geometry', ST_AsGeoJSON({geometry}::geometry, 9)::json, 'properties', {properties})::text "
        f"FROM {table}{where} ORDER BY {order}"
    )
    for (feature,) in _stream(sql, params + where_params):
        yield feature


def export_geojson(*, out: TextIO, kinds: tuple[str, ...] = ("amap", "farm"), source: str | None = None) -> int:
    """Write a FeatureCollection of AMAPs and/or farms; returns the number of features."""
    if "partnership" in kinds:
        raise ValueError("partnerships have no geometry: export them as CSV")
    label_of = {"amap": "amap", "farm": "ferme"} if len(kinds) > 1 else {}
    out.write('{"type": "FeatureCollection", "features": [\n')
    count = 0
    for kind in kinds:
        for feature in _feature_rows(kind, source=source, label=label_of.get(kind)):
            out.write(("," if count else "") + feature + "\n")
            count += 1
    out.write("]}\n")
    return count


def export_csv(*, out: TextIO, kind: str, source: str | None = None) -> int:
    """Write one CSV table (AMAPs, farms or partnerships) that import_directory reads back."""
    table, _alias, _geometry, order = _FROM[kind]
    columns = _COLUMNS[kind]()
    select = ", ".join(column.sql for column in columns)
    params = [p for column in columns for p in column.params]
    where, where_params = _where(kind, source)
    writer = csv_writer(out)  # text that looks like a formula gets a leading quote; numbers stay numbers
    writer.writerow([column.name for column in columns])
    count = 0
    sql = f"SELECT {select} FROM {table}{where} ORDER BY {order}"  # noqa: S608 (constant fragments only)
    for row in _stream(sql, params + where_params):
        writer.writerow(row)  # None → "", floats written in full (repr) by the csv module
        count += 1
    return count
