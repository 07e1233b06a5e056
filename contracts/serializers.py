"""Serializers of /api/v1/contracts/: what each role may read, and what a member sends to subscribe.

No e-mail address, IP address or user id of another person ever appears in these payloads.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field, inline_serializer
from rest_framework import serializers

from .models import Contract, ContractProduct, Delivery, PaymentMethod, Signature, Subscription

_REF = inline_serializer("ContractPartyRef", {"id": serializers.IntegerField(), "name": serializers.CharField()})


class ContractProductSerializer(serializers.ModelSerializer):
    category = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = ContractProduct
        fields = ["id", "name", "category", "unit_price", "max_quantity"]
        read_only_fields = fields


class ContractSerializer(serializers.ModelSerializer):
    """A contract template as its members, managers and farmer see it."""

    amap = serializers.SerializerMethodField()
    farm = serializers.SerializerMethodField()
    referent = serializers.SerializerMethodField()
    products = ContractProductSerializer(many=True, read_only=True)
    url = serializers.SerializerMethodField()

    class Meta:
        model = Contract
        fields = [
            "id",
            "title",
            "status",
            "amap",
            "farm",
            "referent",
            # The contract's own fields, as a référent sets them (relations shown above or not at all).
            *(name for name in Contract.EDITABLE_FIELDS if name != "title" and name not in Contract.EDITABLE_RELATIONS),
            "version",
            "products",
            "url",
        ]
        read_only_fields = fields

    @extend_schema_field(_REF)
    def get_amap(self, obj) -> dict:
        return {"id": obj.amap_id, "name": obj.amap.name}

    @extend_schema_field(_REF)
    def get_farm(self, obj) -> dict:
        return {"id": obj.farm_id, "name": obj.farm.name}

    def get_referent(self, obj) -> str:
        """The référent's display name (never their e-mail; empty when they gave none)."""
        return obj.referent.display_name

    def get_url(self, obj) -> str:
        return f"/contrats/{obj.pk}/"


class DeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = Delivery
        fields = ["id", "scheduled_date", "date", "status", "note"]
        read_only_fields = fields


class SignatureSerializer(serializers.ModelSerializer):
    """Who signed, when, in which capacity, on which PDF (no IP address, no user agent)."""

    class Meta:
        model = Signature
        fields = ["role", "signer_name", "signed_at", "document_sha256"]
        read_only_fields = fields


class SubscriptionSerializer(serializers.ModelSerializer):
    contract = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()

    class Meta:
        model = Subscription
        fields = [
            "id",
            "contract",
            "member_name",
            "status",
            "version",
            "previous",
            "shares",
            "pattern",
            "instalments",
            "payment_method",
            "waiting_since",
            "signed_at",
            "created_at",
            "url",
        ]
        read_only_fields = fields

    @extend_schema_field(
        inline_serializer(
            "SubscriptionContractRef", {"id": serializers.IntegerField(), "title": serializers.CharField()}
        )
    )
    def get_contract(self, obj) -> dict:
        return {"id": obj.contract_id, "title": obj.contract.title}

    def get_url(self, obj) -> str:
        return f"/contrats/souscriptions/{obj.pk}/"


class _ProductTotalSerializer(serializers.Serializer):
    product = serializers.IntegerField(source="product.pk")
    name = serializers.CharField(source="product.name")
    quantity = serializers.IntegerField()
    amount = serializers.DecimalField(max_digits=12, decimal_places=2)


class _InstalmentSerializer(serializers.Serializer):
    due_date = serializers.DateField(allow_null=True)
    amount = serializers.DecimalField(max_digits=12, decimal_places=2)


class TotalsSerializer(serializers.Serializer):
    total = serializers.DecimalField(max_digits=12, decimal_places=2)
    deliveries = serializers.IntegerField(help_text="counted deliveries on which the subscription takes something")
    first_delivery = serializers.DateField(allow_null=True)
    last_delivery = serializers.DateField(allow_null=True)
    per_product = _ProductTotalSerializer(many=True)
    instalments = _InstalmentSerializer(many=True)


class _ItemSerializer(serializers.Serializer):
    delivery = serializers.IntegerField(source="delivery_id")
    date = serializers.DateField(source="delivery.date")
    product = serializers.IntegerField(source="product_id")
    quantity = serializers.IntegerField()
    unit_price = serializers.DecimalField(max_digits=8, decimal_places=2)


class SubscriptionDetailSerializer(SubscriptionSerializer):
    """One subscription with its total, instalments, items and signatures."""

    totals = serializers.SerializerMethodField()
    items = serializers.SerializerMethodField()
    signatures = SignatureSerializer(many=True, read_only=True)

    class Meta(SubscriptionSerializer.Meta):
        fields = [*SubscriptionSerializer.Meta.fields, "totals", "items", "signatures"]
        read_only_fields = fields

    @extend_schema_field(TotalsSerializer)
    def get_totals(self, obj) -> dict:
        from .selectors import subscription_totals

        return TotalsSerializer(subscription_totals(subscription=obj)).data

    @extend_schema_field(_ItemSerializer(many=True))
    def get_items(self, obj) -> list:
        items = obj.items.select_related("delivery").order_by("delivery__date", "product__position", "pk")
        return _ItemSerializer(items, many=True).data


class _Quantities(serializers.DictField):
    child = serializers.IntegerField(min_value=0, max_value=1000)


class SubscriptionCreateSerializer(serializers.Serializer):
    """What a member sends: product id → quantity (or, for « varying », delivery id → {product id → quantity})."""

    contract = serializers.IntegerField(min_value=1)
    quantities = _Quantities(required=False, allow_empty=True, help_text="product id → quantity per delivery")
    pattern = serializers.ChoiceField(choices=Subscription.Pattern.choices, default=Subscription.Pattern.SAME)
    per_delivery = serializers.DictField(
        child=_Quantities(), required=False, help_text="pattern 'varying': delivery id → {product id → quantity}"
    )
    shares = serializers.IntegerField(min_value=1, max_value=100, default=1)
    instalments = serializers.IntegerField(min_value=1, max_value=12, default=1)
    payment_method = serializers.ChoiceField(choices=PaymentMethod.choices, default=PaymentMethod.CHEQUE)


class _SummaryColumnSerializer(serializers.Serializer):
    product_id = serializers.IntegerField()
    name = serializers.CharField()
    contract_id = serializers.IntegerField()
    contract_title = serializers.CharField()
    label = serializers.CharField()


class _SummaryRowSerializer(serializers.Serializer):
    label = serializers.CharField()
    quantities = serializers.DictField(child=serializers.IntegerField(), help_text="product id → quantity")
    amounts = serializers.DictField(
        child=serializers.DecimalField(max_digits=14, decimal_places=2), help_text="product id → amount"
    )
    quantity = serializers.IntegerField()
    amount = serializers.DecimalField(max_digits=14, decimal_places=2)
    deliveries = serializers.IntegerField()
    subscriptions = serializers.IntegerField()


class SummarySerializer(serializers.Serializer):
    """Figures summed from signed subscriptions on counted deliveries; rows add up to the totals."""

    by = serializers.ChoiceField(choices=["date", "product", "member", "farmer"])
    start = serializers.DateField(allow_null=True)
    end = serializers.DateField(allow_null=True)
    columns = _SummaryColumnSerializer(many=True)
    rows = _SummaryRowSerializer(many=True)
    totals = _SummaryRowSerializer()
