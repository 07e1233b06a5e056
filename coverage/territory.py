"""A network's territory: its départements, régions and drawn polygon, and the communes inside."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext as _

from directory.models import Network
from geo import coverage as geo_coverage


class TerritoryError(ValueError):
    """The network has no territory to compute on; the message is for people."""


@dataclass(frozen=True)
class Territory:
    department_codes: tuple[str, ...]
    region_codes: tuple[str, ...]
    polygon: object | None  # GEOS MultiPolygon, WGS84
    everywhere: bool

    def where_sql(self, *, commune_alias: str, point_sql: str) -> tuple[str, list]:
        """SQL condition (and params) for rows whose commune / point lies in the territory."""
        if self.everywhere:
            return "TRUE", []
        clauses, params = [], []
        if self.department_codes:
            clauses.append(f"{commune_alias}.department_id = ANY(%s)")
            params.append(list(self.department_codes))
        if self.region_codes:
            clauses.append(f"{commune_alias}.region_id = ANY(%s)")
            params.append(list(self.region_codes))
        if self.polygon is not None:
            clauses.append(f"ST_Intersects(ST_GeomFromEWKB(%s), {point_sql})")
            params.append(bytes(self.polygon.ewkb))
        return ("(" + " OR ".join(clauses) + ")") if clauses else "FALSE", params


def network_territory(*, network: Network) -> Territory:
    """The network's territory: its départements, régions and drawn polygon (all of France for
    a national network without any); TerritoryError when it has none."""
    departments = tuple(sorted(network.departments.values_list("code", flat=True)))
    regions = tuple(sorted(network.regions.values_list("code", flat=True)))
    polygon = network.custom_territory
    if not departments and not regions and polygon is None:
        if network.level == Network.Level.NATIONAL:
            return Territory((), (), None, everywhere=True)
        raise TerritoryError(
            _("Le réseau « %(name)s » n'a pas de territoire : choisissez des départements, des régions ou dessinez-le.")
            % {"name": network.name}
        )
    return Territory(departments, regions, polygon, everywhere=False)


def network_units(*, territory: Territory) -> geo_coverage.Units:
    return geo_coverage.load_units(
        department_codes=territory.department_codes,
        region_codes=territory.region_codes,
        polygon=territory.polygon,
        everywhere=territory.everywhere,
    )
