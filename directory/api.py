"""The directory's public REST API (/api/v1/amaps/, farms/, networks/, product-categories/).

Views parse the query with `directory.search`, call the selectors, serialize: no rule lives here.
The search endpoints' query parameters are documented here for the OpenAPI schema.
"""

import json
from urllib.parse import urlencode

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import BasePagination
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle
from rest_framework.viewsets import GenericViewSet, ReadOnlyModelViewSet

from geo.pagination import StrictLimitOffsetPagination

from . import selectors
from .models import Amap, Farm, ProductCategory
from .search import (
    AMAP_PARAMETERS,
    DEFAULT_LIMIT,
    FARM_PARAMETERS,
    MAX_BBOX_SPAN_DEG,
    MAX_LIMIT,
    MAX_OFFSET,
    MAX_RADIUS_KM,
    SearchParams,
    parse_search_params,
)
from .serializers import (
    AmapDetailSerializer,
    AmapFeatureSerializer,
    FarmDetailSerializer,
    FarmFeatureSerializer,
    NetworkDetailSerializer,
    NetworkSerializer,
    ProductCategorySerializer,
)


class _LiveRateMixin:
    # DRF copies the rates into a class attribute at import time; reading them per request
    # lets settings overrides (tests, the load benchmark's API_THROTTLE_* variables) apply.
    def get_rate(self):
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)


class PublicAnonThrottle(_LiveRateMixin, AnonRateThrottle):
    pass


class PublicUserThrottle(_LiveRateMixin, UserRateThrottle):
    pass


PUBLIC_THROTTLES = [PublicAnonThrottle, PublicUserThrottle]


# --- The search endpoints' query parameters, as the OpenAPI schema documents them --------------
# Parsing and limits live in `directory.search` (shared with the search pages). No django-filter
# FilterSet: it filters a QuerySet, while a nearest search is a ranked list built in two stages
# (index shortlist, then exact distance) and the pages need the very same parsing without one.


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

BAD_REQUEST = OpenApiResponse(
    response=OpenApiTypes.OBJECT,
    description='Paramètre invalide : `{"<paramètre>": ["<raison>"]}`, par exemple '
    '`{"near": ["la latitude doit être comprise entre -90 et 90 (reçu 91.0)"]}`.',
)


class FeatureTexts(list):
    """GeoJSON Features already written as JSON text (by PostGIS, in the search query)."""

    def __getitem__(self, index):
        item = super().__getitem__(index)
        return FeatureTexts(item) if isinstance(index, slice) else item


class SearchRenderer(JSONRenderer):
    """JSON in which a page's `FeatureTexts` go out as they were written.

    Parsing the features PostGIS built and encoding them again would cost a fifth of a nearest
    search request; the envelope (type, limit, links) is rendered as usual around them.
    """

    _SLOT = "\x00features\x00"  # cannot occur in the envelope (numbers and percent-encoded links)

    def render(self, data, accepted_media_type=None, renderer_context=None):
        features = data.get("features") if isinstance(data, dict) else None
        if not isinstance(features, FeatureTexts):
            return super().render(data, accepted_media_type, renderer_context)
        envelope = super().render({**data, "features": self._SLOT}, accepted_media_type, renderer_context)
        # Line and paragraph separators escaped, as DRF does, for the output to be valid JavaScript too.
        array = ("[" + ",".join(features) + "]").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
        return envelope.replace(json.dumps(self._SLOT).encode(), array.encode(), 1)


class SearchPagination(BasePagination):
    """`limit`/`offset` pages without a total count: counting 100k rows would cost more than the search.

    The page is fetched with one extra row to know whether a next page exists.
    """

    def paginate(self, rows: list, *, request, params: SearchParams) -> list:
        self.request, self.params = request, params
        self.has_next = len(rows) > params.limit
        return rows[: params.limit]

    def get_next_link(self) -> str | None:
        return self._link(self.params.offset + self.params.limit) if self.has_next else None

    def get_previous_link(self) -> str | None:
        if self.params.offset <= 0:
            return None
        return self._link(max(0, self.params.offset - self.params.limit))

    def _link(self, offset: int) -> str:
        """This search at another offset: the same parameters and page size."""
        query = [
            (key, value)
            for key, values in self.request.GET.lists()
            if key not in ("limit", "offset")
            for value in values
        ]
        query.append(("limit", self.params.limit))
        if offset:
            query.append(("offset", offset))
        return self.request.build_absolute_uri(f"{self.request.path}?{urlencode(query)}")

    def get_paginated_response(self, features: list) -> Response:
        return Response(
            {
                "type": "FeatureCollection",
                "limit": self.params.limit,
                "offset": self.params.offset,
                "next": self.get_next_link(),
                "previous": self.get_previous_link(),
                "features": features,
            }
        )

    def get_paginated_response_schema(self, schema: dict) -> dict:
        # drf-spectacular hands over the FeatureCollection component ("<Feature>List", named by its
        # rest_framework_gis extension); the page carries that collection's features directly.
        ref = schema.get("$ref", "")
        features = {"type": "array", "items": {"$ref": ref.removesuffix("List")}} if ref.endswith("List") else schema
        return {
            "type": "object",
            "required": ["type", "features"],
            "properties": {
                "type": {"type": "string", "enum": ["FeatureCollection"]},
                "limit": {"type": "integer"},
                "offset": {"type": "integer"},
                "next": {"type": "string", "format": "uri", "nullable": True},
                "previous": {"type": "string", "format": "uri", "nullable": True},
                "features": features,
            },
        }


def _validated(request, allowed: tuple[str, ...]) -> SearchParams:
    params = parse_search_params(request.query_params, allowed=allowed, empty_means_absent=False)
    if params.errors:
        raise ValidationError(params.errors)
    return params


class _SearchViewSet(GenericViewSet):
    """`list` is the nearest/filtered search, `retrieve` one object through its detail selector."""

    throttle_classes = PUBLIC_THROTTLES
    pagination_class = SearchPagination
    renderer_classes = [SearchRenderer, BrowsableAPIRenderer]
    parameters: tuple[str, ...] = ()
    list_serializer_class = None
    detail_serializer_class = None

    def get_serializer_class(self):
        return self.detail_serializer_class if self.action == "retrieve" else self.list_serializer_class

    def search(self, params: SearchParams, *, limit: int) -> list:
        """The GeoJSON Features of the results, as dicts or as `FeatureTexts`."""
        raise NotImplementedError

    def fetch(self, pk: int):
        raise NotImplementedError

    def list(self, request, *args, **kwargs):
        params = _validated(request, self.parameters)
        features = self.search(params, limit=params.limit + 1)
        page = self.paginator.paginate(features, request=request, params=params)
        return self.paginator.get_paginated_response(page)

    def retrieve(self, request, pk: int, *args, **kwargs):
        obj = self.fetch(pk)
        if obj is None:
            raise Http404
        return Response(self.get_serializer(obj).data)


@extend_schema_view(
    list=extend_schema(
        summary="AMAP les plus proches d'un point, ou filtrées",
        description="Collection GeoJSON d'AMAP actives. Avec `near` : triées par distance géodésique, chaque "
        "AMAP avec `distance_m`. Sans `near` : triées par nom puis identifiant (pages stables).",
        parameters=AMAP_LIST_PARAMETERS,
        responses={200: AmapFeatureSerializer, 400: BAD_REQUEST},
    ),
    retrieve=extend_schema(summary="Une AMAP (y compris fermée : voir `status`)"),
)
class AmapViewSet(_SearchViewSet):
    queryset = Amap.objects.none()
    parameters = AMAP_PARAMETERS
    list_serializer_class = AmapFeatureSerializer
    detail_serializer_class = AmapDetailSerializer

    def search(self, params: SearchParams, *, limit: int) -> list:
        if params.near is not None:
            # The features as PostGIS built them in the search query (the pages' search too).
            found = selectors.amap_features_near(
                point=params.near, limit=limit, offset=params.offset, **params.filters()
            )
            return FeatureTexts(result.geojson for result in found)
        filters = {key: value for key, value in params.filters().items() if key != "radius_km"}
        amaps = selectors.amaps_page(limit=limit, offset=params.offset, **filters)
        return self.get_serializer(amaps, many=True).data["features"]

    def fetch(self, pk: int) -> Amap | None:
        return selectors.amap_detail(pk=pk)


@extend_schema_view(
    list=extend_schema(
        summary="Fermes les plus proches d'un point, ou filtrées",
        description="Collection GeoJSON de fermes en activité, chacune à son emplacement public approximatif "
        "(décalé de 500 à 1 500 m, ou point de la commune) : l'emplacement exact n'est jamais publié. "
        "Avec `near`, `distance_m` est la distance à ce point public.",
        parameters=FARM_LIST_PARAMETERS,
        responses={200: FarmFeatureSerializer, 400: BAD_REQUEST},
    ),
    retrieve=extend_schema(summary="Une ferme, à son emplacement public approximatif"),
)
class FarmViewSet(_SearchViewSet):
    queryset = Farm.objects.none()
    parameters = FARM_PARAMETERS
    list_serializer_class = FarmFeatureSerializer
    detail_serializer_class = FarmDetailSerializer

    def search(self, params: SearchParams, *, limit: int) -> list:
        filters = {"products": params.products, "network": params.network, "bbox": params.bbox}
        if params.near is not None:
            found = selectors.farm_features_near(
                point=params.near, limit=limit, offset=params.offset, radius_km=params.radius_km, **filters
            )
            return FeatureTexts(result.geojson for result in found)
        farms = selectors.farms_page(limit=limit, offset=params.offset, **filters)
        return self.get_serializer(farms, many=True).data["features"]

    def fetch(self, pk: int) -> Farm | None:
        return selectors.farm_detail(pk=pk)


class NetworkPagination(StrictLimitOffsetPagination):
    default_limit = 50
    max_limit = MAX_LIMIT


@extend_schema_view(
    list=extend_schema(summary="Réseaux d'AMAP (par nom)"),
    retrieve=extend_schema(summary="Un réseau"),
)
class NetworkViewSet(ReadOnlyModelViewSet):
    throttle_classes = PUBLIC_THROTTLES
    pagination_class = NetworkPagination
    lookup_field = "slug"

    def get_queryset(self):
        return selectors.networks_with_counts()

    def get_serializer_class(self):
        return NetworkDetailSerializer if self.action == "retrieve" else NetworkSerializer


@extend_schema_view(list=extend_schema(summary="Catégories de produits (identifiants utilisables dans `products=`)"))
class ProductCategoryViewSet(ReadOnlyModelViewSet):
    serializer_class = ProductCategorySerializer
    queryset = ProductCategory.objects.order_by("position", "name", "pk")
    throttle_classes = PUBLIC_THROTTLES
    pagination_class = None
