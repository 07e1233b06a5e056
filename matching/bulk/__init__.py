"""Bulk matching: the k best counterparts of every open annonce, computed in memory, stored.

Per-row SQL (a LATERAL KNN per annonce) costs ~11 s for 100k farms; an in-memory KD-tree on
unit-sphere xyz answers the same nearest-neighbour question in ~0.2 s (QUALITY.md). So:

1. load the directory's active AMAPs, farms, partnerships and live annonces as numpy arrays
   (a few queries);
2. candidate points live in sub-indexes (`cKDTree`s): on the AMAP side one per delivery day
   and product the AMAP lacks a partner for, on the farm side one per product, so that an
   annonce only meets points that pass its weekday and product rules;
3. first pass: per annonce and searched sub-index, the `shortlist` nearest points within its
   radius (chord radius inflated by 1 %: the sphere is not the ellipsoid), scored with
   `matching.engine.score_table` — the same rules, weights and score as the request path.
   Its k-th best score is a lower bound of the annonce's true k-th score;
4. widening, only where a sub-index held more points: a point's score is at most its distance
   part plus `engine.bound_without_distance` plus tour synergy, and synergy is non-zero only
   near the farm's delivery points. Every point that could still reach the bound — within
   the distance that bound allows around the annonce, or near a delivery point — is added
   (KD-tree ball queries); none of the others can enter the k best. So the candidates that
   matter are exactly those of the request path;
5. distances by an ellipsoidal local-plane formula (relative error < 2e-4 up to 300 km,
   measured against pyproj), pairs within 0.05 % of a radius decided with the exact geodesic;
   the rows within SCORE_MARGIN of the k-th score get exact geodesic distances and synergy,
   are scored again, and the k best are kept: the stored top k is the request path's top k
   (same counterparts, same order, same reasons; `tests/matching/test_reference.py`);
6. the reasons are worded once per distinct sentence, and the stored `Match` rows replaced
   (first_seen_at and notified_at survive a recomputation).

`shortlist` only trades the first pass against the widening: the result does not depend on it.

Modules, in the order they run: `load`, `search` (with `tours`, the farms' delivery points),
`select`, `reasons`, `storage`; `distances` holds the approximations with their error bounds and
the margins derived from them; `run` the entry points, re-exported here.
"""

from .load import Directory, load_directory
from .run import BulkReport, compute, compute_iter, default_shortlist, match_all
from .select import BulkResult
from .storage import store

__all__ = [
    "BulkReport",
    "BulkResult",
    "Directory",
    "compute",
    "compute_iter",
    "default_shortlist",
    "load_directory",
    "match_all",
    "store",
]
