"""Demo networks (national, regional, departmental, some still emerging) and who belongs to them."""

from __future__ import annotations

import numpy as np

from geo.models import Department, Region

from ..models import Amap, Farm, Network
from .bulk import copy_rows, through_table
from .labels import DEMO_SUFFIX, DESCRIPTION, NETWORK_SLUG_PREFIX
from .places import Places

METROPOLITAN_REGIONS = ["11", "24", "27", "28", "32", "44", "52", "53", "75", "76", "84", "93", "94"]
EMERGING_REGIONS = {"27", "24"}  # Bourgogne-Franche-Comté, Centre-Val de Loire
REGIONAL_NETWORK_REGIONS = [*METROPOLITAN_REGIONS, "04"]  # and La Réunion
DEPARTMENTAL_NETWORKS = ["33", "69", "44", "35", "13", "31", "59", "38", "67", "34", "75", "63", "29", "974"]


def create_networks() -> dict:
    """A national network, regional ones (two emerging) and departmental ones, all `demo-…`."""
    regions = dict(Region.objects.values_list("code", "name"))
    departments = dict(Department.objects.values_list("code", "name"))
    national = Network.objects.create(
        name="Réseau national des AMAP" + DEMO_SUFFIX,
        slug=f"{NETWORK_SLUG_PREFIX}national",
        level=Network.Level.NATIONAL,
        description=DESCRIPTION,
        contact_email="contact@reseau-national.example.org",
    )
    national.regions.set(list(regions))
    regional = {}
    for code in REGIONAL_NETWORK_REGIONS:
        if code not in regions:
            continue
        network = Network.objects.create(
            name=f"Réseau des AMAP {regions[code]}{DEMO_SUFFIX}",
            slug=f"{NETWORK_SLUG_PREFIX}region-{code}",
            level=Network.Level.REGIONAL,
            status=Network.Status.EMERGING if code in EMERGING_REGIONS else Network.Status.ESTABLISHED,
            description=DESCRIPTION,
            contact_email=f"contact@reseau-region-{code}.example.org",
        )
        network.regions.set([code])
        regional[code] = network
    departmental = {}
    for code in DEPARTMENTAL_NETWORKS:
        if code not in departments:
            continue
        network = Network.objects.create(
            name=f"AMAP {departments[code]} – réseau départemental{DEMO_SUFFIX}",
            slug=f"{NETWORK_SLUG_PREFIX}departement-{code.lower()}",
            level=Network.Level.DEPARTMENTAL,
            description=DESCRIPTION,
            contact_email=f"contact@reseau-departement-{code.lower()}.example.org",
        )
        network.departments.set([code])
        departmental[code] = network
    return {
        "national": national,
        "regional": regional,
        "departmental": departmental,
        "all": [national, *regional.values(), *departmental.values()],
    }


def join_networks(rng, networks: dict, places: Places, amap_rows, farm_rows, amap_ids, farm_ids) -> None:
    pairs: list[tuple[np.ndarray, int]] = []
    n = len(amap_ids)
    pairs.append((amap_ids[rng.random(n) < 0.35], networks["national"].pk))
    region = places.region[amap_rows["place"]]
    department = places.department[amap_rows["place"]]
    draw = rng.random(n)
    for code, network in networks["regional"].items():
        share = 0.2 if network.status == Network.Status.EMERGING else 0.55
        pairs.append((amap_ids[(region == code) & (draw < share)], network.pk))
    draw = rng.random(n)
    for code, network in networks["departmental"].items():
        pairs.append((amap_ids[(department == code) & (draw < 0.5)], network.pk))
    table, columns = through_table(Amap, "networks")
    copy_rows(table, columns, ((int(i), pk) for ids, pk in pairs for i in ids))

    farm_region = places.region[farm_rows["place"]]
    draw = rng.random(len(farm_ids))
    farm_pairs = [
        (farm_ids[(farm_region == code) & (draw < 0.25)], network.pk) for code, network in networks["regional"].items()
    ]
    table, columns = through_table(Farm, "networks")
    copy_rows(table, columns, ((int(i), pk) for ids, pk in farm_pairs for i in ids))
