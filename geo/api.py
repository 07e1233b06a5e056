"""Public geo endpoints: the geocoder and the commune search (throttled, bad input answered with 400)."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle
from rest_framework.views import APIView

from .geocoding import GeocodingError, commune_codes_matching, geocode
from .models import Commune
from .pagination import StrictLimitOffsetPagination
from .serializers import (
    COMMUNES_MAX_LIMIT,
    GEOCODE_MAX_LIMIT,
    CommuneQuerySerializer,
    CommuneSearchResultSerializer,
    GeocodeCandidateSerializer,
    GeocodeQuerySerializer,
)

_BAD_REQUEST = OpenApiResponse(
    response=OpenApiTypes.OBJECT,
    description="Paramètre invalide : le corps nomme le paramètre et la raison.",
    examples=[OpenApiExample("q manquant", value={"q": ["Ce champ est obligatoire."]})],
)


def _query_params(serializer_class, request) -> dict:
    serializer = serializer_class(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class GeocodeView(APIView):
    """Ville, code postal, code INSEE, arrondissement, adresse ou « lat, lon » → lieux candidats."""

    permission_classes = [AllowAny]
    throttle_classes = [AnonRateThrottle, UserRateThrottle]

    @extend_schema(
        operation_id="geocode",
        summary="Géocoder un texte",
        parameters=[
            OpenApiParameter(
                "q",
                str,
                required=True,
                description="« Bordeaux », « 33000 », « Lyon 7e », « Saint-Denis 93 », « 44.84, -0.58 »…",
            ),
            OpenApiParameter("limit", int, description=f"1 à {GEOCODE_MAX_LIMIT} (10 par défaut)"),
        ],
        responses={200: GeocodeCandidateSerializer(many=True), 400: _BAD_REQUEST},
        tags=["géographie"],
    )
    def get(self, request):
        params = _query_params(GeocodeQuerySerializer, request)
        try:
            candidates = geocode(params["q"], limit=params["limit"])
        except GeocodingError as error:
            raise ValidationError({"q": [str(error)]}) from error
        return Response(GeocodeCandidateSerializer(candidates, many=True).data)


class CommunePagination(StrictLimitOffsetPagination):
    default_limit = 20
    max_limit = COMMUNES_MAX_LIMIT


class CommuneSearchView(GenericAPIView):
    """Communes dont le nom, un code postal ou le code INSEE commence par `q` (sans contours)."""

    permission_classes = [AllowAny]
    throttle_classes = [AnonRateThrottle, UserRateThrottle]
    pagination_class = CommunePagination
    serializer_class = CommuneSearchResultSerializer
    queryset = Commune.objects.none()  # the search runs in the in-memory gazetteer

    @extend_schema(
        operation_id="communes_search",
        summary="Rechercher une commune",
        parameters=[
            OpenApiParameter(
                "q",
                str,
                required=True,
                description="début du nom (« bord »), du code postal (« 330 ») ou du code INSEE (« 2A0 »)",
            ),
            OpenApiParameter("limit", int, description=f"1 à {COMMUNES_MAX_LIMIT} (20 par défaut)"),
            OpenApiParameter("offset", int, description="rang du premier résultat"),
        ],
        responses={200: CommuneSearchResultSerializer(many=True), 400: _BAD_REQUEST},
        tags=["géographie"],
    )
    def get(self, request):
        params = _query_params(CommuneQuerySerializer, request)
        # Ranked codes (exact names, then prefixes by population); only the page is read from the database.
        codes = commune_codes_matching(params["q"], limit=100_000)
        page_codes = self.paginate_queryset(codes)
        communes = (
            Commune.objects.filter(code__in=page_codes)
            .select_related("department", "region")
            .defer("geom", "department__geom", "region__geom")
        )
        by_code = {c.code: c for c in communes}
        ordered = [by_code[code] for code in page_codes if code in by_code]
        return self.get_paginated_response(self.get_serializer(ordered, many=True).data)
