"""France's communes as an in-memory gazetteer, built once per process from the `Commune` table."""

from __future__ import annotations

import bisect
import math
import re
import sys
import threading
from dataclasses import dataclass

from django.contrib.gis.db.models import GeometryField
from django.contrib.gis.geos import Point
from django.db.models import FloatField, Func
from django.db.models.functions import Cast

from geo.models import Commune, Department
from geo.text import normalize_place_name

from .answers import BIG_TOWN_POPULATION

# --------------------------------------------------------------------------- gazetteer


@dataclass(frozen=True, slots=True)
class _Place:
    code: str
    name: str
    key: str  # normalize_place_name(name)
    kind: str
    parent_code: str | None
    department_code: str
    region_code: str
    postal_codes: tuple[str, ...]
    population: int
    lon: float
    lat: float
    weight: float  # 0 for an empty commune, 1 for a million inhabitants, logarithmic in between


# What a _Place knows, as Commune attributes; the point and the outline are not among them.
_COMMUNE_ATTRIBUTES = {
    "code": "code",
    "name": "name",
    "search_name": "key",
    "kind": "kind",
    "parent_id": "parent_code",
    "department_id": "department_code",
    "region_id": "region_code",
    "postal_codes": "postal_codes",
    "population": "population",
}


class _Gazetteer:
    def __init__(self, places: list[_Place], departments: dict[str, str]):
        self.places = {p.code: p for p in places}
        self.departments = departments  # normalised name → code: "gironde" → "33"
        by_name: dict[str, list[_Place]] = {}
        by_postal: dict[str, list[_Place]] = {}
        by_department: dict[str, list[_Place]] = {}
        self.arrondissements: dict[tuple[str, int], _Place] = {}
        for place in places:
            by_name.setdefault(place.key, []).append(place)
            for postal in place.postal_codes:
                by_postal.setdefault(postal, []).append(place)
            by_department.setdefault(place.department_code, []).append(place)
        by_code_parent = {p.code: p for p in places}
        for place in places:
            if place.kind == Commune.Kind.ARRONDISSEMENT and place.parent_code in by_code_parent:
                number = re.search(r"\d+", place.name)
                if number:
                    self.arrondissements[(by_code_parent[place.parent_code].key, int(number.group()))] = place

        def ranked(groups):
            return {k: tuple(sorted(v, key=_by_population)) for k, v in groups.items()}

        self.by_name = ranked(by_name)
        self.by_postal = ranked(by_postal)
        self.by_department = ranked(by_department)
        self.names = list(self.by_name)  # for fuzzy matching
        self.names_by_initial: dict[str, list[str]] = {}
        for name in self.names:
            self.names_by_initial.setdefault(name[0], []).append(name)
        self.sorted_names = sorted(self.by_name)  # for prefix search
        self.sorted_big_town_names = sorted({p.key for p in places if p.population >= BIG_TOWN_POPULATION})
        self.sorted_postals = sorted(self.by_postal)
        self.sorted_codes = sorted(self.places)

    def commune(self, place: _Place) -> Commune:
        """A Commune as if read from the database (outline deferred: it loads on first access)."""
        fields = [f.attname for f in Commune._meta.concrete_fields if f.attname in _COMMUNE_ATTRIBUTES]
        values = [getattr(place, _COMMUNE_ATTRIBUTES[name]) for name in fields]
        commune = Commune.from_db("default", fields, values)
        commune.postal_codes = list(place.postal_codes)
        commune.point = Point(place.lon, place.lat, srid=4326)
        return commune

    def names_with_prefix(self, prefix: str) -> list[str]:
        return _with_prefix(self.sorted_names, prefix)

    def big_town_names_with_prefix(self, prefix: str) -> list[str]:
        return _with_prefix(self.sorted_big_town_names, prefix)


def _with_prefix(sorted_names: list[str], prefix: str) -> list[str]:
    start = bisect.bisect_left(sorted_names, prefix)
    end = bisect.bisect_left(sorted_names, prefix + "\uffff")
    return sorted_names[start:end]


def _by_population(place: _Place):
    # Most populous first; the code keeps the order stable.
    return (-place.population, place.code)


_gazetteer: _Gazetteer | None = None
_lock = threading.Lock()


def _load() -> _Gazetteer:
    as_geometry = Cast("point", GeometryField(srid=4326))
    rows = (
        Commune.objects.exclude(point=None)
        .annotate(
            _lon=Func(as_geometry, function="ST_X", output_field=FloatField()),
            _lat=Func(as_geometry, function="ST_Y", output_field=FloatField()),
        )
        .values_list(*_COMMUNE_ATTRIBUTES, "_lon", "_lat")
    )
    places = []
    for code, name, search_name, kind, parent, department, region, postal_codes, population, lon, lat in rows.iterator(
        chunk_size=5000
    ):
        places.append(
            _Place(
                code=code,
                name=name,
                key=search_name or normalize_place_name(name),  # the loader normalised it the same way
                kind=sys.intern(kind),
                parent_code=parent,
                department_code=sys.intern(department),
                region_code=sys.intern(region),
                postal_codes=tuple(sys.intern(p) for p in postal_codes or ()),
                population=population or 0,
                lon=lon,
                lat=lat,
                weight=min(1.0, math.log10((population or 0) + 1) / 6),
            )
        )
    departments = {normalize_place_name(name): code for code, name in Department.objects.values_list("code", "name")}
    return _Gazetteer(places, departments)


def _get_gazetteer() -> _Gazetteer:
    global _gazetteer
    gazetteer = _gazetteer
    if gazetteer is not None:
        return gazetteer
    with _lock:
        if _gazetteer is None:
            loaded = _load()
            if not loaded.places:
                return loaded  # territories not loaded yet: do not cache an empty index
            _gazetteer = loaded
        return _gazetteer


def reset_gazetteer_cache() -> None:
    """Forget the in-memory index (after load_territories, or between tests)."""
    global _gazetteer
    with _lock:
        _gazetteer = None


def warm_up() -> None:
    """Build the index now rather than on the first request."""
    _get_gazetteer()
