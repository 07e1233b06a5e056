"""Coverage API: `/api/v1/networks/<slug>/coverage/` (figures) and `/white-zones/` (GeoJSON).

Both take `radius_km` (0.5–50, default 10), `min_population` (default 1000) and, for the
figures, `product` (a product category slug). Bad values are answered with a 400 naming the
parameter; a network without territory gets a 400 on `territory`.
"""

import json

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from directory.api import BAD_REQUEST, PUBLIC_THROTTLES
from directory.models import Network, ProductCategory

from . import exports, figures
from .territory import TerritoryError


class CoverageQuerySerializer(serializers.Serializer):
    radius_km = serializers.FloatField(
        required=False,
        default=figures.RADIUS_KM_DEFAULT,
        min_value=figures.RADIUS_KM_MIN,
        max_value=figures.RADIUS_KM_MAX,
        help_text="Rayon en km autour des lieux de livraison des AMAP (0,5 à 50 ; 10 par défaut).",
        error_messages={
            "invalid": "le rayon doit être un nombre de kilomètres",
            "min_value": f"le rayon doit être d'au moins {figures.RADIUS_KM_MIN} km",
            "max_value": f"le rayon ne peut pas dépasser {figures.RADIUS_KM_MAX:g} km",
        },
    )
    product = serializers.SlugField(
        required=False,
        allow_blank=True,
        default="",
        help_text="Identifiant d'une catégorie de produits (voir /api/v1/product-categories/).",
    )
    min_population = serializers.IntegerField(
        required=False,
        default=figures.MIN_POPULATION_DEFAULT,
        min_value=0,
        max_value=figures.MIN_POPULATION_MAX,
        help_text="Seuil de population des zones blanches (communes et groupes de communes voisines).",
    )

    def validate_radius_km(self, value):
        import math

        if not math.isfinite(value):
            raise serializers.ValidationError("le rayon doit être un nombre fini")
        return value

    def validate_product(self, value):
        if value and not ProductCategory.objects.filter(slug=value).exists():
            raise serializers.ValidationError(f"produit inconnu : {value}")
        return value or None


class WhiteZonesQuerySerializer(CoverageQuerySerializer):
    product = None
    kind = serializers.ChoiceField(
        choices=["all", "communes", "groups"],
        required=False,
        default="all",
        help_text="`communes`, `groups` (groupes de communes voisines) ou `all`.",
    )


def _params(serializer_class, request) -> dict:
    unknown = set(request.query_params) - set(serializer_class().fields) - {"format"}
    if unknown:
        raise serializers.ValidationError({name: ["paramètre inconnu"] for name in sorted(unknown)})
    serializer = serializer_class(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _coverage(network: Network, **params) -> dict:
    try:
        return figures.coverage_for_network(network=network, **params)
    except TerritoryError as error:
        raise serializers.ValidationError({"territory": [str(error)]}) from error


COVERAGE_EXAMPLE = {
    "network": {"slug": "inter-amap-gironde", "name": "Réseau Inter-AMAP Gironde", "level": "departmental"},
    "params": {"radius_km": 10.0, "product": None, "min_population": 1000},
    "methods": {"reference_point": "point de référence de la commune", "area_weighted": "surface pondérée"},
    "figures": {"population": 1690493, "communes": 534, "amaps": 105, "amaps_per_100k": 6.21},
    "reference_point": {"method": "reference_point", "radius_km": 10.0, "share": 0.915},
    "area_weighted": {"method": "area_weighted", "radius_km": 10.0, "share": 0.92},
    "curve": [{"radius_km": 5.0, "share": 0.799}],
    "white_zones": {"communes": [{"names": ["La Teste-de-Buch"], "population": 27566, "nearest_km": 10.28}]},
    "product_gaps": [{"slug": "legumes", "share": 0.9, "missing_communes": 120}],
    "opportunities": {"farms_without_partner_total": 12},
    "history": {"years": [{"year": 2010, "created": 5, "active": 30, "share": 0.8}]},
}


class NetworkCoverageView(APIView):
    throttle_classes = PUBLIC_THROTTLES

    @extend_schema(
        operation_id="network_coverage",
        summary="Couverture d'un réseau",
        description=(
            "Population à moins de `radius_km` d'une AMAP active (méthode « point de référence de la commune », "
            "et « surface pondérée » quand le territoire est assez petit), AMAP et fermes pour 100 000 habitants "
            "par département et région, zones blanches, produits manquants, opportunités, historique. "
            "AMAP prises en compte : celles du territoire plus celles rattachées au réseau."
        ),
        parameters=[CoverageQuerySerializer],
        responses={
            200: OpenApiResponse(
                response=OpenApiTypes.OBJECT,
                description="Chiffres de couverture",
                examples=[OpenApiExample("Gironde (extrait, valeurs arrondies)", value=COVERAGE_EXAMPLE)],
            ),
            400: BAD_REQUEST,
            404: OpenApiResponse(description="Réseau inconnu"),
        },
        tags=["networks"],
    )
    def get(self, request, slug: str):
        network = get_object_or_404(Network, slug=slug)
        params = _params(CoverageQuerySerializer, request)
        result = _coverage(network, **params)
        return Response(exports.coverage_public(result))


class NetworkWhiteZonesView(APIView):
    throttle_classes = PUBLIC_THROTTLES

    @extend_schema(
        operation_id="network_white_zones",
        summary="Zones blanches d'un réseau (GeoJSON)",
        description=(
            "Communes et groupes de communes voisines à plus de `radius_km` de toute AMAP active, "
            "d'au moins `min_population` habitants, classés par population ; propriétés : `kind`, `rank`, "
            "`names`, `codes`, `population`, `nearest_km`."
        ),
        parameters=[WhiteZonesQuerySerializer],
        responses={
            (200, "application/geo+json"): OpenApiResponse(
                response=OpenApiTypes.OBJECT, description="FeatureCollection GeoJSON (WGS84)"
            ),
            400: BAD_REQUEST,
            404: OpenApiResponse(description="Réseau inconnu"),
        },
        tags=["networks"],
    )
    def get(self, request, slug: str):
        network = get_object_or_404(Network, slug=slug)
        params = _params(WhiteZonesQuerySerializer, request)
        kind = params.pop("kind")
        result = _coverage(network, **params)
        text = exports.white_zones_geojson(result)
        if kind != "all":
            collection = json.loads(text)
            wanted = "commune" if kind == "communes" else "group"
            collection["features"] = [f for f in collection["features"] if f["properties"]["kind"] == wanted]
            text = json.dumps(collection)
        return HttpResponse(text, content_type="application/geo+json")
