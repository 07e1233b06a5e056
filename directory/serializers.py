"""Public API representations of the directory (GeoJSON for places, plain JSON otherwise).

Farms are shown at their masked `public_location` only: no serializer here names the private
`Farm.location`, nor any farmer's e-mail or phone.
"""

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework_gis.serializers import GeoFeatureModelSerializer

from .models import Amap, Farm, Network, Partnership

# Small nested shapes are plain serializers: a ModelSerializer introspects its model on every
# response, which costs more than the nearest search itself.


class ProductCategorySerializer(serializers.Serializer):
    slug = serializers.CharField(read_only=True)
    name = serializers.CharField(read_only=True)
    family = serializers.CharField(read_only=True)


class CommuneSerializer(serializers.Serializer):
    code = serializers.CharField(read_only=True, help_text="Code INSEE")
    name = serializers.CharField(read_only=True)
    department = serializers.CharField(source="department_id", read_only=True, help_text="Code du département")


class NetworkRefSerializer(serializers.Serializer):
    slug = serializers.CharField(read_only=True)
    name = serializers.CharField(read_only=True)


def _point(point) -> dict | None:
    return None if point is None else {"type": "Point", "coordinates": [point.x, point.y]}


def _iso(value) -> str | None:
    return None if value is None else value.isoformat()


def _products(obj) -> list[dict]:
    products = getattr(obj, "product_list", None)  # set by the search selectors
    products = obj.products.all() if products is None else products
    return [{"slug": p.slug, "name": p.name, "family": p.family} for p in products]


def _networks(obj) -> list[dict]:
    networks = getattr(obj, "network_list", None)
    networks = obj.networks.all() if networks is None else networks
    return [{"slug": n.slug, "name": n.name} for n in networks]


def _commune(commune) -> dict | None:
    if commune is None:
        return None
    return {"code": commune.code, "name": commune.name, "department": commune.department_id}


class _DistanceMixin(serializers.Serializer):
    distance_m = serializers.SerializerMethodField(
        help_text="Distance géodésique (ellipsoïde WGS84) en mètres depuis `near` ; null sans `near`."
    )

    @extend_schema_field({"type": "number", "format": "double", "nullable": True})
    def get_distance_m(self, obj) -> float | None:
        distance = getattr(obj, "distance_m", None)
        return None if distance is None else round(distance, 1)


class AmapFeatureSerializer(_DistanceMixin, GeoFeatureModelSerializer):
    """An AMAP as a GeoJSON Feature at its delivery place."""

    commune = CommuneSerializer(read_only=True)
    products = ProductCategorySerializer(many=True, read_only=True)
    networks = NetworkRefSerializer(many=True, read_only=True)
    page_url = serializers.SerializerMethodField()

    class Meta:
        model = Amap
        geo_field = "location"
        fields = [
            "id",
            "name",
            "distance_m",
            "status",
            "kind",
            "accepting_members",
            "address",
            "postal_code",
            "commune",
            "delivery_weekdays",
            "delivery_start",
            "delivery_end",
            "delivery_frequency",
            "delivery_notes",
            "products",
            "networks",
            "website",
            "page_url",
            "is_demo",
        ]

    def get_page_url(self, obj: Amap) -> str:
        return reverse("directory:amap_detail", args=[obj.pk])

    def to_representation(self, amap: Amap) -> dict:
        """The declared fields' Feature, built by hand: DRF's generic path costs more than the search.

        Lists without `near` use it; nearest searches publish the Feature that PostGIS builds in
        the search query (directory.selectors). tests/directory/test_api.py checks that the three
        give the same document.
        """
        return {
            "id": amap.pk,
            "type": "Feature",
            "geometry": _point(amap.location),
            "properties": {
                "name": amap.name,
                "distance_m": self.get_distance_m(amap),
                "status": amap.status,
                "kind": amap.kind,
                "accepting_members": amap.accepting_members,
                "address": amap.address,
                "postal_code": amap.postal_code,
                "commune": _commune(amap.commune),
                "delivery_weekdays": list(amap.delivery_weekdays),
                "delivery_start": _iso(amap.delivery_start),
                "delivery_end": _iso(amap.delivery_end),
                "delivery_frequency": amap.delivery_frequency,
                "delivery_notes": amap.delivery_notes,
                "products": _products(amap),
                "networks": _networks(amap),
                "website": amap.website,
                "page_url": self.get_page_url(amap),
                "is_demo": amap.is_demo,
            },
        }


class PartnerFarmSerializer(serializers.ModelSerializer):
    farm = serializers.SerializerMethodField()
    product = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = Partnership
        fields = ["farm", "product", "since"]

    def get_farm(self, obj: Partnership) -> dict:
        return {"id": obj.farm_id, "name": obj.farm.name}


class AmapDetailSerializer(AmapFeatureSerializer):
    """One AMAP with its public contact and its active partner farms."""

    to_representation = GeoFeatureModelSerializer.to_representation  # one object: the generic path will do

    partner_farms = serializers.SerializerMethodField()

    class Meta(AmapFeatureSerializer.Meta):
        fields = AmapFeatureSerializer.Meta.fields + [
            "description",
            "contact_email",
            "member_count",
            "platform",
            "founded_on",
            "partner_farms",
        ]

    @extend_schema_field(PartnerFarmSerializer(many=True))
    def get_partner_farms(self, obj: Amap) -> list[dict]:
        partnerships = getattr(obj, "active_partnerships", None)
        if partnerships is None:
            partnerships = obj.partnerships.active().select_related("farm", "product")
        return PartnerFarmSerializer(partnerships, many=True).data


class FarmFeatureSerializer(_DistanceMixin, GeoFeatureModelSerializer):
    """A farm as a GeoJSON Feature at its masked public point (never the exact one)."""

    commune = CommuneSerializer(read_only=True)
    products = ProductCategorySerializer(many=True, read_only=True)
    networks = NetworkRefSerializer(many=True, read_only=True)
    page_url = serializers.SerializerMethodField()

    class Meta:
        model = Farm
        geo_field = "public_location"
        fields = [
            "id",
            "name",
            "distance_m",
            "is_active",
            "commune",
            "products",
            "product_details",
            "labels",
            "delivery_radius_km",
            "networks",
            "website",
            "page_url",
            "is_demo",
        ]

    def get_page_url(self, obj: Farm) -> str:
        return reverse("directory:farm_detail", args=[obj.pk])

    def to_representation(self, farm: Farm) -> dict:
        """The declared fields' Feature, built by hand (see AmapFeatureSerializer)."""
        return {
            "id": farm.pk,
            "type": "Feature",
            "geometry": _point(farm.public_location),
            "properties": {
                "name": farm.name,
                "distance_m": self.get_distance_m(farm),
                "is_active": farm.is_active,
                "commune": _commune(farm.commune),
                "products": _products(farm),
                "product_details": farm.product_details,
                "labels": list(farm.labels),
                "delivery_radius_km": farm.delivery_radius_km,
                "networks": _networks(farm),
                "website": farm.website,
                "page_url": self.get_page_url(farm),
                "is_demo": farm.is_demo,
            },
        }


class FarmDetailSerializer(FarmFeatureSerializer):
    """One farm with the AMAPs it supplies."""

    to_representation = GeoFeatureModelSerializer.to_representation  # one object: the generic path will do

    partner_amaps = serializers.SerializerMethodField()

    class Meta(FarmFeatureSerializer.Meta):
        fields = FarmFeatureSerializer.Meta.fields + ["description", "partner_amaps"]

    @extend_schema_field(
        {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["amap", "product"],
                "properties": {
                    "amap": {
                        "type": "object",
                        "required": ["id", "name"],
                        "properties": {"id": {"type": "integer"}, "name": {"type": "string"}},
                    },
                    "product": {"type": "string", "description": "identifiant de la catégorie de produits"},
                },
            },
        }
    )
    def get_partner_amaps(self, obj: Farm) -> list[dict]:
        partnerships = getattr(obj, "active_partnerships", None)
        if partnerships is None:
            partnerships = obj.partnerships.active().select_related("amap", "product")
        return [{"amap": {"id": p.amap_id, "name": p.amap.name}, "product": p.product.slug} for p in partnerships]


class NetworkSerializer(serializers.ModelSerializer):
    departments = serializers.SlugRelatedField(slug_field="code", many=True, read_only=True)
    regions = serializers.SlugRelatedField(slug_field="code", many=True, read_only=True)
    amap_count = serializers.IntegerField(read_only=True, help_text="AMAP actives du réseau.")
    farm_count = serializers.IntegerField(read_only=True, help_text="Fermes en activité du réseau.")
    page_url = serializers.SerializerMethodField()

    class Meta:
        model = Network
        fields = [
            "slug",
            "name",
            "level",
            "status",
            "regions",
            "departments",
            "website",
            "amap_count",
            "farm_count",
            "page_url",
        ]

    def get_page_url(self, obj: Network) -> str:
        return reverse("directory:network_detail", args=[obj.slug])


class NetworkDetailSerializer(NetworkSerializer):
    class Meta(NetworkSerializer.Meta):
        fields = NetworkSerializer.Meta.fields + ["description"]
