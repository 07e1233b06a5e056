"""Writes on networks: creating an (emerging) network with its territory.

A territory is a set of départements and/or régions, or a drawn polygon uploaded as GeoJSON.
The polygon is validated and repaired (GEOS MakeValid) before it is stored; one that is empty,
not a polygon, not in longitude/latitude or outside France is refused with a message a
network's volunteer understands.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable

from django.contrib.gis.geos import GEOSException, GEOSGeometry, MultiPolygon, Polygon
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils.text import slugify
from django.utils.translation import gettext as _

from geo.coordinates import in_france
from geo.models import Department, Region

from .importing.geometry import GeometryInvalid, GeometryMissing, check_geojson_structure
from .models import Network

MAX_VERTICES = 200_000
POLYGON_TYPES = {"Polygon", "MultiPolygon"}


def _geometries(document) -> list[dict]:
    """The geometry objects of a GeoJSON document (FeatureCollection, Feature or geometry)."""
    if not isinstance(document, dict) or "type" not in document:
        raise ValidationError(_("Ce n'est pas un objet GeoJSON (il manque « type »)."))
    kind = document["type"]
    if kind == "FeatureCollection":
        features = document.get("features") or []
        geometries = [g for f in features if isinstance(f, dict) for g in _geometries(f)]
        return geometries
    if kind == "Feature":
        geometry = document.get("geometry")
        return [geometry] if geometry else []
    if kind == "GeometryCollection":
        return [g for item in document.get("geometries") or [] for g in _geometries(item)]
    return [document]


def _check_crs(document) -> None:
    crs = document.get("crs") if isinstance(document, dict) else None
    if not crs:
        return
    name = str((crs.get("properties") or {}).get("name", "")).upper()
    if not any(token in name for token in ("CRS84", "4326")):
        raise ValidationError(
            _(
                "Le GeoJSON est dans un autre système de coordonnées (%(crs)s) : "
                "exportez-le en longitude/latitude WGS84."
            )
            % {"crs": name or "?"}
        )


def _coordinates(value) -> Iterable[tuple[float, float]]:
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], (int, float)):
        yield float(value[0]), float(value[1]) if len(value) > 1 else math.nan
        return
    if isinstance(value, (list, tuple)):
        for item in value:
            yield from _coordinates(item)


def territory_from_geojson(*, source) -> MultiPolygon:
    """A valid WGS84 MultiPolygon inside France from GeoJSON text, bytes or dict; ValidationError else."""
    if isinstance(source, (bytes, str)):
        try:
            document = json.loads(source)
        except (ValueError, RecursionError) as error:
            raise ValidationError(_("Le fichier n'est pas du GeoJSON lisible (JSON invalide).")) from error
    else:
        document = source
    _check_crs(document)
    geometries = _geometries(document)
    if not geometries:
        raise ValidationError(_("Le GeoJSON ne contient aucune géométrie."))
    kinds = sorted({str(g.get("type")) for g in geometries if isinstance(g, dict)})
    if any(kind not in POLYGON_TYPES for kind in kinds):
        raise ValidationError(
            _("Le territoire doit être un polygone ; reçu : %(kinds)s.") % {"kinds": ", ".join(kinds)}
        )
    for geometry in geometries:
        try:
            check_geojson_structure(geometry)
        except GeometryMissing:
            continue
        except GeometryInvalid as error:
            raise ValidationError(_("Le polygone est mal formé : %(reason)s.") % {"reason": error}) from error
    points = [xy for g in geometries for xy in _coordinates(g.get("coordinates"))]
    if not points:
        raise ValidationError(_("Le polygone est vide."))
    if len(points) > MAX_VERTICES:
        raise ValidationError(
            _("Le polygone a trop de sommets (%(n)s, au plus %(max)s) : simplifiez-le.")
            % {"n": len(points), "max": MAX_VERTICES}
        )
    if any(not (math.isfinite(x) and math.isfinite(y)) for x, y in points):
        raise ValidationError(_("Le polygone contient des coordonnées non numériques (NaN ou infini)."))
    if any(abs(x) > 180 or abs(y) > 90 for x, y in points):
        raise ValidationError(
            _(
                "Les coordonnées sortent des longitudes/latitudes possibles : le fichier est sans doute en mètres "
                "(Lambert-93) ; exportez-le en WGS84 (EPSG:4326)."
            )
        )
    polygons: list[Polygon] = []
    try:
        for geometry in geometries:
            geos = GEOSGeometry(json.dumps(geometry), srid=4326)
            if not geos.valid:
                geos = geos.make_valid()
            polygons.extend(_polygonal_parts(geos))
    except (GEOSException, ValueError, TypeError) as error:
        # GEOS's own words (« Error encountered checking Geometry… ») mean nothing to a volunteer.
        raise ValidationError(
            _(
                "Le polygone est illisible : chaque contour doit compter au moins 4 points et se refermer "
                "(le dernier point égal au premier). Redessinez-le, ou exportez-le à nouveau en GeoJSON."
            )
        ) from error
    polygons = [p for p in polygons if not p.empty and p.area > 0]
    if not polygons:
        raise ValidationError(_("Le polygone est vide ou sans surface (tous ses points sont alignés)."))
    territory = MultiPolygon(polygons, srid=4326)
    if not territory.valid:
        territory = MultiPolygon(_polygonal_parts(territory.unary_union.make_valid()), srid=4326)
    if not territory.valid or territory.empty:
        raise ValidationError(_("Le polygone n'a pas pu être réparé : dessinez-le à nouveau."))
    _check_in_france(territory)
    return territory


def _polygonal_parts(geometry) -> list[Polygon]:
    if geometry.geom_type == "Polygon":
        return [geometry]
    if geometry.geom_type in {"MultiPolygon", "GeometryCollection"}:
        return [part for item in geometry for part in _polygonal_parts(item)]
    return []  # lines and points left by a repair carry no surface


def _communes_inside(territory) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM geo_commune "
            "WHERE point IS NOT NULL AND ST_Intersects(ST_GeomFromEWKB(%s), point::geometry)",
            [bytes(territory.ewkb)],
        )
        return int(cursor.fetchone()[0])


def _check_in_france(territory: MultiPolygon) -> None:
    if _communes_inside(territory):
        return
    centroid = territory.centroid
    if not in_france(centroid.x, centroid.y) and in_france(centroid.y, centroid.x):
        raise ValidationError(
            _(
                "Le polygone est hors de France : latitude et longitude semblent inversées "
                "(attendu : longitude, latitude)."
            )
        )
    raise ValidationError(_("Le polygone ne contient aucune commune française : vérifiez le fichier."))


def _unique_slug(name: str) -> str:
    base = slugify(name)[:90] or "reseau"
    slug, n = base, 2
    while Network.objects.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


@transaction.atomic
def network_create(
    *,
    name: str,
    level: str = Network.Level.REGIONAL,
    status: str = Network.Status.EMERGING,
    department_codes: Iterable[str] = (),
    region_codes: Iterable[str] = (),
    territory_geojson=None,
    description: str = "",
    slug: str | None = None,
    admin=None,
) -> Network:
    """Create a network with its territory; ValidationError({field: [message]}) on bad input."""
    errors: dict[str, list[str]] = {}
    name = (name or "").strip()
    if not name:
        errors["name"] = [_("Donnez un nom au réseau.")]
    if level not in Network.Level.values:
        errors["level"] = [_("Échelon inconnu : %(level)s") % {"level": level}]
    if status not in Network.Status.values:
        errors["status"] = [_("Statut inconnu : %(status)s") % {"status": status}]
    department_codes = sorted(set(department_codes))
    region_codes = sorted(set(region_codes))
    departments = list(Department.objects.filter(code__in=department_codes))
    regions = list(Region.objects.filter(code__in=region_codes))
    if len(departments) != len(department_codes):
        unknown = sorted(set(department_codes) - {d.code for d in departments})
        errors["departments"] = [_("Départements inconnus : %(codes)s") % {"codes": ", ".join(unknown)}]
    if len(regions) != len(region_codes):
        unknown = sorted(set(region_codes) - {r.code for r in regions})
        errors["regions"] = [_("Régions inconnues : %(codes)s") % {"codes": ", ".join(unknown)}]
    territory = None
    if territory_geojson:
        try:
            territory = territory_from_geojson(source=territory_geojson)
        except ValidationError as error:
            errors["territory"] = error.messages
    elif not department_codes and not region_codes:
        errors["territory"] = [_("Choisissez au moins une région, un département, ou fournissez un polygone.")]
    if slug is not None and Network.objects.filter(slug=slug).exists():
        errors["slug"] = [_("Cet identifiant est déjà pris : %(slug)s") % {"slug": slug}]
    if errors:
        raise ValidationError(errors)
    network = Network.objects.create(
        name=name,
        slug=slug or _unique_slug(name),
        level=level,
        status=status,
        custom_territory=territory,
        description=description,
    )
    network.departments.set(departments)
    network.regions.set(regions)
    if admin is not None:
        network.admins.add(admin)
    return network
