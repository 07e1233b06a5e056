"""Write the whole demo directory in one transaction (`generate`), or remove it (`clear_demo`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from django.db import connection, transaction
from django.db.models import Q

from geo.progress import Progress

from ..models import Amap, Farm, Network, Partnership, ProductCategory
from ..signals import demo_clearing
from .amaps import draw_amaps
from .bulk import copy_objects, copy_rows, delete_demo_rows, matrix_pairs, through_table
from .farms import draw_farms
from .labels import DEFAULT_AMAPS, DEFAULT_FARMS, demo_networks
from .networks import create_networks, join_networks
from .partnerships import create_partnerships
from .places import load_places


@dataclass
class Summary:
    amaps: int = 0
    farms: int = 0
    partnerships: int = 0
    networks: int = 0
    seconds: float = 0.0
    steps: dict[str, float] = field(default_factory=dict)


def clear_demo() -> dict[str, int]:
    """Remove every demo row (AMAPs, farms, their partnerships, demo networks); nothing else.

    Apps above the directory whose rows protect a demo AMAP or farm (contracts) remove theirs
    first, on `demo_clearing`; each receiver returns its own counts, merged into the result.
    """
    with transaction.atomic():
        counts: dict[str, int] = {}
        for _receiver, response in demo_clearing.send(sender=clear_demo):
            counts |= response or {}
        counts |= {
            "partnerships": Partnership.objects.filter(Q(amap__is_demo=True) | Q(farm__is_demo=True)).count(),
            "amaps": delete_demo_rows(Amap),
            "farms": delete_demo_rows(Farm),
        }
        counts["networks"] = demo_networks().delete()[1].get(Network._meta.label, 0)
    return counts


def generate(
    *,
    amaps: int = DEFAULT_AMAPS,
    farms: int = DEFAULT_FARMS,
    seed: int = 1,
    log: Callable[[str], None] | None = None,
    progress: Progress | None = None,
) -> Summary:
    """Write a demo directory of `amaps` AMAPs and `farms` farms (call `clear_demo()` first).

    `progress` (total amaps + farms) advances as the AMAPs and farms are written.
    """
    log = log or (lambda message: None)
    summary = Summary()
    started = time.perf_counter()
    step = started

    def lap(name: str) -> None:
        nonlocal step
        now = time.perf_counter()
        summary.steps[name] = now - step
        log(f"  {name}: {now - step:.1f} s")
        step = now

    rng = np.random.default_rng(seed)
    places = load_places()
    products = dict(ProductCategory.objects.values_list("slug", "id"))
    lap("communes")

    with transaction.atomic():
        networks = create_networks()
        summary.networks = len(networks["all"])
        amap_rows = draw_amaps(rng, places, products, amaps, seed)
        lap("AMAPs drawn")
        amap_ids = np.array(copy_objects(Amap, amap_rows["objects"], progress=progress), dtype=np.int64)
        lap("AMAPs written")
        farm_rows = draw_farms(rng, places, products, farms, seed)
        lap("farms drawn")
        farm_ids = np.array(copy_objects(Farm, farm_rows["objects"], progress=progress), dtype=np.int64)
        lap("farms written")

        table, columns = through_table(Amap, "products")
        copy_rows(table, columns, matrix_pairs(amap_ids, amap_rows["products"], amap_rows["product_ids"]))
        table, columns = through_table(Farm, "products")
        copy_rows(table, columns, matrix_pairs(farm_ids, farm_rows["products"], farm_rows["product_ids"]))
        lap("products linked")

        summary.partnerships = create_partnerships(rng, amap_rows, farm_rows, amap_ids, farm_ids)
        lap("partnerships")
        join_networks(rng, networks, places, amap_rows, farm_rows, amap_ids, farm_ids)
        lap("networks")
    lap("commit (deferred foreign-key checks)")
    with connection.cursor() as cursor:
        for model in (Amap, Farm, Partnership):
            cursor.execute(f"ANALYZE {model._meta.db_table}")
    lap("analyze")
    summary.amaps, summary.farms = amaps, farms
    summary.seconds = time.perf_counter() - started
    return summary
