"""Demo AMAPs: names, delivery places and days, products, founding years, drawn with numpy from one generator."""

from __future__ import annotations

import datetime as dt

import numpy as np
from django.contrib.gis.geos import Point

from ..models import Amap, LocationPrecision
from .dates import LAST_YEAR, ORDINAL_LAST, YEAR_WEIGHTS, YEARS, years_first_day
from .labels import DEMO_SOURCE, DEMO_SUFFIX, DESCRIPTION, amap_external_id
from .places import Places, amap_weights, jitter, of, pick

# Towns with a university campus: some of their AMAPs are student AMAPs.
UNIVERSITY_TOWNS = {
    "75056", "69123", "13055", "31555", "33063", "33522", "33318", "59350", "59009", "34172", "44109",
    "35238", "67482", "38185", "38421", "54395", "21231", "63113", "86194", "37261", "76540", "14118",
    "25056", "87085", "29019", "49007", "45234", "80021", "51454", "64445", "66136", "57463", "06088",
    "13001", "69266", "91471", "91272", "42218", "72181", "83137", "17300", "97411", "97101", "2A004",
    "84007", "30189", "56121", "62041", "68224", "73065", "74010", "97209",
}  # fmt: skip


# Share of AMAPs offering each product (vegetables nearly always).
AMAP_PRODUCT_SHARES = {
    "legumes": 0.97, "oeufs": 0.62, "pain": 0.45, "fruits": 0.42, "produits-laitiers-chevre": 0.32,
    "produits-laitiers-vache": 0.28, "volailles": 0.26, "viande-bovine": 0.22, "miel": 0.24,
    "viande-porcine": 0.17, "farine-cereales": 0.14, "jus-cidre": 0.13, "produits-laitiers-brebis": 0.12,
    "viande-ovine": 0.1, "champignons": 0.08, "plantes-aromatiques": 0.08, "legumineuses": 0.08,
    "confitures-conserves": 0.06, "huile": 0.05, "vin": 0.04, "biere": 0.04, "poisson": 0.03,
    "fleurs": 0.03, "coquillages": 0.02,
}  # fmt: skip


AMAP_QUALIFIERS = [
    "", "", "", "", "des Jardins", "du Marché", "de la Gare", "du Centre", "des Coteaux", "du Lavoir",
    "des Quatre Saisons", "du Quartier Nord", "du Quartier Sud",
]  # fmt: skip


AMAP_NICKNAMES = [
    "Les Paniers Solidaires", "La Carotte Enchantée", "Le Panier Paysan", "Terre et Saisons",
    "Les Pieds dans la Terre", "Court-Circuit", "La Courge Joyeuse", "Graines de Partage",
    "Le Potager Partagé", "Les Paniers du Coin", "Radis et Compagnie", "Les Mains Vertes",
]  # fmt: skip


STREETS = [
    "place de la Mairie", "rue de la République", "rue du Marché", "avenue Jean Jaurès", "rue Victor Hugo",
    "place de l'Église", "chemin des Écoliers", "rue Pasteur", "rue de la Gare", "allée des Tilleuls",
]  # fmt: skip


VENUES = ["Salle des fêtes", "Maison des associations", "Préau de l'école", "Centre social", "Tiers-lieu"]
PLATFORMS = ["", "", "AmapJ", "CAMAP", "Cagette", "Clic'AMAP"]


def draw_amaps(rng, places: Places, products: dict[str, int], n: int, seed: int) -> dict:
    slugs = [s for s in AMAP_PRODUCT_SHARES if s in products]
    shares = np.array([AMAP_PRODUCT_SHARES[s] for s in slugs])
    place = rng.choice(len(places.lon), size=n, p=amap_weights(places))
    lon, lat = jitter(rng, places, place, share=0.5, cap_m=2500.0)

    offered = rng.random((n, len(slugs))) < shares
    offered[:, 0] |= ~offered.any(axis=1)  # at least vegetables

    status = pick(rng, {"active": 0.88, "creating": 0.03, "dormant": 0.05, "closed": 0.04}, n)
    university = np.isin(places.commune_code[place], list(UNIVERSITY_TOWNS))
    kind_draw = rng.random(n)
    kind = np.where(university & (kind_draw < 0.15), Amap.Kind.STUDENT, Amap.Kind.CLASSIC).astype(object)
    big_town = places.population[place] > 50_000
    kind[(kind == Amap.Kind.CLASSIC) & big_town & (kind_draw > 0.97)] = Amap.Kind.WORKPLACE

    accepting = pick(rng, {"open": 0.55, "waiting_list": 0.2, "full": 0.1, "unknown": 0.15}, n)
    accepting[(status == "closed") | (status == "dormant")] = Amap.Accepting.UNKNOWN
    accepting[status == "creating"] = Amap.Accepting.OPEN

    years = rng.choice(YEARS, size=n, p=YEAR_WEIGHTS)
    years[status == "creating"] = rng.choice([LAST_YEAR - 1, LAST_YEAR], size=int((status == "creating").sum()))
    years[status == "closed"] = np.minimum(years[status == "closed"], LAST_YEAR - 2)
    year_start = years_first_day(years)
    founded = year_start + (rng.random(n) * 364).astype(int)
    founded[rng.random(n) < 0.06] = 0  # unknown foundation date
    closed = np.zeros(n, dtype=int)
    is_closed = status == "closed"
    base = np.where(founded > 0, founded, years_first_day(np.full(n, LAST_YEAR - 8)))
    span = np.maximum(ORDINAL_LAST - (base + 365), 1)
    closed[is_closed] = (base + 365 + (rng.random(n) * span).astype(int))[is_closed]

    members = np.clip(np.round(rng.lognormal(np.log(45), 0.5, n)), 8, 300).astype(int)
    members_known = (rng.random(n) < 0.85) & (status != "creating")

    weekday = pick(rng, {2: 0.25, 3: 0.22, 4: 0.25, 5: 0.09, 1: 0.05, 6: 0.13, 7: 0.01}, n).astype(int)
    # Students deliver on weekdays, between classes or after them.
    student_day = rng.choice([2, 3, 4], size=n)
    weekday = np.where((kind == Amap.Kind.STUDENT) & (weekday >= 6), student_day, weekday)
    second_day = rng.random(n) < 0.04
    start_evening = rng.choice([17 * 60 + 30, 18 * 60, 18 * 60, 18 * 60 + 30, 19 * 60], size=n)
    length = rng.choice([60, 90, 90, 120, 120], size=n)
    start_morning = rng.choice([9 * 60, 9 * 60 + 30, 10 * 60, 10 * 60 + 30], size=n)
    student_start = rng.choice([12 * 60, 17 * 60, 17 * 60 + 30], size=n)
    start = np.where(weekday >= 6, start_morning, start_evening)
    start = np.where(kind == Amap.Kind.STUDENT, student_start, start)
    end = np.minimum(start + length, 21 * 60)
    hours_known = rng.random(n) < 0.95
    frequency = pick(rng, {"weekly": 0.85, "fortnightly": 0.1, "monthly": 0.04, "other": 0.01}, n)

    name_style = rng.random(n)
    qualifier = rng.integers(0, len(AMAP_QUALIFIERS), n)
    nickname = rng.integers(0, len(AMAP_NICKNAMES), n)
    street = rng.integers(0, len(STREETS), n)
    venue = rng.integers(0, len(VENUES), n)
    number = rng.integers(1, 120, n)
    use_venue = rng.random(n) < 0.35
    platform = rng.integers(0, len(PLATFORMS), n)

    objects = []
    for i in range(n):
        p = place[i]
        town = places.name[p]
        external_id = amap_external_id(seed=seed, index=i)
        if kind[i] == Amap.Kind.STUDENT:
            name = f"AMAP étudiante {of(town)}"
        elif kind[i] == Amap.Kind.WORKPLACE:
            name = f"AMAP du personnel – {town}"
        elif name_style[i] < 0.3:
            name = f"AMAP {AMAP_NICKNAMES[nickname[i]]} – {town}"
        else:
            q = AMAP_QUALIFIERS[qualifier[i]]
            name = f"AMAP {q} {of(town)}" if q else f"AMAP {of(town)}"
        address = VENUES[venue[i]] if use_venue[i] else f"{number[i]} {STREETS[street[i]]}"
        days = [int(weekday[i])]
        if second_day[i] and weekday[i] < 6:
            days.append(int(weekday[i]) + 1 if weekday[i] < 5 else 6)
        objects.append(
            Amap(
                name=name + DEMO_SUFFIX,
                status=status[i],
                kind=kind[i],
                description=DESCRIPTION,
                location=Point(float(lon[i]), float(lat[i]), srid=4326),
                location_precision=LocationPrecision.EXACT,
                address=address,
                postal_code=places.postal_code[p],
                commune_id=places.commune_code[p],
                delivery_weekdays=sorted(days),
                delivery_start=dt.time(int(start[i]) // 60, int(start[i]) % 60) if hours_known[i] else None,
                delivery_end=dt.time(int(end[i]) // 60, int(end[i]) % 60) if hours_known[i] else None,
                delivery_frequency=frequency[i],
                accepting_members=accepting[i],
                member_count=int(members[i]) if members_known[i] else None,
                contact_email=f"amap-{external_id}@example.org",
                platform=PLATFORMS[platform[i]],
                founded_on=dt.date.fromordinal(int(founded[i])) if founded[i] else None,
                closed_on=dt.date.fromordinal(int(closed[i])) if closed[i] else None,
                source=DEMO_SOURCE,
                external_id=external_id,
                is_demo=True,
            )
        )
    return {
        "objects": objects,
        "place": place,
        "lon": lon,
        "lat": lat,
        "products": offered,
        "slugs": slugs,
        "product_ids": np.array([products[s] for s in slugs], dtype=np.int64),
        "status": status,
        "founded": founded,
        "closed": closed,
    }
