"""Checking one feature's geometry before anything reads a point from it: a French reason per fault."""

from __future__ import annotations

import math
import re
from typing import Any

GEOJSON_TYPES = ("Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon")

# GEOS's explain_validity() reasons, as a volunteer reads them.
_GEOS_REASONS = {
    "Self-intersection": "le contour se recoupe lui-même",
    "Ring Self-intersection": "un anneau se recoupe lui-même",
    "Too few points": "trop peu de points",
    "Hole lies outside shell": "un trou est en dehors du contour",
    "Nested holes": "des trous sont imbriqués",
    "Interior is disconnected": "l'intérieur est coupé en morceaux",
    "Nested shells": "des contours sont imbriqués",
    "Duplicate Rings": "un anneau est répété",
    "Invalid Coordinate": "une coordonnée n'est pas un nombre fini",
    "Ring is not closed": "un anneau n'est pas fermé",
}


class GeometryMissing(Exception):
    """The feature has no geometry (null or empty): it may still be placed from its other columns."""


class GeometryInvalid(Exception):
    """The feature's geometry is malformed or invalid; the message says why, in French."""


def _position(value: Any, where: str) -> tuple[float, ...]:
    if not isinstance(value, list):
        raise GeometryInvalid(f"{where} : une position doit être une liste [longitude, latitude]")
    if len(value) < 2:
        count = "aucun nombre" if not value else f"{len(value)} nombre"
        raise GeometryInvalid(f"{where} : {count} au lieu de 2 (longitude, latitude)")
    if len(value) > 4:
        raise GeometryInvalid(f"{where} : {len(value)} nombres au lieu de 2 (longitude, latitude)")
    numbers = []
    for number in value:
        if isinstance(number, bool) or not isinstance(number, (int, float)) or not math.isfinite(number):
            raise GeometryInvalid(f"{where} : « {number} » n'est pas un nombre")
        numbers.append(float(number))
    return tuple(numbers)


def _positions(value: Any, where: str, *, minimum: int) -> list[tuple[float, ...]]:
    if not isinstance(value, list):
        raise GeometryInvalid(f"{where} : liste de positions attendue")
    positions = [_position(item, f"{where}, point {i}") for i, item in enumerate(value, start=1)]
    if positions and len(positions) < minimum:
        raise GeometryInvalid(f"{where} : {len(positions)} point(s), il en faut au moins {minimum}")
    return positions


def _rings(value: Any, where: str) -> list[list[tuple[float, ...]]]:
    if not isinstance(value, list):
        raise GeometryInvalid(f"{where} : liste d'anneaux attendue")
    rings = []
    for i, item in enumerate(value, start=1):
        ring_where = f"{where}, anneau {i}"
        ring = _positions(item, ring_where, minimum=4)
        if ring and ring[0][:2] != ring[-1][:2]:
            raise GeometryInvalid(f"{ring_where} non fermé : le dernier point doit répéter le premier")
        rings.append(ring)
    return rings


def _check_coordinates(kind: str, coordinates: Any) -> bool:
    """Raise GeometryInvalid on a malformed structure; True when the geometry holds at least one point."""
    where = "coordonnées"
    if kind == "Point":
        if coordinates == []:
            return False
        _position(coordinates, where)
        return True
    if not isinstance(coordinates, list):
        raise GeometryInvalid(f"{where} : liste attendue pour un {kind}")
    if kind == "MultiPoint":
        return bool(_positions(coordinates, where, minimum=1))
    if kind == "LineString":
        return bool(_positions(coordinates, where, minimum=2))
    if kind == "MultiLineString":
        lines = [_positions(line, f"ligne {i}", minimum=2) for i, line in enumerate(coordinates, start=1)]
        return any(lines)
    if kind == "Polygon":
        return bool(_rings(coordinates, "polygone"))
    polygons = [_rings(polygon, f"polygone {i}") for i, polygon in enumerate(coordinates, start=1)]
    return any(polygons)


def check_geojson_geometry(geometry: Any) -> Any:
    """A GeoJSON geometry object as a valid shapely geometry; GeometryMissing or GeometryInvalid otherwise."""
    from shapely.geometry import shape

    check_geojson_structure(geometry)
    return check_shape(shape(geometry))


def check_geojson_structure(geometry: Any) -> None:
    """GeometryMissing or GeometryInvalid unless the object is a well-formed, non-empty GeoJSON geometry."""
    if geometry is None:
        raise GeometryMissing("géométrie absente (null)")
    if not isinstance(geometry, dict):
        raise GeometryInvalid("la géométrie doit être un objet GeoJSON")
    kind = geometry.get("type")
    if kind == "GeometryCollection":
        members = geometry.get("geometries")
        if not isinstance(members, list):
            raise GeometryInvalid("GeometryCollection sans liste « geometries »")
        present = False
        for i, member in enumerate(members, start=1):
            try:
                check_geojson_structure(member)
                present = True
            except GeometryMissing:
                continue
            except GeometryInvalid as error:
                raise GeometryInvalid(f"géométrie {i} de la collection : {error}") from error
        if not present:
            raise GeometryMissing("géométrie vide")
    elif kind in GEOJSON_TYPES:
        if "coordinates" not in geometry:
            raise GeometryInvalid(f"{kind} sans « coordinates »")
        if not _check_coordinates(kind, geometry["coordinates"]):
            raise GeometryMissing("géométrie vide")
    else:
        raise GeometryInvalid(f"type de géométrie « {kind} » inconnu (attendu : {', '.join(GEOJSON_TYPES)})")


def check_shape(geometry: Any) -> Any:
    """A shapely geometry, checked: GeometryMissing when null or empty, GeometryInvalid when GEOS rejects it."""
    from shapely.validation import explain_validity

    if geometry is None or geometry.is_empty:
        raise GeometryMissing("géométrie absente ou vide")
    if not geometry.is_valid:
        raise GeometryInvalid(f"géométrie invalide : {french_validity_reason(explain_validity(geometry))}")
    return geometry


def french_validity_reason(explanation: str) -> str:
    """'Self-intersection[-0.45 44.85]' → 'le contour se recoupe lui-même (vers -0.45, 44.85)'."""
    match = re.match(r"^\s*([^\[]+?)\s*(?:\[([-\d.eE+]+)\s+([-\d.eE+]+)\])?\s*$", explanation)
    if not match:
        return explanation
    reason, x, y = match.groups()
    text = _GEOS_REASONS.get(reason, reason)
    return f"{text} (vers {float(x):.5f}, {float(y):.5f})" if x and y else text
