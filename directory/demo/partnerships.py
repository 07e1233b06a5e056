"""Demo partnerships: each AMAP gets farms nearby (a KD-tree on the unit sphere) for the products it offers."""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from geo.sphere import unit_xyz

from ..models import Partnership
from .bulk import copy_columns
from .dates import LAST_YEAR, ORDINAL_LAST, dates_from_ordinals, years_first_day
from .labels import DEMO_SOURCE
from .places import chord_to_km


def create_partnerships(rng, amap_rows: dict, farm_rows: dict, amap_ids: np.ndarray, farm_ids: np.ndarray) -> int:
    """Each AMAP product goes to the nearest farm producing it within that farm's delivery radius."""
    n_amaps, n_farms = len(amap_ids), len(farm_ids)
    if not n_amaps or not n_farms:
        return 0
    tree = cKDTree(unit_xyz(farm_rows["lon"], farm_rows["lat"]))
    k = min(32, n_farms)
    chord, neighbour = tree.query(unit_xyz(amap_rows["lon"], amap_rows["lat"]), k=k)
    chord, neighbour = chord.reshape(n_amaps, k), neighbour.reshape(n_amaps, k)
    distance_km = chord_to_km(chord)
    reachable = (distance_km <= farm_rows["radius_km"][neighbour]) & farm_rows["active"][neighbour]

    farm_column = {slug: j for j, slug in enumerate(farm_rows["slugs"])}
    amap_index, farm_index, product_index = [], [], []
    for j, slug in enumerate(amap_rows["slugs"]):
        wanted = amap_rows["products"][:, j]
        candidates = reachable & farm_rows["products"][neighbour, farm_column[slug]]
        found = wanted & candidates.any(axis=1)
        first = candidates.argmax(axis=1)
        rows = np.nonzero(found)[0]
        amap_index.append(rows)
        farm_index.append(neighbour[rows, first[rows]])
        product_index.append(np.full(rows.size, j))
    a = np.concatenate(amap_index)
    f = np.concatenate(farm_index)
    p = np.concatenate(product_index)
    order = np.lexsort((p, a))
    a, f, p = a[order], f[order], p[order]

    # A partnership starts after the AMAP's foundation (mostly in its first years) and ends with
    # the AMAP if it closed; a few ended earlier.
    founded = amap_rows["founded"][a]
    closed = amap_rows["closed"][a]
    start = np.where(founded > 0, founded, years_first_day(np.full(a.size, LAST_YEAR - 6)))
    end = np.where(closed > 0, closed, ORDINAL_LAST)
    start = np.minimum(start, end)
    since = start + (rng.random(a.size) ** 2 * (end - start)).astype(int)
    until = np.where(closed > 0, closed, 0)
    ended = (closed == 0) & (rng.random(a.size) < 0.08) & (since + 365 < ORDINAL_LAST)
    stop = since + 365 + (rng.random(a.size) * np.maximum(ORDINAL_LAST - since - 365, 0)).astype(int)
    until[ended] = stop[ended]

    product_ids = amap_rows["product_ids"]
    return copy_columns(
        Partnership,
        {
            "amap_id": amap_ids[a].tolist(),
            "farm_id": farm_ids[f].tolist(),
            "product_id": product_ids[p].tolist(),
            "since": dates_from_ordinals(since),
            "until": dates_from_ordinals(until),
            "is_active": (until == 0).tolist(),
            "source": [DEMO_SOURCE] * a.size,
        },
    )
