"""Keyed location masking: a private point becomes a public one 500–1,500 m away.

The offset (bearing and distance) is drawn from HMAC-SHA256(LOCATION_MASK_KEY, seed). The seed
is public (a farm's name and commune, or its source id), so the key is what makes the public
point impossible to undo: version 1 hashed the seed alone and anyone could recompute the offset
and subtract it (median error 4 cm). The key is never published; rotating it is
`manage.py farm_remask --commit` (README, « Production »).

The draw is stable (same key, seed and point: same public point, so reloading a page averages
nothing away) and keeps to the farm's département where it can: a draw that falls outside the
département's outline (another département, or the sea) is redrawn with the next counter.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import math
from collections.abc import Callable, Iterable

import shapely
from django.conf import settings
from django.contrib.gis.geos import GEOSGeometry, Point

from geo.sphere import GEOD

MIN_M = 500.0
MAX_M = 1500.0
# A draw lands in the département at least 2 times in 3 except on a spit of land or a small
# island; 16 misses in a row are then about 1 in 10^8. After them the first draw is kept.
ATTEMPTS = 16
LEGACY_CLEARANCE_M = 450.0  # 400 m promised, plus a margin for the plane approximation

Inside = Callable[[float, float], bool]


def _as_bytes(key: str | bytes) -> bytes:
    return key if isinstance(key, bytes) else key.encode("utf-8")


def mask_offset_v2(*, seed: str, key: str | bytes, attempt: int = 0, min_m: float = MIN_M, max_m: float = MAX_M):
    """(bearing in degrees, distance in metres) of draw number `attempt` for `seed` under `key`."""
    message = f"amap-atlas-mask-v2:{attempt}:{seed}".encode()
    digest = hmac.new(_as_bytes(key), message, hashlib.sha256).digest()
    bearing = int.from_bytes(digest[:8], "big") / 2**64 * 360.0
    # Uniform over the ring's area: the radius of a uniform draw over [min², max²].
    u = int.from_bytes(digest[8:16], "big") / 2**64
    distance = math.sqrt(min_m**2 + u * (max_m**2 - min_m**2))
    return bearing, distance


def _offset_v1(seed: str, min_m: float = MIN_M, max_m: float = MAX_M) -> tuple[float, float]:
    """Version 1's offset (unkeyed, retired): what anyone can compute from the public seed."""
    digest = hashlib.sha256(seed.encode("utf-8")).digest()
    bearing = int.from_bytes(digest[:4], "big") / 2**32 * 360.0
    distance = min_m + (max_m - min_m) * (int.from_bytes(digest[4:8], "big") / 2**32) ** 0.5
    return bearing, distance


def _offsets_apart_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Length of the difference of two (bearing, distance) offsets, on the local plane (cm-exact at 1.5 km)."""
    angle = math.radians(a[0] - b[0])
    return math.sqrt(max(0.0, a[1] ** 2 + b[1] ** 2 - 2 * a[1] * b[1] * math.cos(angle)))


def mask_lonlat_v2(
    lon: float,
    lat: float,
    *,
    seed: str,
    key: str | bytes,
    inside: Inside | None = None,
    min_m: float = MIN_M,
    max_m: float = MAX_M,
) -> tuple[float, float]:
    """Version 2 of the mask on plain coordinates: the keyed draw for `seed`, redrawn until `inside(lon, lat)`.

    Migrations call this version by name so that a later algorithm never changes what they did.
    """
    if not key:
        raise ValueError("a location mask needs a key (settings.LOCATION_MASK_KEY)")
    # Version 1's code is public: undoing its offset from a v2 point lands v2 − v1 away from the
    # farm. A draw within LEGACY_CLEARANCE_M of v1's offset (1 in 10) is redrawn, so that this
    # guess is never nearer than the 400 m the mask promises (issue 12).
    legacy = _offset_v1(seed, min_m, max_m)
    fallback = None
    for attempt in range(ATTEMPTS):
        offset = mask_offset_v2(seed=seed, key=key, attempt=attempt, min_m=min_m, max_m=max_m)
        if _offsets_apart_m(offset, legacy) < LEGACY_CLEARANCE_M:
            continue
        x, y, _ = GEOD.fwd(lon, lat, *offset)
        x, y = round(x, 6), round(y, 6)
        if fallback is None:
            fallback = (x, y)
        if inside is None or inside(x, y):
            return x, y
    if fallback is None:  # never seen: 16 draws all within 450 m of v1's offset (about 1 in 10^16)
        x, y, _ = GEOD.fwd(lon, lat, *mask_offset_v2(seed=seed, key=key, min_m=min_m, max_m=max_m))
        fallback = (round(x, 6), round(y, 6))
    return fallback


def mask_point_v2(point: Point, *, seed: str, key: str | bytes, inside: Inside | None = None, **ring) -> Point:
    """`mask_lonlat_v2` on a point."""
    return Point(*mask_lonlat_v2(point.x, point.y, seed=seed, key=key, inside=inside, **ring), srid=4326)


class LandOutlines:
    """Départements' outlines, prepared once: where a farm's public point may fall.

    `departments` gives (code, geometry) pairs; `department_of` a commune's département code
    (a dict, or a function for lookups one at a time).
    """

    def __init__(
        self,
        departments: Iterable[tuple[str, GEOSGeometry | None]],
        department_of: dict[str, str] | Callable[[str], str | None],
    ):
        # Shapely rather than GEOS objects: a containment test costs ~1 µs instead of ~100 µs, which
        # is what lets the demo's 100k farms be masked in a few seconds.
        self._outlines = {}
        for code, geom in departments:
            if geom is not None and not geom.empty:
                outline = shapely.from_wkb(bytes(geom.wkb))
                shapely.prepare(outline)
                self._outlines[code] = outline
        self._department_of = department_of

    def __bool__(self) -> bool:
        return bool(self._outlines)

    @classmethod
    def from_models(cls, department_model, commune_model, *, all_communes: bool = True) -> LandOutlines:
        """From the geo models (historical ones in a migration); `all_communes` loads the commune index at once."""
        departments = department_model.objects.exclude(geom=None).values_list("code", "geom")
        if all_communes:
            return cls(departments, dict(commune_model.objects.values_list("code", "department_id")))

        @functools.lru_cache(maxsize=4096)
        def department_of(commune_code: str) -> str | None:
            return commune_model.objects.filter(code=commune_code).values_list("department_id", flat=True).first()

        return cls(departments, department_of)

    def _department(self, commune_code: str | None) -> str | None:
        if not commune_code:
            return None
        if callable(self._department_of):
            return self._department_of(commune_code)
        return self._department_of.get(commune_code)

    def inside(self, *, lon: float, lat: float, commune_code: str | None = None) -> Inside | None:
        """The test a public point must pass: inside the commune's département (else the one holding the point)."""
        outline = self._outlines.get(self._department(commune_code) or "")
        if outline is None:
            outline = next((o for o in self._outlines.values() if shapely.contains_xy(o, lon, lat)), None)
        if outline is None:
            return None  # nowhere known (no territories loaded, or a point off every outline)
        return lambda x, y: bool(shapely.contains_xy(outline, x, y))


@functools.lru_cache(maxsize=1)
def _process_land() -> LandOutlines:
    from geo.models import Commune, Department

    # The whole commune index (35k short rows, ~0.1 s once): a batch of 100k farms (the demo)
    # would otherwise cost a query per commune.
    return LandOutlines.from_models(Department, Commune)


def land_outlines() -> LandOutlines:
    """This process's outlines, loaded on first use (cleared by `load_territories`)."""
    land = _process_land()
    if not land:
        _process_land.cache_clear()  # territories not loaded yet: don't remember an empty France
    return land


land_outlines.cache_clear = _process_land.cache_clear


def mask_lonlat(
    lon: float, lat: float, *, seed: str, commune_code: str | None = None, land: LandOutlines | None = None
) -> tuple[float, float]:
    """The current mask (version 2) with the project's key, kept to the commune's département."""
    land = land if land is not None else land_outlines()
    inside = land.inside(lon=lon, lat=lat, commune_code=commune_code)
    return mask_lonlat_v2(lon, lat, seed=seed, key=settings.LOCATION_MASK_KEY, inside=inside)


def mask_point(point: Point, *, seed: str, commune_code: str | None = None, land: LandOutlines | None = None) -> Point:
    """`mask_lonlat` on a point."""
    return Point(*mask_lonlat(point.x, point.y, seed=seed, commune_code=commune_code, land=land), srid=4326)
