"""The communes a chunk of rows needs, fetched in a handful of queries before its rows are checked.

Checking one row at a time asked the database two or three questions per row (the commune of
the INSEE code, the point's distance to it, the commune at the point): most of a 50,000-row
import's time. The importer now peeks at a chunk's codes and points, asks once for all of
them, and its rows read the answers; a row the peek missed still gets its answer, alone.
"""

from __future__ import annotations

from collections.abc import Iterable

from geo.models import Commune
from geo.selectors import LonLat, commune_distances_m, communes_at_points

from ..bulk import any_of

# A point may sit this far outside the commune the file names (simplified outlines, quays).
INSEE_TOLERANCE_M = 1000


class PlaceLookups:
    """Answers for one chunk of rows; `load` replaces them (memory stays that of one chunk)."""

    def __init__(self) -> None:
        self._communes: dict[str, Commune | None] = {}
        self._distances: dict[tuple[str, float, float], float | None] = {}
        self._at_points: dict[LonLat, Commune | None] = {}

    def load(
        self, *, codes: Iterable[str], named_points: Iterable[tuple[str, float, float]], points: Iterable[LonLat]
    ) -> None:
        """Communes by INSEE code; distances of (code, lon, lat) to their commune; communes at points.

        A named point too far from its commune (or naming an unknown one) is also looked up by position.
        """
        codes = set(codes)
        found = {c.code: c for c in _communes().filter(any_of("code", codes))} if codes else {}
        self._communes = {code: found.get(code) for code in codes}
        named_points = list(named_points)
        known = [pair for pair in named_points if self._communes.get(pair[0]) is not None]
        self._distances = commune_distances_m(pairs=known)
        elsewhere = [
            (lon, lat)
            for code, lon, lat in named_points
            if self._communes.get(code) is None or not _close(self._distances.get((code, lon, lat)))
        ]
        self._at_points = communes_at_points(points=[*points, *elsewhere])

    def commune(self, code: str) -> Commune | None:
        if code not in self._communes:
            self._communes[code] = _communes().filter(code=code).first()
        return self._communes[code]

    def distance_m(self, code: str, lonlat: LonLat) -> float | None:
        """Metres from the point to the outline of commune `code` (None: no such commune, or no outline)."""
        key = (code, *lonlat)
        if key not in self._distances:
            self._distances.update(commune_distances_m(pairs=[key]))
        return self._distances[key]

    def at_point(self, lonlat: LonLat) -> Commune | None:
        """`geo.selectors.commune_at_point`."""
        if lonlat not in self._at_points:
            self._at_points.update(communes_at_points(points=[lonlat]))
        return self._at_points[lonlat]

    def named_commune_near(self, code: str, lonlat: LonLat) -> tuple[Commune | None, bool]:
        """The commune of `code` (None if unknown) and whether the point lies within the tolerance of it."""
        commune = self.commune(code)
        return commune, commune is not None and _close(self.distance_m(code, lonlat))


def _communes():
    """What an importer reads of a commune (its name, code, point and `label`), not its outline or its links."""
    return Commune.objects.only("code", "name", "department_id", "postal_codes", "point").order_by()


def _close(metres: float | None) -> bool:
    return metres is not None and metres <= INSEE_TOLERANCE_M
