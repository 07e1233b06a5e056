"""Writes on the directory: upserts used by the importer (and anyone who syncs from a source).

Each upsert finds the objects by their natural key, compares field by field, and writes only
what changed: re-running the same import leaves `updated_at` alone. They take a batch (the
importer's chunk of rows) and write it in a few bulk queries, history rows included: one save()
per row made a 50,000-row import take minutes.
"""

import functools
import operator
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, TypeVar

from django.contrib.gis.geos import GEOSGeometry
from django.db import connection, models, transaction
from django.db.models import FloatField, Func, Q
from django.utils import timezone
from psycopg import sql

from geo.masking import LandOutlines, land_outlines, mask_lonlat
from geo.models import Commune, Department

from .bulk import any_of, copy_history, copy_objects, copy_rows
from .models import COARSE_PRECISIONS, Amap, Farm, Partnership, ProductCategory, farm_mask_seed
from .signals import farm_points_changed, rows_written

T = TypeVar("T", bound=models.Model)

# Below this difference (about 1 cm) two coordinates are the same place.
_COORDINATE_TOLERANCE = 1e-7


class Outcome(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class UpsertResult(Generic[T]):
    obj: T
    outcome: Outcome
    changed: tuple[str, ...] = ()


def _same_value(current: Any, new: Any) -> bool:
    if isinstance(current, GEOSGeometry) or isinstance(new, GEOSGeometry):
        if current is None or new is None:
            return current is None and new is None
        if current.geom_type != new.geom_type or (current.srid or 4326) != (new.srid or 4326):
            return False
        # Each coordinate within the tolerance, in one GEOS call (reading .coords costs one per number).
        return current.equals_exact(new, _COORDINATE_TOLERANCE)
    return current == new


def _apply(obj: models.Model, fields: Mapping[str, Any]) -> list[str]:
    """Set the fields that differ on `obj`; return their names."""
    changed = []
    for name, value in fields.items():
        field = obj._meta.get_field(name)
        if field.is_relation:
            current_id = getattr(obj, field.attname)
            new_id = value.pk if isinstance(value, models.Model) else value
            if current_id != new_id:
                setattr(obj, name, value)
                changed.append(name)
        elif not _same_value(getattr(obj, name), value):
            setattr(obj, name, value)
            changed.append(name)
    return changed


def _check_fields(model: type[models.Model], fields: Iterable[str]) -> None:
    allowed = {f.name for f in model._meta.concrete_fields} - {"id", "source", "external_id", "created_at"}
    unknown = set(fields) - allowed
    if unknown:
        raise ValueError(f"unknown {model.__name__} fields: {sorted(unknown)}")


def _category_ids(slugs: Sequence[str], known: Mapping[str, int]) -> list[int]:
    missing = [slug for slug in slugs if slug not in known]
    if missing:
        raise ValueError(f"unknown product categories: {missing}")
    return [known[slug] for slug in slugs]


@dataclass(frozen=True)
class EntryChange:
    """What a source says of one AMAP or farm: its id there, the fields it gives, its products (None: not said)."""

    external_id: str
    fields: Mapping[str, Any]
    product_slugs: Sequence[str] | None = None


@transaction.atomic(savepoint=False)  # callers (the importer) roll back as a whole
def entries_upsert(
    *, model: type[Amap] | type[Farm], source: str, changes: Sequence[EntryChange]
) -> list[UpsertResult]:
    """Create or update each AMAP (or farm) known as `external_id` in `source`; one result per change, in order.

    Only the given fields are written, and only those that differ (then `updated_at` moves).
    `product_slugs=None` leaves products alone; a list sets them, an AMAP always keeping the
    products of its active partnerships. A batch costs a few queries whatever its size: one to
    find the entries, one insert or update per kind of change, their history rows in bulk. A farm's
    public point is re-masked whenever it is written, as `Farm.save()` does.
    """
    if not changes:
        return []
    for names in {frozenset(change.fields) for change in changes}:
        _check_fields(model, names)
        if "public_location" in names:
            raise ValueError("public_location is computed from location, never written directly")
    ids = [change.external_id for change in changes]
    if len(set(ids)) != len(ids):
        raise ValueError("an entry appears twice in one batch")
    found = model.objects.filter(any_of("external_id", ids), source=source).order_by()
    existing = {obj.external_id: obj for obj in found}
    created: list[Amap | Farm] = []
    updated: dict[tuple[str, ...], list[Amap | Farm]] = defaultdict(list)
    results: list[tuple[Amap | Farm, Outcome, list[str]]] = []
    for change in changes:
        obj = existing.get(change.external_id)
        if obj is None:
            obj = model(source=source, external_id=change.external_id, **change.fields)
            created.append(obj)
            results.append((obj, Outcome.CREATED, []))
            continue
        changed = _apply(obj, change.fields)
        if changed:
            updated[tuple(changed)].append(obj)
        results.append((obj, Outcome.UPDATED if changed else Outcome.UNCHANGED, changed))
    written = [*created, *(obj for objs in updated.values() for obj in objs)]
    if model is Farm:
        land = land_outlines()
        for obj in written:
            obj.public_location = obj.compute_public_location(land=land)
    now = timezone.now()
    copy_objects(model, created)
    copy_history(model, created, history_type="+", when=now)
    for names, objs in updated.items():
        for obj in objs:
            obj.updated_at = now  # what auto_now does on save()
        extra = ["public_location"] if model is Farm else []
        model.objects.bulk_update(objs, [*names, *extra, "updated_at"])
        copy_history(model, objs, history_type="~", when=now)
    products_changed = _entries_products_sync(model, changes, results)
    for obj, outcome, changed in results:
        if obj.pk in products_changed and outcome != Outcome.CREATED:
            changed.append("products")
    if model is Farm and updated:
        # Farm annonces follow their farm's point (matching listens; a bulk update sends no post_save).
        farm_points_changed.send(sender=Farm, farm_ids=[obj.pk for objs in updated.values() for obj in objs])
    touched = {obj.pk for obj in written} | products_changed
    if touched:
        rows_written.send(sender=model, ids=sorted(touched))
    return [
        UpsertResult(obj, Outcome.UPDATED if outcome == Outcome.UNCHANGED and changed else outcome, tuple(changed))
        for obj, outcome, changed in results
    ]


def _entries_products_sync(
    model: type[Amap] | type[Farm], changes: Sequence[EntryChange], results: Sequence[tuple]
) -> set[int]:
    """Set the products the changes name, in three queries at most; the ids of the entries whose products changed."""
    wanted: dict[int, list[str]] = {}
    existing: list[int] = []  # the entries that may have products already (new ones have none)
    for change, (obj, outcome, _changed) in zip(changes, results, strict=True):
        if change.product_slugs is None or (outcome == Outcome.CREATED and not change.product_slugs):
            continue
        wanted[obj.pk] = list(dict.fromkeys(change.product_slugs))
        if outcome != Outcome.CREATED:
            existing.append(obj.pk)
    if not wanted:
        return set()
    field = model._meta.get_field("products")
    through = field.remote_field.through
    own, other = f"{field.m2m_field_name()}_id", f"{field.m2m_reverse_field_name()}_id"
    categories = dict(ProductCategory.objects.values_list("slug", "pk"))
    current: dict[int, set[int]] = defaultdict(set)
    if existing:
        for pk, category in through.objects.filter(any_of(own, existing)).values_list(own, other):
            current[pk].add(category)
    targets = {pk: set(_category_ids(slugs, categories)) for pk, slugs in wanted.items()}
    if model is Amap and existing:
        # An AMAP offers what its active partnerships bring, whatever the file says.
        active = Partnership.objects.filter(any_of("amap_id", existing), is_active=True).order_by()
        for pk, category in active.values_list("amap_id", "product_id"):
            targets[pk].add(category)
    to_add, to_remove = [], []
    for pk, target in targets.items():
        to_add.extend((pk, category) for category in sorted(target - current[pk]))
        if current[pk] - target:
            to_remove.append(Q(**{own: pk, f"{other}__in": sorted(current[pk] - target)}))
    if to_remove:
        through.objects.filter(functools.reduce(operator.or_, to_remove)).delete()
    columns = [through._meta.get_field(name).column for name in (own, other)]
    copy_rows(through._meta.db_table, columns, to_add)
    return {pk for pk, target in targets.items() if target != current[pk]}


@dataclass(frozen=True)
class PartnershipChange:
    """An AMAP ↔ farm partnership for one product, as a source states it."""

    amap: Amap
    farm: Farm
    product: ProductCategory
    since: Any = None
    until: Any = None
    is_active: bool = True


@transaction.atomic(savepoint=False)  # callers (the importer) roll back as a whole
def partnerships_upsert(*, source: str, changes: Sequence[PartnershipChange]) -> list[UpsertResult[Partnership]]:
    """Create or update each AMAP ↔ farm partnership for one product; one result per change, in order.

    `since`/`until` are written when given; an active partnership also lists its product among
    what the AMAP offers. A pair named twice sees its first write, as one call per change would.
    """
    results: list[UpsertResult[Partnership]] = []
    batch: list[PartnershipChange] = []
    keys: set[tuple[int, int, int]] = set()
    for change in changes:
        key = (change.amap.pk, change.farm.pk, change.product.pk)
        if key in keys:
            results.extend(_partnerships_upsert_batch(source, batch))
            batch, keys = [], set()
        batch.append(change)
        keys.add(key)
    results.extend(_partnerships_upsert_batch(source, batch))
    return results


def _partnerships_upsert_batch(source: str, changes: Sequence[PartnershipChange]) -> list[UpsertResult[Partnership]]:
    if not changes:
        return []
    existing = {
        (p.amap_id, p.farm_id, p.product_id): p
        for p in Partnership.objects.filter(
            any_of("amap_id", {c.amap.pk for c in changes}),
            any_of("farm_id", {c.farm.pk for c in changes}),
            any_of("product_id", {c.product.pk for c in changes}),
        ).order_by()
    }
    created: list[Partnership] = []
    updated: dict[tuple[str, ...], list[Partnership]] = defaultdict(list)
    results = []
    for change in changes:
        partnership = existing.get((change.amap.pk, change.farm.pk, change.product.pk))
        if partnership is None:
            partnership = Partnership(
                amap=change.amap,
                farm=change.farm,
                product=change.product,
                source=source,
                since=change.since,
                until=change.until,
                is_active=change.is_active,
            )
            created.append(partnership)
            results.append(UpsertResult(partnership, Outcome.CREATED))
            continue
        wanted: dict[str, Any] = {"is_active": change.is_active}
        if change.since is not None:
            wanted["since"] = change.since
        if change.until is not None:
            wanted["until"] = change.until
        changed = _apply(partnership, wanted)
        if changed:
            updated[tuple(changed)].append(partnership)
        results.append(UpsertResult(partnership, Outcome.UPDATED if changed else Outcome.UNCHANGED, tuple(changed)))
    now = timezone.now()
    copy_objects(Partnership, created)
    copy_history(Partnership, created, history_type="+", when=now)
    for names, objs in updated.items():
        for obj in objs:
            obj.updated_at = now
        Partnership.objects.bulk_update(objs, [*names, "updated_at"])
        copy_history(Partnership, objs, history_type="~", when=now)
    written = [p.pk for p in created] + [p.pk for objs in updated.values() for p in objs]
    if written:
        rows_written.send(sender=Partnership, ids=written)
    # An active partnership also lists its product among what the AMAP offers.
    offered = {(c.amap.pk, c.product.pk) for c in changes if c.is_active}
    if offered:
        through = Amap.products.through
        present = set(
            through.objects.filter(any_of("amap_id", {a for a, _p in offered})).values_list(
                "amap_id", "productcategory_id"
            )
        )
        missing = sorted(offered - present)
        copy_rows(through._meta.db_table, ["amap_id", "productcategory_id"], missing)
        if missing:
            rows_written.send(sender=Amap, ids=sorted({a for a, _p in missing}))
    return results


@dataclass(frozen=True)
class RemaskReport:
    farms: int  # farms with a location
    moved: int  # public points that change


def _x_y(field: str) -> dict:
    """A geography point's longitude and latitude as floats."""
    return {
        f"{field}_lon": Func(field, template="ST_X(%(expressions)s::geometry)", output_field=FloatField()),
        f"{field}_lat": Func(field, template="ST_Y(%(expressions)s::geometry)", output_field=FloatField()),
    }


def farm_remask(*, commit: bool = False, batch_size: int = 5000) -> RemaskReport:
    """Recompute every farm's public point with the current LOCATION_MASK_KEY (a key rotation).

    In Python over plain rows, then one UPDATE per batch from arrays: 100k farms in seconds,
    where a save() per farm would take minutes. `updated_at` moves so that cached maps and tiles
    (their version is the latest change) stop showing the old points.
    """
    land = LandOutlines.from_models(Department, Commune)
    rows = (
        Farm.objects.exclude(location=None)
        .annotate(**_x_y("location"), **_x_y("public_location"))
        .order_by("pk")
        .values_list(
            "pk",
            "location_lon",
            "location_lat",
            "public_location_lon",
            "public_location_lat",
            "location_precision",
            "source",
            "external_id",
            "name",
            "commune_id",
        )
    )
    total = 0
    changes: list[tuple[int, float, float]] = []
    for pk, lon, lat, public_lon, public_lat, precision, source, external_id, name, commune_id in rows.iterator(
        chunk_size=batch_size
    ):
        total += 1
        if precision in COARSE_PRECISIONS:
            new = (lon, lat)  # the commune's point: nothing to mask
        else:
            seed = farm_mask_seed(source=source, external_id=external_id, name=name, commune_id=commune_id)
            new = mask_lonlat(lon, lat, seed=seed, commune_code=commune_id, land=land)
        if public_lon is None or max(abs(new[0] - public_lon), abs(new[1] - public_lat)) > _COORDINATE_TOLERANCE:
            changes.append((pk, *new))
    if commit:
        with transaction.atomic():
            for start in range(0, len(changes), batch_size):
                farm_public_points_store(changes[start : start + batch_size])
    return RemaskReport(farms=total, moved=len(changes))


def farm_public_points_store(rows: Sequence[tuple[int, float, float]]) -> None:
    """Set the public point of each (farm id, lon, lat) in one statement."""
    if not rows:
        return
    ids, lons, lats = (list(column) for column in zip(*rows, strict=True))
    with connection.cursor() as cursor:
        cursor.execute(
            sql.SQL(
                """
                UPDATE {farm} AS f
                SET public_location = ST_SetSRID(ST_MakePoint(v.lon, v.lat), 4326)::geography, updated_at = now()
                FROM unnest(%s::bigint[], %s::float8[], %s::float8[]) AS v(id, lon, lat)
                WHERE f.id = v.id
                """
            ).format(farm=sql.Identifier(Farm._meta.db_table)),
            [ids, lons, lats],
        )
    farm_points_changed.send(sender=Farm, farm_ids=ids)
