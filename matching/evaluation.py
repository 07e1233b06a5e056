"""Real-data validation: leave one AMAP's partnerships out and see whether the engine finds them again.

For every AMAP with known partners (located farms), all of its partnerships are hidden (from
the candidate rules, from the farms' delivery tours, from "already supplies this AMAP"); then,
for each product it got from them, the engine is asked "AMAP cherche paysan: <product>" from
the AMAP's delivery place, and we check whether each real partner is in the first k farms.

Rankings compared on the same question:
- **learned**: `matching.selectors.matches_for` with the ranking fitted (`matching.learning`) on
  every other AMAP's links: the left-out AMAP's links are hidden from its features and from its
  training rows. Fitted whatever the number of links (`min_links`, 0 here): this measures the
  method; an installation under `learning.training.MIN_LINKS` links ranks with the fixed weights;
- **engine**: `matching.selectors.matches_for`, all rules and the fixed weighted score;
- **engine_no_reach**: the same with every farm's own delivery radius ignored (the Gironde
  file states none, so there it equals the engine: an unknown radius is not a cut);
- **distance_within_radius**: farms producing the product within the annonce's radius,
  nearest first — the same candidates as the engine, ranked by distance alone;
- **distance_baseline**: every farm producing the product, nearest first, however far (no
  annonce could ask for the farthest: its radius is at most 300 km).

The weights are those of `matching.engine.WEIGHTS`, fixed a priori, and the learned ranking's
features, signs and priors are fixed in `matching.learning`; nothing here tunes them.
"""

from __future__ import annotations

import io
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.management import call_command

from directory.models import Amap, Farm, Partnership
from geo.progress import Progress
from geo.sphere import GEOD

from . import engine
from .learning import training
from .learning.features import load_snapshot
from .selectors import Query, candidates, matches_for

GIRONDE_SOURCE = "gironde-2026"


def gironde_dir() -> Path:
    return Path(settings.BASE_DIR).parent / "shared" / "data" / "amap-gironde-2026"


def gironde_import(*, directory: Path | None = None, source: str = GIRONDE_SOURCE) -> str:
    """Import the Gironde AMAPs, then their producers and links, with the project's importer; its report."""
    directory = directory or gironde_dir()
    out = io.StringIO()
    for name, kind in (("amaps.csv", "amap"), ("producteurs.csv", "farm")):
        call_command(
            "import_directory", str(directory / name), kind=kind, source=source, commit=True, stdout=out, stderr=out
        )
    return out.getvalue()


@dataclass
class RecallReport:
    k: int
    amaps: int = 0  # AMAPs left out in turn
    links: int = 0  # (AMAP, product, real partner) triples asked about
    hits: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    # Where each method ranked the real partner (None = not in its first k).
    ranks: dict[str, list] = field(default_factory=lambda: defaultdict(list))
    # Links the engine missed but another ranking found, and how many of them lie beyond a
    # reach rule (the annonce's radius, a radius the farm stated).
    details: dict = field(
        default_factory=lambda: {
            "reach_explained": {"checked": 0, "beyond_reach": 0},
            "baseline_only": {"checked": 0, "beyond_reach": 0},
        }
    )

    def recall(self, method: str, at: int | None = None) -> float:
        """Share of the real links whose partner the method ranked in its first `at` (default k)."""
        if not self.links:
            return 0.0
        at = at or self.k
        return sum(1 for rank in self.ranks[method] if rank is not None and rank <= at) / self.links

    METHODS = ("learned", "engine", "engine_no_reach", "distance_within_radius", "distance_baseline")


def _distance_baseline(amap: Amap, product_id: int, k: int, *, radius_km: float = math.inf) -> list[int]:
    farms = list(
        Farm.objects.active()
        .exclude(public_location=None)
        .filter(products__id=product_id)
        .distinct()
        .values_list("pk", "public_location")  # as the engine measures (selectors.Query.origin)
    )
    if not farms:
        return []
    lons = [f[1].x for f in farms]
    lats = [f[1].y for f in farms]
    _a, _b, dist = GEOD.inv([amap.location.x] * len(farms), [amap.location.y] * len(farms), lons, lats)
    order = sorted(range(len(farms)), key=lambda i: (dist[i], farms[i][0]))
    return [farms[i][0] for i in order if dist[i] <= radius_km * 1000.0][:k]


def _engine_no_reach(query: Query, k: int) -> list[int]:
    need, table, _extras = candidates(query)
    table.reach_m[:] = float("inf")  # fixed weights
    scored = engine.score_table(need, table)
    return [int(table.org_id[i]) for i in engine.rank(table, scored, limit=k)]


def _beyond_reach(amap: Amap, farm: Farm, radius_km: float) -> bool:
    distance = GEOD.inv(amap.location.x, amap.location.y, farm.public_location.x, farm.public_location.y)[2]
    limit = radius_km if farm.delivery_radius_km is None else min(radius_km, farm.delivery_radius_km)
    return distance > limit * 1000.0


def leave_one_out_recall(
    *,
    k: int = 10,
    radius_km: float = 100.0,
    source: str | None = GIRONDE_SOURCE,
    min_links: int = 0,
    progress: Progress | None = None,
) -> RecallReport:
    """Recall@k of the real partners, learned and fixed engine vs pure-distance baseline (module docstring).

    `progress`, if given, counts the AMAPs evaluated.
    """
    report = RecallReport(k=k)
    snapshot = load_snapshot()  # the whole installation trains; only `source`'s AMAPs are asked
    amap_index = {int(pk): i for i, pk in enumerate(snapshot.amap_id.tolist())}
    links = Partnership.objects.active().filter(farm__location__isnull=False, farm__is_active=True)
    if source:
        links = links.filter(amap__source=source)
    by_amap: dict[int, list[Partnership]] = defaultdict(list)
    for link in links.select_related("amap", "farm"):
        by_amap[link.amap_id].append(link)
    if progress is not None:
        progress.total = len(by_amap)
    for amap_id in sorted(by_amap):
        amap_links = by_amap[amap_id]
        amap = amap_links[0].amap
        hidden = {p.pk for p in Partnership.objects.filter(amap_id=amap_id)}
        partners_by_product: dict[int, set[int]] = defaultdict(set)
        for link in amap_links:
            partners_by_product[link.product_id].add(link.farm_id)
        report.amaps += 1
        held_out = {amap_index[amap_id]} if amap_id in amap_index else set()
        ranker = training.fit(snapshot, held_out=held_out, min_links=min_links)
        for product_id, partners in sorted(partners_by_product.items()):
            query = Query(
                kind=engine.AMAP_SEEKS_FARM,
                origin=amap.location,
                product_ids=[product_id],
                weekdays=list(amap.delivery_weekdays or []),
                radius_km=radius_km,
                amap=amap,
                hidden_partnership_ids=hidden,
            )
            rankings = {
                "learned": [
                    m.counterpart_id for m in matches_for(query, limit=k, with_drive_times=False, ranker=ranker)
                ],
                "engine": [m.counterpart_id for m in matches_for(query, limit=k, with_drive_times=False, ranker=None)],
                "engine_no_reach": _engine_no_reach(query, k),
                "distance_within_radius": _distance_baseline(amap, product_id, k, radius_km=radius_km),
                "distance_baseline": _distance_baseline(amap, product_id, k),
            }
            for farm_id in sorted(partners):
                report.links += 1
                for method, ranked in rankings.items():
                    if farm_id in ranked:
                        report.hits[method] += 1
                        report.ranks[method].append(ranked.index(farm_id) + 1)
                    else:
                        report.ranks[method].append(None)
                for other, bucket in (("engine_no_reach", "reach_explained"), ("distance_baseline", "baseline_only")):
                    if farm_id not in rankings["engine"] and farm_id in rankings[other]:
                        explained = report.details[bucket]
                        explained["checked"] += 1
                        explained["beyond_reach"] += _beyond_reach(amap, Farm.objects.get(pk=farm_id), radius_km)
        if progress is not None:
            progress.advance()
    return report
