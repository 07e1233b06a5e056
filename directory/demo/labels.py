"""What marks a row as demo (source, "(démo)" suffix, slug prefix, external ids) and how to find the demo rows."""

from __future__ import annotations

from ..models import Amap, Farm, Network

DEMO_SOURCE = "demo"
DEMO_SUFFIX = " (démo)"
NETWORK_SLUG_PREFIX = "demo-"
DEFAULT_AMAPS = 2000
DEFAULT_FARMS = 3000
DESCRIPTION = "Donnée de démonstration générée automatiquement : ce lieu n'existe pas."


def amap_external_id(*, seed: int, index: int) -> str:
    return f"s{seed}-a{index:06d}"


def farm_external_id(*, seed: int, index: int) -> str:
    return f"s{seed}-f{index:06d}"


def demo_networks():
    return Network.objects.filter(slug__startswith=NETWORK_SLUG_PREFIX)


def demo_matches(*, amaps: int, farms: int, seed: int) -> bool:
    """True when the database already holds exactly the demo directory of this size and seed."""
    demo_amaps = Amap.objects.filter(is_demo=True)
    demo_farms = Farm.objects.filter(is_demo=True)
    if demo_amaps.count() != amaps or demo_farms.count() != farms:
        return False
    if amaps and not demo_amaps.filter(external_id=amap_external_id(seed=seed, index=amaps - 1)).exists():
        return False
    return not farms or demo_farms.filter(external_id=farm_external_id(seed=seed, index=farms - 1)).exists()
