"""Writes on the directory: upserts used by the importer (and anyone who syncs from a source).

Each upsert finds the object by its natural key, compares field by field, and saves only
what changed: re-running the same import leaves `updated_at` alone.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, TypeVar

from django.contrib.gis.geos import GEOSGeometry
from django.db import connection, models, transaction
from django.db.models import FloatField, Func
from psycopg import sql

from geo.masking import LandOutlines, mask_lonlat
from geo.models import Commune, Department

from .models import COARSE_PRECISIONS, Amap, Farm, Partnership, ProductCategory, farm_mask_seed
from .signals import farm_points_changed

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
        return all(abs(a - b) <= _COORDINATE_TOLERANCE for a, b in zip(current.coords, new.coords, strict=True))
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


def _check_fields(model: type[models.Model], fields: Mapping[str, Any]) -> None:
    allowed = {f.name for f in model._meta.concrete_fields} - {"id", "source", "external_id", "created_at"}
    unknown = set(fields) - allowed
    if unknown:
        raise ValueError(f"unknown {model.__name__} fields: {sorted(unknown)}")


def _categories(slugs: Sequence[str]) -> list[ProductCategory]:
    found = {c.slug: c for c in ProductCategory.objects.filter(slug__in=slugs)}
    missing = [slug for slug in slugs if slug not in found]
    if missing:
        raise ValueError(f"unknown product categories: {missing}")
    return [found[slug] for slug in slugs]


def _sync_products(obj: Amap | Farm, slugs: set[str]) -> bool:
    current = set(obj.products.values_list("slug", flat=True))
    if current == slugs:
        return False
    obj.products.set(_categories(sorted(slugs)))
    return True


@transaction.atomic(savepoint=False)  # callers (the importer) roll back as a whole
def amap_upsert(
    *, source: str, external_id: str, fields: Mapping[str, Any], product_slugs: Sequence[str] | None = None
) -> UpsertResult[Amap]:
    """Create or update the AMAP known as `external_id` in `source`.

    Only the given fields are written. `product_slugs=None` leaves products alone; a list
    sets them, always keeping the products of the AMAP's active partnerships.
    """
    _check_fields(Amap, fields)
    amap = Amap.objects.filter(source=source, external_id=external_id).first()
    if amap is None:
        amap = Amap(source=source, external_id=external_id, **fields)
        amap.save()
        if product_slugs:
            amap.products.set(_categories(list(dict.fromkeys(product_slugs))))
        return UpsertResult(amap, Outcome.CREATED)
    changed = _apply(amap, fields)
    if changed:
        amap.save(update_fields=[*changed, "updated_at"])
    if product_slugs is not None:
        from_partnerships = set(amap.partnerships.filter(is_active=True).values_list("product__slug", flat=True))
        if _sync_products(amap, set(product_slugs) | from_partnerships):
            changed.append("products")
    return UpsertResult(amap, Outcome.UPDATED if changed else Outcome.UNCHANGED, tuple(changed))


@transaction.atomic(savepoint=False)  # callers (the importer) roll back as a whole
def farm_upsert(
    *, source: str, external_id: str, fields: Mapping[str, Any], product_slugs: Sequence[str] | None = None
) -> UpsertResult[Farm]:
    """Create or update the farm known as `external_id` in `source` (its public point is re-masked on save)."""
    _check_fields(Farm, fields)
    if "public_location" in fields:
        raise ValueError("public_location is computed from location, never written directly")
    farm = Farm.objects.filter(source=source, external_id=external_id).first()
    if farm is None:
        farm = Farm(source=source, external_id=external_id, **fields)
        farm.save()
        if product_slugs:
            farm.products.set(_categories(list(dict.fromkeys(product_slugs))))
        return UpsertResult(farm, Outcome.CREATED)
    changed = _apply(farm, fields)
    if changed:
        farm.save()  # save() recomputes public_location from the new location
    if product_slugs is not None and _sync_products(farm, set(product_slugs)):
        changed.append("products")
    return UpsertResult(farm, Outcome.UPDATED if changed else Outcome.UNCHANGED, tuple(changed))


@transaction.atomic(savepoint=False)  # callers (the importer) roll back as a whole
def partnership_upsert(
    *,
    amap: Amap,
    farm: Farm,
    product: ProductCategory,
    source: str,
    since: Any = None,
    until: Any = None,
    is_active: bool = True,
) -> UpsertResult[Partnership]:
    """Create or update the AMAP ↔ farm partnership for one product.

    An active partnership also lists its product among what the AMAP offers.
    """
    partnership = Partnership.objects.filter(amap=amap, farm=farm, product=product).first()
    if partnership is None:
        partnership = Partnership.objects.create(
            amap=amap, farm=farm, product=product, source=source, since=since, until=until, is_active=is_active
        )
        outcome, changed = Outcome.CREATED, []
    else:
        wanted: dict[str, Any] = {"is_active": is_active}
        if since is not None:
            wanted["since"] = since
        if until is not None:
            wanted["until"] = until
        changed = _apply(partnership, wanted)
        if changed:
            partnership.save(update_fields=[*changed, "updated_at"])
        outcome = Outcome.UPDATED if changed else Outcome.UNCHANGED
    if is_active:
        amap.products.add(product)  # no-op when already there
    return UpsertResult(partnership, outcome, tuple(changed))


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
