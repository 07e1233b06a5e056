"""Coverage of a territory's population by a set of points (generic: knows nothing of AMAPs).

Two methods, always named next to their figures:
- **point de référence de la commune** (`reference_point`): a commune counts as covered at X km
  when its reference point (town hall, else a point inside it) lies within X km, geodesic on
  WGS84, of one of the points. Exact, and cheap for all of France.
- **surface pondérée** (`area_weighted`): the share of each commune's surface lying within X km
  of a point (union of geodesic circles intersected with the commune outlines in a metric
  projection: Lambert-93 for mainland France and Corsica, the official UTM projection of each
  overseas territory); population is assumed evenly spread over the commune. Computed only
  where it is cheap enough (see `AREA_WEIGHTED_MAX_UNITS`, `AREA_WEIGHTED_MAX_POINTS`).

The units are the communes, with Paris, Lyon and Marseille split into their arrondissements
(a single point for two million Parisians would say little).

Nearest distances use an in-memory KD-tree on unit-sphere xyz coordinates (chord length is
monotonic in great-circle distance) to shortlist, then the exact WGS84 geodesic (pyproj) to
decide: all of France (35k communes x 100k points) takes well under a second.
"""

from geo.sphere import EARTH_MEAN_RADIUS_M, chord_from_metres, metres_from_chord

from .area import (
    AREA_WEIGHTED_MAX_POINTS,
    AREA_WEIGHTED_MAX_UNITS,
    CIRCLE_VERTICES,
    area_weighted_coverage,
    area_weighted_shares,
    area_weighted_too_costly,
    geodesic_circles,
)
from .figures import (
    AREA_WEIGHTED,
    METHOD_LABELS,
    REFERENCE_POINT,
    CoverageFigure,
    Density,
    HistoryPoint,
    WhiteZone,
    coverage_curve,
    coverage_history,
    covered_population_by_group,
    density_per_100k,
    population_coverage,
    unit_adjacency,
    white_zones,
)
from .nearest import (
    CANDIDATES,
    EXACT_NEAREST_MAX_M,
    MAX_SHORTLIST,
    SPHERE_TOLERANCE,
    PointSet,
    nearest_distances,
)
from .units import Units, load_units, units_from_rows

__all__ = [
    "AREA_WEIGHTED",
    "AREA_WEIGHTED_MAX_POINTS",
    "AREA_WEIGHTED_MAX_UNITS",
    "CANDIDATES",
    "CIRCLE_VERTICES",
    "EARTH_MEAN_RADIUS_M",
    "EXACT_NEAREST_MAX_M",
    "MAX_SHORTLIST",
    "METHOD_LABELS",
    "REFERENCE_POINT",
    "SPHERE_TOLERANCE",
    "CoverageFigure",
    "Density",
    "HistoryPoint",
    "PointSet",
    "Units",
    "WhiteZone",
    "area_weighted_coverage",
    "area_weighted_shares",
    "area_weighted_too_costly",
    "chord_from_metres",
    "coverage_curve",
    "coverage_history",
    "covered_population_by_group",
    "density_per_100k",
    "geodesic_circles",
    "load_units",
    "metres_from_chord",
    "nearest_distances",
    "population_coverage",
    "unit_adjacency",
    "units_from_rows",
    "white_zones",
]
