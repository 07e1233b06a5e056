"""Demo farms: names, main and side products, labels and delivery radius, drawn with numpy from one generator."""

from __future__ import annotations

import numpy as np
from django.contrib.gis.geos import Point

from ..models import Farm, LocationPrecision
from .bulk import product_matrix
from .labels import DEMO_SOURCE, DEMO_SUFFIX, DESCRIPTION, farm_external_id
from .places import Places, farm_weights, jitter, of, pick

# A farm's main production, and how often.
FARM_MAIN_PRODUCT = {
    "legumes": 0.34, "oeufs": 0.07, "volailles": 0.06, "fruits": 0.06, "pain": 0.06,
    "produits-laitiers-chevre": 0.06, "viande-bovine": 0.055, "produits-laitiers-vache": 0.05,
    "miel": 0.04, "viande-porcine": 0.035, "viande-ovine": 0.025, "produits-laitiers-brebis": 0.025,
    "farine-cereales": 0.02, "jus-cidre": 0.015, "champignons": 0.01, "plantes-aromatiques": 0.01,
    "legumineuses": 0.01, "confitures-conserves": 0.005, "huile": 0.005, "vin": 0.005, "biere": 0.005,
    "poisson": 0.005, "fleurs": 0.004, "coquillages": 0.003,
}  # fmt: skip


# What else a farm of that kind often sells.
FARM_SIDE_PRODUCTS = {
    "legumes": [("fruits", 0.15), ("oeufs", 0.1), ("plantes-aromatiques", 0.08), ("legumineuses", 0.05)],
    "volailles": [("oeufs", 0.5)],
    "oeufs": [("volailles", 0.3)],
    "pain": [("farine-cereales", 0.35)],
    "farine-cereales": [("legumineuses", 0.3), ("pain", 0.2)],
    "viande-bovine": [("produits-laitiers-vache", 0.2), ("viande-porcine", 0.1)],
    "viande-porcine": [("viande-bovine", 0.15)],
    "viande-ovine": [("produits-laitiers-brebis", 0.25)],
    "produits-laitiers-vache": [("viande-bovine", 0.25)],
    "produits-laitiers-chevre": [("viande-ovine", 0.05)],
    "fruits": [("jus-cidre", 0.25), ("confitures-conserves", 0.15)],
    "miel": [("confitures-conserves", 0.1)],
}


FARM_NAME_STEMS = {
    "legumes": ["Les Jardins", "Le Potager", "Les Serres", "Le Jardin maraîcher"],
    "fruits": ["Le Verger", "Les Vergers"],
    "oeufs": ["La Ferme des Poules", "Le Poulailler"],
    "volailles": ["La Basse-Cour", "La Ferme"],
    "viande-bovine": ["La Ferme", "L'Élevage"],
    "viande-porcine": ["La Ferme", "L'Élevage plein air"],
    "viande-ovine": ["La Bergerie"],
    "produits-laitiers-vache": ["La Ferme laitière", "La Fromagerie"],
    "produits-laitiers-chevre": ["La Chèvrerie"],
    "produits-laitiers-brebis": ["La Bergerie"],
    "pain": ["Le Fournil", "Le Four à pain"],
    "farine-cereales": ["Le Moulin"],
    "legumineuses": ["La Ferme"],
    "miel": ["Le Rucher"],
    "champignons": ["La Champignonnière"],
    "jus-cidre": ["La Cidrerie"],
    "vin": ["Le Domaine"],
    "biere": ["La Brasserie"],
    "huile": ["Le Moulin à huile"],
    "plantes-aromatiques": ["Le Jardin des Simples"],
    "poisson": ["La Pêcherie"],
    "coquillages": ["Les Parcs"],
    "confitures-conserves": ["La Conserverie"],
    "fleurs": ["Les Fleurs"],
}


FARM_STATUS_PREFIX = ["", "", "", "GAEC ", "EARL ", "SCEA "]
FARM_PLACES = ["lieu-dit Les Granges", "lieu-dit Le Moulin", "route de la Forêt", "chemin des Prés", "Le Bourg"]


def draw_farms(rng, places: Places, products: dict[str, int], n: int, seed: int) -> dict:
    slugs = list(products)
    place = rng.choice(len(places.lon), size=n, p=farm_weights(places))
    lon, lat = jitter(rng, places, place, share=0.7, cap_m=4000.0)
    main = pick(rng, {s: v for s, v in FARM_MAIN_PRODUCT.items() if s in products}, n)
    side_draw = rng.random((n, 4))
    label_draw = rng.random((n, 3))
    radius = rng.choice([10, 15, 20, 25, 30, 30, 40, 40, 50, 60, 80], size=n)
    capacity = rng.choice([20, 30, 40, 50, 60, 80, 100, 120, 150, 200, 300], size=n)
    capacity_known = rng.random(n) < 0.8
    active = rng.random(n) < 0.96
    prefix = rng.integers(0, len(FARM_STATUS_PREFIX), n)
    stem_draw = rng.random(n)
    place_name = rng.integers(0, len(FARM_PLACES), n)

    objects, farm_slugs = [], []
    for i in range(n):
        p = place[i]
        town = places.name[p]
        external_id = farm_external_id(seed=seed, index=i)
        own = [main[i]]
        for j, (slug, share) in enumerate(FARM_SIDE_PRODUCTS.get(main[i], [])[:4]):
            if side_draw[i, j] < share and slug in products:
                own.append(slug)
        farm_slugs.append(own)
        labels = []
        if label_draw[i, 0] < 0.45:
            labels.append(Farm.Label.ORGANIC)
            if label_draw[i, 1] < 0.08:
                labels.append(Farm.Label.DEMETER)
            elif label_draw[i, 1] < 0.14:
                labels.append(Farm.Label.BIO_COHERENCE)
        elif label_draw[i, 0] < 0.53:
            labels.append(Farm.Label.CONVERSION)
        elif label_draw[i, 0] < 0.58:
            labels.append(Farm.Label.NATURE_PROGRES)
        if label_draw[i, 2] < 0.15:
            labels.append(Farm.Label.PEASANT)
        stems = FARM_NAME_STEMS.get(main[i], ["La Ferme"])
        stem = stems[int(stem_draw[i] * len(stems))]
        farm = Farm(
            name=f"{FARM_STATUS_PREFIX[prefix[i]]}{stem} {of(town)}{DEMO_SUFFIX}",
            description=DESCRIPTION,
            is_active=bool(active[i]),
            location=Point(float(lon[i]), float(lat[i]), srid=4326),
            location_precision=LocationPrecision.EXACT,
            address=FARM_PLACES[place_name[i]],
            postal_code=places.postal_code[p],
            commune_id=places.commune_code[p],
            labels=labels,
            delivery_radius_km=int(radius[i]),
            capacity_shares=int(capacity[i]) if capacity_known[i] else None,
            contact_email=f"ferme-{external_id}@example.org",
            source=DEMO_SOURCE,
            external_id=external_id,
            is_demo=True,
        )
        # bulk_create skips save(): compute the stored masked point here.
        farm.public_location = farm.compute_public_location()
        objects.append(farm)
    return {
        "objects": objects,
        "place": place,
        "lon": lon,
        "lat": lat,
        "products": product_matrix(farm_slugs, slugs),
        "slugs": slugs,
        "product_ids": np.array([products[s] for s in slugs], dtype=np.int64),
        "radius_km": radius.astype(float),
        "active": active,
    }
