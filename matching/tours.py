"""Delivery tours (« Tournées »): a farm's route through its partner AMAPs on one delivery day,
and what one more AMAP would add to it.

- The depot is the farm's public (masked) point, never its private one: a route's shape and
  every detour are shown to others (the AMAPs of a tour, the farm's matches).
- The route: the shortest loop depot → AMAPs → depot (a TSP with the depot; a farm serves at
  most ~20 AMAPs a day): exact up to EXACT_STOPS stops, OR-Tools' routing solver beyond. Both
  are deterministic (no time limit), so that the same stops always give the same route.
- Lengths: the road network from OSRM when `ROUTING_BACKEND = "osrm"` (a table of distances and
  durations), else the estimate of `matching.routing` (geodesic × circuity factor, average speed).
- Marginal detour of a candidate AMAP: the cheapest insertion of its place into the day's
  optimised route (min over consecutive stops a, b of d(a, p) + d(p, b) − d(a, b)); with no
  tour that day, the out-and-back from the farm. The pages show the routed lengths; the learned
  ranking's feature (`matching.detours`) estimates the geodesic insertion without solving the route.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import requests
from django.conf import settings

from directory.models import Amap, Farm, Partnership
from geo.sphere import geodesic_m

from . import engine, routing

logger = logging.getLogger(__name__)

MAX_STOPS = 25  # more AMAPs on one day than a van serves: the route is still drawn, solved greedily
OSRM_MAX_POINTS = 100  # OSRM's default --max-table-size


# --------------------------------------------------------------------------- the route


def _geodesic_matrix(lons: np.ndarray, lats: np.ndarray) -> np.ndarray:
    n = len(lons)
    i, j = np.triu_indices(n, 1)
    matrix = np.zeros((n, n))
    if i.size:
        d = geodesic_m(lons[i], lats[i], lons[j], lats[j])
        matrix[i, j] = d
        matrix[j, i] = d
    return matrix


EXACT_STOPS = 9  # up to this many stops a day, the exact optimum (Held–Karp, ~2^n·n² steps: milliseconds)
SOLUTION_LIMIT = 50  # OR-Tools' guided local search stops after this many solutions (not a time: deterministic)


def _held_karp(matrix: np.ndarray) -> list[int]:
    """The shortest loop from node 0 through nodes 1..n (dynamic programming over subsets)."""
    n = len(matrix) - 1
    inner = matrix[1:, 1:]
    cost = np.full((1 << n, n), np.inf)
    parent = np.full((1 << n, n), -1, dtype=np.int64)
    for j in range(n):
        cost[1 << j, j] = matrix[0, j + 1]
    bits = 1 << np.arange(n)
    for mask in range(1, 1 << n):
        row = cost[mask]
        if not np.isfinite(row).any():
            continue
        via = row[:, None] + inner  # (last j, next k)
        best_j = np.argmin(via, axis=0)  # the first of equals: deterministic
        best = via[best_j, np.arange(n)]
        for k in np.flatnonzero((mask & bits) == 0).tolist():
            target = mask | (1 << k)
            if best[k] < cost[target, k]:
                cost[target, k] = best[k]
                parent[target, k] = best_j[k]
    full = (1 << n) - 1
    last = int(np.argmin(cost[full] + matrix[1:, 0]))
    order, mask = [], full
    while last >= 0:
        order.append(last + 1)
        last, mask = int(parent[mask, last]), mask & ~(1 << last)
    return order[::-1]


def _or_tools(matrix: np.ndarray) -> list[int]:
    """OR-Tools' routing solver: cheapest arc, then guided local search for SOLUTION_LIMIT solutions."""
    from ortools.constraint_solver import pywrapcp, routing_enums_pb2

    n = len(matrix) - 1
    costs = np.rint(np.asarray(matrix, dtype=np.float64)).astype(np.int64).tolist()  # whole metres
    manager = pywrapcp.RoutingIndexManager(n + 1, 1, 0)
    model = pywrapcp.RoutingModel(manager)

    def cost(from_index: int, to_index: int) -> int:
        return costs[manager.IndexToNode(from_index)][manager.IndexToNode(to_index)]

    model.SetArcCostEvaluatorOfAllVehicles(model.RegisterTransitCallback(cost))
    parameters = pywrapcp.DefaultRoutingSearchParameters()
    parameters.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PATH_CHEAPEST_ARC
    parameters.local_search_metaheuristic = routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    parameters.solution_limit = SOLUTION_LIMIT
    solution = model.SolveWithParameters(parameters)
    if solution is None:  # never for a complete graph; kept as a safe order
        return list(range(1, n + 1))
    order = []
    index = solution.Value(model.NextVar(model.Start(0)))
    while not model.IsEnd(index):
        order.append(manager.IndexToNode(index))
        index = solution.Value(model.NextVar(index))
    return order


def solve_route(matrix: np.ndarray) -> list[int]:
    """Visiting order (indexes 1..n; 0 is the depot) of the shortest loop through every point.

    Up to EXACT_STOPS stops, the exact optimum; beyond, OR-Tools (its greedy descent alone missed
    the optimum on random 3–7-stop days; guided local search found it on 40 of 40 but took
    ~130 ms each on this shared machine, too slow for a page listing ten matches). Deterministic
    either way, and the loop's direction is fixed (its first stop has the lower index of the two
    ends), so that equal inputs give equal routes.
    """
    n = len(matrix) - 1
    if n <= 2:
        return list(range(1, n + 1))
    order = _held_karp(np.asarray(matrix, dtype=np.float64)) if n <= EXACT_STOPS else _or_tools(matrix)
    return order if order[0] < order[-1] else order[::-1]


def insertion_costs(matrix: np.ndarray, loop: list[int], to_candidates: np.ndarray) -> np.ndarray:
    """Cheapest insertion of each candidate into a closed loop of matrix nodes.

    `loop`: node indexes in route order, depot first (not repeated); `to_candidates[c, node]`:
    the length from candidate c to each node (symmetric lengths). Returns one cost per candidate.
    """
    a = np.asarray(loop, dtype=np.int64)
    b = np.roll(a, -1)
    edges = matrix[a, b]  # the loop's legs, the last one back to the depot
    added = to_candidates[:, a] + to_candidates[:, b] - edges[None, :]
    return np.maximum(added.min(axis=1), 0.0)


# --------------------------------------------------------------------------- a farm's tours


@dataclass
class Stop:
    amap_id: int
    name: str
    lon: float
    lat: float


@dataclass
class Tour:
    """One delivery day of a farm: its stops in route order, the loop's length and duration."""

    farm_id: int
    weekday: int  # ISO 1..7
    depot: tuple[float, float]  # the farm's public point (lon, lat)
    stops: list[Stop] = field(default_factory=list)
    length_m: float = 0.0  # the loop, geodesic metres (the learned feature's scale)
    road_m: float = 0.0  # the loop as driven (OSRM) or estimated (geodesic × circuity)
    minutes: float = 0.0
    source: str = routing.SOURCE_ESTIMATE

    @property
    def day_name(self) -> str:
        return engine.WEEKDAY_NAMES[self.weekday]

    @property
    def points(self) -> list[tuple[float, float]]:
        """The loop as drawn: depot, stops, depot (lon, lat)."""
        return [self.depot, *((s.lon, s.lat) for s in self.stops), self.depot]


@dataclass
class FarmTours:
    farm_id: int
    depot: tuple[float, float]
    tours: dict[int, Tour]  # weekday → tour (days with at least one stop)
    undated: list[Stop] = field(default_factory=list)  # partner AMAPs whose delivery day is not known


def _osrm_table(points: list[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """(metres, seconds) between every pair of points from OSRM's table service."""
    base = settings.ROUTING_OSRM_URL.rstrip("/")
    profile = getattr(settings, "ROUTING_OSRM_PROFILE", "driving")
    coordinates = ";".join(f"{lon:.6f},{lat:.6f}" for lon, lat in points)
    response = requests.get(
        f"{base}/table/v1/{profile}/{coordinates}",
        params={"annotations": "distance,duration"},
        timeout=float(getattr(settings, "ROUTING_TIMEOUT", 2.0)),
    )
    response.raise_for_status()
    payload = response.json()
    if payload.get("code") != "Ok":
        raise ValueError(f"OSRM answered {payload.get('code')!r}")
    metres = np.array(payload["distances"], dtype=np.float64)
    seconds = np.array(payload["durations"], dtype=np.float64)
    n = len(points)
    if metres.shape != (n, n) or seconds.shape != (n, n) or not (np.isfinite(metres).all() and (metres >= 0).all()):
        raise ValueError("OSRM table of the wrong shape or with missing routes")
    # Road lengths differ a little each way: the route is solved on the symmetric mean.
    return (metres + metres.T) / 2.0, (seconds + seconds.T) / 2.0


def road_matrices(points: list[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """(geodesic metres, road metres, minutes, source) between every pair of points."""
    lons = np.array([p[0] for p in points], dtype=np.float64)
    lats = np.array([p[1] for p in points], dtype=np.float64)
    geodesic = _geodesic_matrix(lons, lats)
    if getattr(settings, "ROUTING_BACKEND", "estimate") == "osrm" and 1 < len(points) <= OSRM_MAX_POINTS:
        try:
            metres, seconds = _osrm_table(points)
            return geodesic, metres, seconds / 60.0, routing.SOURCE_OSRM
        except (requests.RequestException, ValueError, KeyError, TypeError) as error:
            logger.warning("routing service unavailable, using estimates: %s", error)
    circuity = float(getattr(settings, "ROUTING_CIRCUITY_FACTOR", 1.3))
    minutes = np.vectorize(routing.estimate_minutes, otypes=[np.float64])(geodesic) if geodesic.size else geodesic
    return geodesic, geodesic * circuity, minutes, routing.SOURCE_ESTIMATE


def partner_stops(*, farm: Farm, hidden_partnership_ids=()) -> list[tuple[Stop, int]]:
    """The farm's delivery points: its active partner AMAPs, with their delivery-day mask (0: unknown)."""
    links = Partnership.objects.active().filter(farm=farm, amap__status=Amap.Status.ACTIVE)
    if hidden_partnership_ids:
        links = links.exclude(pk__in=hidden_partnership_ids)
    amaps = Amap.objects.filter(pk__in=links.values("amap_id")).order_by("pk")
    return [
        (Stop(amap.pk, amap.name, amap.location.x, amap.location.y), engine.weekdays_to_mask(amap.delivery_weekdays))
        for amap in amaps
    ]


def day_route(depot: tuple[float, float], stops: list[Stop]) -> list[Stop]:
    """The stops of one day in route order (geodesic lengths: the same route on every path)."""
    if len(stops) <= 2:
        return list(stops)
    points = [depot, *((s.lon, s.lat) for s in stops)]
    matrix = _geodesic_matrix(np.array([p[0] for p in points]), np.array([p[1] for p in points]))
    return [stops[i - 1] for i in solve_route(matrix)]


def farm_tours(*, farm: Farm, hidden_partnership_ids=()) -> FarmTours:
    """Each delivery day's route of the farm, measured on the road when OSRM is configured."""
    depot = (farm.public_location.x, farm.public_location.y)
    stops = partner_stops(farm=farm, hidden_partnership_ids=hidden_partnership_ids)
    result = FarmTours(farm_id=farm.pk, depot=depot, tours={}, undated=[s for s, mask in stops if mask == 0])
    for day in range(1, 8):
        today = [s for s, mask in stops if mask & (1 << (day - 1))]
        if not today:
            continue
        ordered = day_route(depot, today)
        points = [depot, *((s.lon, s.lat) for s in ordered)]
        geodesic, road, minutes, source = road_matrices(points)
        loop = list(range(len(points)))
        nxt = np.roll(loop, -1)
        result.tours[day] = Tour(
            farm_id=farm.pk,
            weekday=day,
            depot=depot,
            stops=ordered,
            length_m=float(geodesic[loop, nxt].sum()),
            road_m=float(road[loop, nxt].sum()),
            minutes=float(minutes[loop, nxt].sum()),
            source=source,
        )
    return result


# --------------------------------------------------------------------------- detours


@dataclass(frozen=True)
class Detour:
    """What adding one AMAP to the farm's deliveries costs."""

    weekday: int | None  # the day of the tour it joins (None: any day, no tour yet)
    joins_tour: bool  # False: no tour that day, an out-and-back from the farm
    km: float
    minutes: float
    source: str
    geodesic_m: float  # the geodesic insertion cost (the learned feature estimates it: `matching.detours`)

    @property
    def day_name(self) -> str:
        return engine.WEEKDAY_NAMES.get(self.weekday, "") if self.weekday else ""


def candidate_days(amap_days: int, annonce_days: int) -> list[int]:
    """The days an AMAP could join: its own delivery days (those of the annonce among them), else the annonce's."""
    annonce_days = annonce_days or engine.ALL_DAYS
    days = amap_days & annonce_days if amap_days else annonce_days
    return engine.mask_to_weekdays(days or amap_days or engine.ALL_DAYS)


def detours(tours: FarmTours, candidates: list[tuple[float, float, int]], *, annonce_days: int = 0) -> list[Detour]:
    """The marginal detour of each candidate (lon, lat, delivery-day mask) against the farm's tours.

    Per candidate, the cheapest of its days: insertion into that day's route, or the out-and-back
    from the farm on a day without a tour. Ties go to the earliest day.
    """
    if not candidates:
        return []
    depot = tours.depot
    cand = [(lon, lat) for lon, lat, _days in candidates]
    nodes = {day: [depot, *((s.lon, s.lat) for s in tour.stops)] for day, tour in tours.tours.items()}
    # One table for everything: the depot, every stop of every day, every candidate.
    stop_points = [p for day in sorted(nodes) for p in nodes[day][1:]]
    points = [depot, *stop_points, *cand]
    geodesic, road, minutes, source = road_matrices(points)
    first_candidate = 1 + len(stop_points)
    offsets, at = {}, 1
    for day in sorted(nodes):
        offsets[day] = [0, *range(at, at + len(nodes[day]) - 1)]
        at += len(nodes[day]) - 1
    per_day = {}
    for day, loop in offsets.items():
        rows = np.arange(first_candidate, len(points))
        per_day[day] = tuple(insertion_costs(matrix, loop, matrix[rows]) for matrix in (geodesic, road, minutes))
    result = []
    for c, (_lon, _lat, days) in enumerate(candidates):
        row = first_candidate + c
        best = None
        for day in candidate_days(days, annonce_days):
            if day in per_day:
                g, r, m = (values[c] for values in per_day[day])
                option = (float(r), day, True, float(g), float(m))
            else:
                option = (2 * float(road[0, row]), day, False, 2 * float(geodesic[0, row]), 2 * float(minutes[0, row]))
            if best is None or option[0] < best[0]:
                best = option
        road_m, day, joins, geo_m, mins = best
        result.append(
            Detour(weekday=day, joins_tour=joins, km=road_m / 1000.0, minutes=mins, source=source, geodesic_m=geo_m)
        )
    return result


def describe_detour(detour: Detour) -> str:
    """« +7 km et environ 9 min sur votre tournée du jeudi » / « nouvelle tournée le jeudi : 24 km aller-retour »."""
    from django.utils.translation import gettext as _

    km = f"{detour.km:.1f}".replace(".", ",") if detour.km < 10 else f"{detour.km:.0f}"
    minutes = max(1, round(detour.minutes))
    if detour.joins_tour:
        if detour.source == routing.SOURCE_OSRM:
            text = _("+%(km)s km et %(min)s min sur votre tournée du %(day)s")
        else:
            text = _("+%(km)s km et environ %(min)s min sur votre tournée du %(day)s (estimation)")
    elif detour.source == routing.SOURCE_OSRM:
        text = _("nouvelle tournée le %(day)s : %(km)s km et %(min)s min aller-retour depuis la ferme")
    else:
        text = _("nouvelle tournée le %(day)s : environ %(km)s km et %(min)s min aller-retour depuis la ferme")
    return text % {"km": km, "min": minutes, "day": detour.day_name}


def describe_tour(tour: Tour) -> str:
    from django.utils.translation import gettext as _
    from django.utils.translation import ngettext

    km = tour.road_m / 1000.0
    stops = ngettext("%(n)s AMAP", "%(n)s AMAP", len(tour.stops)) % {"n": len(tour.stops)}
    if tour.source == routing.SOURCE_OSRM:
        text = _("%(stops)s, %(km)s km et %(min)s min de route (itinéraire calculé)")
    else:
        text = _("%(stops)s, environ %(km)s km et %(min)s min de route (estimation)")
    return text % {"stops": stops, "km": f"{km:.0f}", "min": max(1, round(tour.minutes))}


def detours_for_matches(*, annonce, matches) -> list[Detour | None]:
    """For a farm's annonce: what each matched AMAP (at its public place) would add to the farm's tours."""
    farm = annonce.farm
    if farm is None or farm.public_location is None:
        return [None] * len(matches)
    days = dict(Amap.objects.filter(pk__in=[m.counterpart_id for m in matches]).values_list("pk", "delivery_weekdays"))
    candidates = [(m.lon, m.lat, engine.weekdays_to_mask(days.get(m.counterpart_id) or [])) for m in matches]
    annonce_days = engine.weekdays_to_mask(annonce.delivery_weekdays)
    return detours(farm_tours(farm=farm), candidates, annonce_days=annonce_days)
