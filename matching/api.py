"""API: /api/v1/annonces/ (list, create, update with object permissions) and their ranked matches."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, inline_serializer
from rest_framework import mixins, permissions, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle

from accounts import permissions as perms
from directory.models import Amap, Farm, Network, ProductCategory
from geo.models import Department
from geo.pagination import StrictLimitOffsetPagination

from . import services
from .models import Annonce
from .selectors import MAX_MATCHES, annonces_board, matches_for_annonce


def _drf_error(error: DjangoValidationError) -> ValidationError:
    if hasattr(error, "error_dict"):
        return ValidationError(error.message_dict)
    return ValidationError({"non_field_errors": error.messages})


_REF = inline_serializer("Ref", {"id": serializers.IntegerField(), "name": serializers.CharField()})
_REF_OR_NULL = inline_serializer(
    "Ref", {"id": serializers.IntegerField(), "name": serializers.CharField()}, allow_null=True
)
_COMMUNE = inline_serializer(
    "CommuneRef", {"code": serializers.CharField(), "name": serializers.CharField()}, allow_null=True
)
_POINT = inline_serializer("LonLat", {"lon": serializers.FloatField(), "lat": serializers.FloatField()})


class AnnonceSerializer(serializers.ModelSerializer):
    """An annonce as anyone may see it: a farm's point is its public (masked) one."""

    status = serializers.CharField(source="effective_status", read_only=True)
    farm = serializers.SerializerMethodField()
    amap = serializers.SerializerMethodField()
    products = serializers.SlugRelatedField(slug_field="slug", many=True, read_only=True)
    commune = serializers.SerializerMethodField()
    point = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()

    class Meta:
        model = Annonce
        fields = [
            "id",
            "kind",
            "status",
            "title",
            "farm",
            "amap",
            "products",
            "shares",
            "delivery_weekdays",
            "radius_km",
            "delivery_place",
            "commune",
            "point",
            "start_date",
            "expires_on",
            "description",
            "created_at",
            "url",
        ]
        read_only_fields = fields

    @extend_schema_field(_REF_OR_NULL)
    def get_farm(self, obj) -> dict | None:
        return {"id": obj.farm_id, "name": obj.farm.name} if obj.farm_id else None

    @extend_schema_field(_REF_OR_NULL)
    def get_amap(self, obj) -> dict | None:
        return {"id": obj.amap_id, "name": obj.amap.name} if obj.amap_id else None

    @extend_schema_field(_COMMUNE)
    def get_commune(self, obj) -> dict | None:
        return {"code": obj.commune_id, "name": obj.commune.name} if obj.commune_id else None

    @extend_schema_field(_POINT)
    def get_point(self, obj) -> dict:
        return {"lon": round(obj.public_location.x, 6), "lat": round(obj.public_location.y, 6)}

    def get_url(self, obj) -> str:
        return obj.get_absolute_url()


class _Weekdays(serializers.ListField):
    child = serializers.IntegerField(min_value=1, max_value=7)


class AnnonceWriteSerializer(serializers.Serializer):
    """What a publisher sends; the services decide the rest (place, permissions)."""

    kind = serializers.ChoiceField(choices=Annonce.Kind.choices)
    farm = serializers.PrimaryKeyRelatedField(queryset=Farm.objects.all(), required=False, allow_null=True)
    amap = serializers.PrimaryKeyRelatedField(queryset=Amap.objects.all(), required=False, allow_null=True)
    products = serializers.SlugRelatedField(
        slug_field="slug", many=True, queryset=ProductCategory.objects.all(), allow_empty=False
    )
    shares = serializers.IntegerField(min_value=1, max_value=10_000, required=False, allow_null=True)
    delivery_weekdays = _Weekdays(required=False, max_length=7)
    radius_km = serializers.IntegerField(min_value=1, max_value=300, default=30)
    delivery_place = serializers.CharField(max_length=300, required=False, allow_blank=True)
    start_date = serializers.DateField(required=False, allow_null=True)
    expires_on = serializers.DateField(required=False, allow_null=True)
    title = serializers.CharField(max_length=200, required=False, allow_blank=True)
    description = serializers.CharField(max_length=5000, required=False, allow_blank=True)


class AnnonceUpdateSerializer(serializers.Serializer):
    products = serializers.SlugRelatedField(
        slug_field="slug", many=True, queryset=ProductCategory.objects.all(), allow_empty=False, required=False
    )
    shares = serializers.IntegerField(min_value=1, max_value=10_000, required=False, allow_null=True)
    delivery_weekdays = _Weekdays(required=False, max_length=7)
    radius_km = serializers.IntegerField(min_value=1, max_value=300, required=False)
    delivery_place = serializers.CharField(max_length=300, required=False, allow_blank=True)
    start_date = serializers.DateField(required=False, allow_null=True)
    expires_on = serializers.DateField(required=False)
    title = serializers.CharField(max_length=200, required=False, allow_blank=True)
    description = serializers.CharField(max_length=5000, required=False, allow_blank=True)
    status = serializers.ChoiceField(
        choices=[Annonce.Status.OPEN, Annonce.Status.PAUSED, Annonce.Status.FULFILLED], required=False
    )


class MatchSerializer(serializers.Serializer):
    rank = serializers.IntegerField()
    counterpart = inline_serializer(
        "Counterpart",
        {
            "type": serializers.ChoiceField(choices=["amap", "farm"]),
            "id": serializers.IntegerField(),
            "name": serializers.CharField(),
            "url": serializers.CharField(),
        },
    )
    counterpart_annonce = serializers.IntegerField(allow_null=True, help_text="its own open annonce, if any")
    score = serializers.FloatField(help_text="in [0, 1]")
    components = serializers.DictField(child=serializers.FloatField(), help_text="each in [0, 1]")
    reasons = serializers.ListField(child=serializers.CharField(), help_text="French sentences, each a fact")
    distance_m = serializers.FloatField(help_text="geodesic metres (to 100 m for a farm)")
    drive_minutes = serializers.FloatField()
    drive_time_source = serializers.ChoiceField(
        choices=["estimation", "osrm"], help_text="'estimation' = distance × circuity ÷ speed"
    )
    point = _POINT


def _match_payload(rank: int, match) -> dict:
    route = "directory:amap_detail" if match.counterpart_type == "amap" else "directory:farm_detail"
    return {
        "rank": rank,
        "counterpart": {
            "type": match.counterpart_type,
            "id": match.counterpart_id,
            "name": match.name,
            "url": reverse(route, args=[match.counterpart_id]),
        },
        "counterpart_annonce": match.annonce_id,
        "score": match.score,
        "components": match.components,
        "reasons": match.reasons,
        "distance_m": match.distance_m,
        "drive_minutes": match.drive_minutes,
        "drive_time_source": match.drive_source,
        "point": {"lon": round(match.lon, 6), "lat": round(match.lat, 6)},
    }


_FILTERS = [
    OpenApiParameter("type", str, enum=Annonce.Kind.values, description="paysan_cherche_amap or amap_cherche_paysan"),
    OpenApiParameter("produit", str, description="product category slug, e.g. oeufs"),
    OpenApiParameter("departement", str, description="département code, e.g. 33"),
    OpenApiParameter("reseau", str, description="network slug"),
]


class AnnonceViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Open annonces, newest first; publishers create and update theirs."""

    serializer_class = AnnonceSerializer
    permission_classes = [permissions.IsAuthenticatedOrReadOnly]
    pagination_class = StrictLimitOffsetPagination
    throttle_classes = [AnonRateThrottle, UserRateThrottle]

    def get_queryset(self):
        if self.action == "list":
            return annonces_board(**self._filters())
        return Annonce.objects.select_related("farm", "amap", "commune").prefetch_related("products")

    def _filters(self) -> dict:
        params = self.request.query_params
        errors = {}
        kind = params.get("type") or None
        if kind and kind not in Annonce.Kind.values:
            errors["type"] = [f"valeurs possibles : {', '.join(Annonce.Kind.values)}"]
        product = params.get("produit") or None
        if product and not ProductCategory.objects.filter(slug=product).exists():
            errors["produit"] = [f"produit inconnu : « {product[:60]} »"]
        department = params.get("departement") or None
        if department and not Department.objects.filter(code=department).exists():
            errors["departement"] = [f"département inconnu : « {department[:10]} »"]
        network = params.get("reseau") or None
        if network and not Network.objects.filter(slug=network).exists():
            errors["reseau"] = [f"réseau inconnu : « {network[:60]} »"]
        if errors:
            raise ValidationError(errors)
        return {"kind": kind, "product": product, "department": department, "network": network}

    def get_object(self):
        annonce = super().get_object()
        user = self.request.user
        visible = annonce.effective_status == Annonce.Status.OPEN or perms.can_see_matches(user, annonce)
        if not visible:
            raise NotFound()
        return annonce

    @extend_schema(parameters=_FILTERS)
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(request=AnnonceWriteSerializer, responses={201: AnnonceSerializer})
    def create(self, request, *args, **kwargs):
        incoming = AnnonceWriteSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = dict(incoming.validated_data)
        try:
            annonce = services.annonce_publish(user=request.user, **data)
        except DjangoPermissionDenied as error:
            raise PermissionDenied(str(error)) from error
        except DjangoValidationError as error:
            raise _drf_error(error) from error
        return Response(AnnonceSerializer(annonce).data, status=201)

    @extend_schema(request=AnnonceUpdateSerializer, responses={200: AnnonceSerializer})
    def update(self, request, *args, **kwargs):
        annonce = self.get_object()
        if not perms.can_edit_annonce(request.user, annonce):
            raise PermissionDenied("Vous ne pouvez pas modifier cette annonce.")
        incoming = AnnonceUpdateSerializer(data=request.data, partial=kwargs.get("partial", False))
        incoming.is_valid(raise_exception=True)
        data = dict(incoming.validated_data)
        products = data.pop("products", None)
        try:
            annonce = services.annonce_update(user=request.user, annonce=annonce, products=products, **data)
        except DjangoPermissionDenied as error:
            raise PermissionDenied(str(error)) from error
        except DjangoValidationError as error:
            raise _drf_error(error) from error
        return Response(AnnonceSerializer(annonce).data)

    @extend_schema(request=AnnonceUpdateSerializer, responses={200: AnnonceSerializer})
    def partial_update(self, request, *args, **kwargs):
        return self.update(request, *args, partial=True, **kwargs)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "limit", {"type": "integer", "minimum": 1, "maximum": MAX_MATCHES}, description="default 10"
            )
        ],
        responses={
            200: inline_serializer(
                "AnnonceMatches",
                {
                    "annonce": serializers.IntegerField(),
                    "count": serializers.IntegerField(),
                    "results": MatchSerializer(many=True),
                },
            )
        },
    )
    @action(detail=True, methods=["get"], permission_classes=[permissions.IsAuthenticated])
    def matches(self, request, pk=None):
        """Ranked counterparts with score, components, reasons, distance and drive time (publisher, moderators)."""
        annonce = self.get_object()
        if not perms.can_see_matches(request.user, annonce):
            raise PermissionDenied("Seuls l'annonceur et les modérateurs du territoire voient les correspondances.")
        raw = request.query_params.get("limit", "10")
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_MATCHES:
            raise ValidationError({"limit": [f"un entier entre 1 et {MAX_MATCHES}"]})
        matches = matches_for_annonce(annonce=annonce, limit=int(raw))
        results = [_match_payload(rank, m) for rank, m in enumerate(matches, start=1)]
        return Response({"annonce": annonce.pk, "count": len(results), "results": results})
