"""The query parameters of the search endpoints, as documented in the OpenAPI schema.

Parsing and limits live in `directory.search` (shared with the search pages); the selectors in
`directory.selectors` apply them. A django-filter FilterSet is not used here on purpose: it
filters a QuerySet, while a nearest search is a ranked list built in two stages (index
shortlist, then exact distance), and the pages need the very same parsing without a FilterSet.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter

from .search import DEFAULT_LIMIT, FARM_PARAMETERS, MAX_BBOX_SPAN_DEG, MAX_LIMIT, MAX_OFFSET, MAX_RADIUS_KM

AMAP_PARAMETERS = ("near", "radius_km", "bbox", "products", "weekday", "accepting", "network", "limit", "offset")


def _query(name: str, type_, description: str, examples: list[OpenApiExample] | None = None) -> OpenApiParameter:
    return OpenApiParameter(
        name, type_, OpenApiParameter.QUERY, required=False, description=description, examples=examples or []
    )


_DOCS: dict[str, OpenApiParameter] = {
    "near": _query(
        "near",
        OpenApiTypes.STR,
        "Point de départ `longitude,latitude` (WGS84, point décimal), en France ou outre-mer. "
        "Avec `near`, les résultats sont triés par distance géodésique croissante (`distance_m`, en mètres) ; "
        "sans `near`, par nom puis identifiant (pages stables).",
        [OpenApiExample("Bordeaux", value="-0.5792,44.8378")],
    ),
    "radius_km": _query(
        "radius_km",
        OpenApiTypes.DOUBLE,
        f"Rayon de recherche autour de `near`, en kilomètres (0 < rayon ≤ {int(MAX_RADIUS_KM)}). Demande `near`.",
    ),
    "bbox": _query(
        "bbox",
        OpenApiTypes.STR,
        "Rectangle `minlon,minlat,maxlon,maxlat` (WGS84), bords compris ; "
        f"au plus {int(MAX_BBOX_SPAN_DEG)} degrés de côté.",
        [OpenApiExample("Gironde", value="-1.27,44.19,0.32,45.58")],
    ),
    "products": _query(
        "products",
        OpenApiTypes.STR,
        "Identifiants de catégories de produits séparés par des virgules (voir `/api/v1/product-categories/`) ; "
        "seuls les résultats qui proposent **tous** ces produits sont gardés.",
        [OpenApiExample("Légumes et œufs", value="legumes,oeufs")],
    ),
    "weekday": _query("weekday", OpenApiTypes.INT, "Jour de distribution : 1 = lundi … 7 = dimanche."),
    "accepting": _query(
        "accepting",
        OpenApiTypes.BOOL,
        "`true` : seulement les AMAP qui accueillent de nouveaux membres ; `false` : les autres "
        "(liste d'attente, complet, non précisé).",
    ),
    "network": _query("network", OpenApiTypes.STR, "Identifiant d'un réseau (voir `/api/v1/networks/`)."),
    "limit": _query(
        "limit", OpenApiTypes.INT, f"Nombre de résultats par page (défaut {DEFAULT_LIMIT}, 1 à {MAX_LIMIT})."
    ),
    "offset": _query(
        "offset", OpenApiTypes.INT, f"Nombre de résultats à sauter (0 à {MAX_OFFSET}) ; voir le lien `next`."
    ),
}

AMAP_LIST_PARAMETERS = [_DOCS[name] for name in AMAP_PARAMETERS]
FARM_LIST_PARAMETERS = [_DOCS[name] for name in FARM_PARAMETERS]
