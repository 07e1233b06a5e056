"""API shapes for the geocoder and the commune search (query parameters validated here)."""

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from .geocoding import MAX_QUERY_LENGTH

GEOCODE_MAX_LIMIT = 20
COMMUNES_MAX_LIMIT = 100
COMMUNES_MAX_OFFSET = 40_000  # more than there are communes


class GeocodeQuerySerializer(serializers.Serializer):
    q = serializers.CharField(
        max_length=MAX_QUERY_LENGTH, help_text=_("ville, code postal, code INSEE, adresse ou « latitude, longitude »")
    )
    limit = serializers.IntegerField(min_value=1, max_value=GEOCODE_MAX_LIMIT, default=10)


class CommuneQuerySerializer(serializers.Serializer):
    q = serializers.CharField(
        max_length=100, help_text=_("début du nom, du code postal ou du code INSEE de la commune")
    )
    limit = serializers.IntegerField(min_value=1, max_value=COMMUNES_MAX_LIMIT, default=20)
    offset = serializers.IntegerField(min_value=0, max_value=COMMUNES_MAX_OFFSET, default=0)


class GeocodedCommuneSerializer(serializers.Serializer):
    code = serializers.CharField(help_text=_("code INSEE"))
    name = serializers.CharField()
    kind = serializers.CharField(help_text=_("COM : commune, ARM : arrondissement de Paris, Lyon ou Marseille"))


class GeocodeCandidateSerializer(serializers.Serializer):
    label = serializers.CharField()
    lon = serializers.FloatField(source="point.x")
    lat = serializers.FloatField(source="point.y")
    commune = GeocodedCommuneSerializer(allow_null=True)
    precision = serializers.ChoiceField(
        choices=["exact", "address", "street", "postal_code", "commune"],
        help_text=_(
            "exact : coordonnées données ; address, street : BAN ; postal_code, commune : centre de la commune"
        ),
    )
    score = serializers.FloatField(help_text=_("entre 0 et 1 ; les meilleurs candidats ont le même score"))


class CommuneTerritorySerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()


class CommuneSearchResultSerializer(serializers.Serializer):
    code = serializers.CharField(help_text=_("code INSEE"))
    name = serializers.CharField()
    kind = serializers.CharField()
    parent = serializers.CharField(source="parent_id", allow_null=True, help_text=_("code INSEE de la ville"))
    postal_codes = serializers.ListField(child=serializers.CharField())
    population = serializers.IntegerField()
    department = CommuneTerritorySerializer()
    region = CommuneTerritorySerializer()
    lon = serializers.SerializerMethodField()
    lat = serializers.SerializerMethodField()

    def get_lon(self, commune) -> float | None:
        return commune.point.x if commune.point else None

    def get_lat(self, commune) -> float | None:
        return commune.point.y if commune.point else None
