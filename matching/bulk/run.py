"""Running the bulk path: load, search, select, word, store."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings
from django.db.models import Exists, OuterRef

from directory.models import Amap, Partnership
from geo.progress import Progress

from .. import engine
from ..models import Annonce, Match
from ..selectors import active_ranker, product_bits
from .bounds import bounds_for
from .load import load_directory
from .search import side_points
from .select import finish, select_k_best
from .storage import store

CHUNK = 20_000  # annonces per KD-tree query batch (bounds memory)


def default_shortlist() -> int:
    return int(getattr(settings, "MATCH_BULK_SHORTLIST", 64))


@dataclass
class BulkReport:
    annonces: int = 0
    matches: int = 0
    pairs: int = 0  # (annonce, point) pairs scored
    widened: int = 0  # annonces whose first pass could not prove its k best: searched further
    load_s: float = 0.0
    compute_s: float = 0.0
    store_s: float = 0.0
    store_timings: dict = field(default_factory=dict)

    @property
    def total_s(self) -> float:
        return self.load_s + self.compute_s + self.store_s


def compute_iter(
    *, report: BulkReport, k: int = 10, shortlist: int | None = None, annonce_ids=None, progress: Progress | None = None
):
    """Read the directory now, then return a generator of BulkResults (one per chunk); fills `report`.

    `progress`, if given, gets the number of annonces as its total and advances chunk by chunk.

    Every query happens here, before the first result: a caller may stream the results into
    a COPY on the same connection while the next chunk is computed.
    """
    started = time.perf_counter()
    bits = product_bits()
    d = load_directory(product_ids=sorted(bits.bit_of))
    tour_names = {}
    if len(d.tour_amap):
        # The delivery points' names: active AMAPs with an active partnership (no list of ids to send).
        delivered = Partnership.objects.filter(amap=OuterRef("pk"), is_active=True)
        amaps = Amap.objects.filter(status=Amap.Status.ACTIVE).filter(Exists(delivered)).order_by()
        tour_names = dict(amaps.values_list("pk", "name"))
    # The stored learned ranking when there is one, as on the request path (`selectors.matches_for`).
    bounds = bounds_for(active_ranker())
    report.load_s = time.perf_counter() - started
    shortlist = shortlist or default_shortlist()
    selected = np.arange(len(d.ann_id))
    if annonce_ids is not None:
        selected = selected[np.isin(d.ann_id, np.asarray(annonce_ids, dtype=np.int64))]
    report.annonces = len(selected)
    if progress is not None:
        progress.total = report.annonces

    def chunks():
        cache: dict = {}
        for kind, code, side in ((engine.FARM_SEEKS_AMAP, 0, "amap"), (engine.AMAP_SEEKS_FARM, 1, "farm")):
            queries = selected[d.ann_kind[selected] == code]
            if queries.size == 0:
                continue
            started = time.perf_counter()
            points = side_points(d, side=side, bounds=bounds)
            report.compute_s += time.perf_counter() - started
            for start in range(0, len(queries), CHUNK):
                started = time.perf_counter()
                chosen = select_k_best(d, kind, points, queries[start : start + CHUNK], k, shortlist, report, bounds)
                result = None
                if chosen is not None:
                    q, _p, table = chosen
                    result = finish(d, kind, q, table, bits, tour_names, cache, bounds)
                report.compute_s += time.perf_counter() - started
                if progress is not None:
                    progress.advance(len(queries[start : start + CHUNK]))
                if result is not None:
                    report.matches += len(result.annonce_id)
                    yield result

    return chunks()


def compute(*, k: int = 10, shortlist: int | None = None, annonce_ids: list[int] | None = None):
    """(BulkReport, [BulkResult]) for every live annonce (or those listed), nothing stored."""
    report = BulkReport()
    results = list(compute_iter(report=report, k=k, shortlist=shortlist, annonce_ids=annonce_ids))
    return report, results


def match_all(
    *,
    k: int = 10,
    shortlist: int | None = None,
    annonce_ids: list[int] | None = None,
    progress: Progress | None = None,
) -> BulkReport:
    """Compute and store the k best matches of every live annonce (or of those listed).

    Stored matches of annonces no longer live are removed. `report.compute_s` is the time
    spent computing; `report.store_s` the rest of the writing (the COPY overlaps the compute).
    """
    report = BulkReport()
    started = time.perf_counter()
    live = list(Annonce.objects.live().values_list("pk", flat=True))
    targets = live if annonce_ids is None else [pk for pk in live if pk in set(annonce_ids)]
    results = compute_iter(report=report, k=k, shortlist=shortlist, annonce_ids=annonce_ids, progress=progress)
    store(results, annonce_ids=targets, timings=report.store_timings)
    if annonce_ids is None:
        Match.objects.exclude(annonce_id__in=Annonce.objects.live().values("pk")).delete()
    report.store_s = time.perf_counter() - started - report.load_s - report.compute_s
    return report
