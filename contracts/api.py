"""API under /api/v1/contracts/: contracts, their deliveries and summaries, subscriptions.

Same access rule as the pages: not logged in → 403; an object you may not see → 404 (its
existence is not disclosed); an object you see but an action that is not yours → 403.
Bad input → 400 with a JSON body naming the field (the services' French messages).
"""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, permissions, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.response import Response
from rest_framework.throttling import UserRateThrottle

from accounts import permissions as perms
from geo.pagination import StrictLimitOffsetPagination

from . import selectors, services
from .models import Contract, Subscription
from .serializers import (
    ContractSerializer,
    DeliverySerializer,
    SubscriptionCreateSerializer,
    SubscriptionDetailSerializer,
    SubscriptionSerializer,
    SummarySerializer,
)


def _drf_error(error: DjangoValidationError) -> ValidationError:
    if hasattr(error, "error_dict"):
        return ValidationError(error.message_dict)
    return ValidationError({"non_field_errors": error.messages})


def _positive_int(params, name: str) -> int | None:
    raw = params.get(name)
    if raw in (None, ""):
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise ValidationError({name: ["un identifiant entier positif"]})
    return int(raw)


def _choice(params, name: str, choices: list[str]) -> str | None:
    raw = params.get(name)
    if not raw:
        return None
    if raw not in choices:
        raise ValidationError({name: [f"valeurs possibles : {', '.join(choices)}"]})
    return raw


def _date(params, name: str) -> dt.date | None:
    raw = params.get(name)
    if raw in (None, ""):
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise ValidationError({name: ["une date AAAA-MM-JJ"]}) from None


def _summary_payload(summary) -> dict:
    def row(r) -> dict:
        return {
            "label": r.label,
            "quantities": {str(k): v for k, v in r.quantities.items()},
            "amounts": {str(k): v for k, v in r.amounts.items()},
            "quantity": r.quantity,
            "amount": r.amount,
            "deliveries": r.deliveries,
            "subscriptions": r.subscriptions,
        }

    return {
        "by": summary.by,
        "start": summary.start,
        "end": summary.end,
        "columns": [vars(c) for c in summary.columns],
        "rows": [row(r) for r in summary.rows],
        "totals": row(summary.totals),
    }


class ContractViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    pagination_class = StrictLimitOffsetPagination
    """Contracts the user may see: those they run, farm or subscribed to, and every open one."""

    serializer_class = ContractSerializer
    permission_classes = [permissions.IsAuthenticated]
    throttle_classes = [UserRateThrottle]
    lookup_value_regex = r"[0-9]+"

    def get_queryset(self):
        contracts = selectors.contracts_visible_to(user=self.request.user)
        params = self.request.query_params
        amap = _positive_int(params, "amap")
        if amap is not None:
            contracts = contracts.filter(amap_id=amap)
        farm = _positive_int(params, "farm")
        if farm is not None:
            contracts = contracts.filter(farm_id=farm)
        status = _choice(params, "status", Contract.Status.values)
        if status is not None:
            contracts = contracts.filter(status=status)
        return (
            contracts.select_related("amap", "farm", "referent")
            .prefetch_related("products__category")
            .order_by("-season_start", "title", "pk")  # stable pages
        )

    def get_object(self):
        contract = (
            Contract.objects.select_related("amap", "farm", "referent")
            .prefetch_related("products__category")
            .filter(pk=self.kwargs["pk"])
            .first()
        )
        if contract is None or not perms.can_view_contract(self.request.user, contract):
            raise NotFound()
        return contract

    @extend_schema(
        parameters=[
            OpenApiParameter("amap", int, description="AMAP id"),
            OpenApiParameter("farm", int, description="farm id"),
            OpenApiParameter("status", str, enum=Contract.Status.values),
        ]
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(responses={200: DeliverySerializer(many=True)})
    @action(detail=True, methods=["get"])
    def deliveries(self, request, pk=None):
        """The contract's delivery dates (done, postponed with their new date, cancelled for an aléa)."""
        contract = self.get_object()
        return Response(DeliverySerializer(contract.deliveries.order_by("date", "pk"), many=True).data)

    @extend_schema(
        parameters=[
            OpenApiParameter("by", str, enum=["date", "product", "member", "farmer"], description="default: date"),
            OpenApiParameter("start", dt.date, description="first delivery date included"),
            OpenApiParameter("end", dt.date, description="last delivery date included"),
        ],
        responses={200: SummarySerializer},
    )
    @action(detail=True, methods=["get"])
    def summary(self, request, pk=None):
        """Quantities and amounts of the signed subscriptions, by date, product, member or farmer (managers, farmer)."""
        contract = self.get_object()
        if not perms.can_see_contract_subscribers(request.user, contract):
            raise PermissionDenied("Réservé aux responsables du contrat et à la ferme.")
        params = request.query_params
        by = params.get("by") or "date"
        if by not in selectors.SUMMARY_BY:
            raise ValidationError({"by": [f"valeurs possibles : {', '.join(selectors.SUMMARY_BY)}"]})
        start, end = _date(params, "start"), _date(params, "end")
        if start and end and end < start:
            raise ValidationError({"end": ["la fin de la période précède son début"]})
        result = selectors.summary(contract=contract, by=by, start=start, end=end)
        return Response(SummarySerializer(_summary_payload(result)).data)


class SubscriptionViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    """A member's own subscriptions; managers and the farmer also see those of their contracts."""

    pagination_class = StrictLimitOffsetPagination

    serializer_class = SubscriptionSerializer
    permission_classes = [permissions.IsAuthenticated]
    throttle_classes = [UserRateThrottle]
    lookup_value_regex = r"[0-9]+"

    def get_queryset(self):
        subscriptions = selectors.subscriptions_of(user=self.request.user)
        params = self.request.query_params
        contract = _positive_int(params, "contract")
        if contract is not None:
            subscriptions = subscriptions.filter(contract_id=contract)
        status = _choice(params, "status", Subscription.Status.values)
        if status is not None:
            subscriptions = subscriptions.filter(status=status)
        if params.get("mine") in ("1", "true"):
            subscriptions = subscriptions.filter(member_id=self.request.user.pk)
        return subscriptions.select_related("contract").order_by("contract_id", "member_name", "pk")  # stable pages

    def get_object(self):
        subscription = (
            Subscription.objects.select_related("contract", "contract__amap", "contract__farm")
            .filter(pk=self.kwargs["pk"])
            .first()
        )
        if subscription is None or not perms.can_view_subscription(self.request.user, subscription):
            raise NotFound()
        return subscription

    @extend_schema(
        parameters=[
            OpenApiParameter("contract", int, description="contract id"),
            OpenApiParameter("status", str, enum=Subscription.Status.values),
            OpenApiParameter("mine", bool, description="only the user's own subscriptions"),
        ]
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(responses={200: SubscriptionDetailSerializer})
    def retrieve(self, request, *args, **kwargs):
        subscription = self.get_object()
        return Response(SubscriptionDetailSerializer(subscription).data)

    @extend_schema(request=SubscriptionCreateSerializer, responses={201: SubscriptionDetailSerializer})
    def create(self, request, *args, **kwargs):
        """Subscribe the logged-in member: 201 with status « pending » (to sign) or « waiting » (list)."""
        incoming = SubscriptionCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = dict(incoming.validated_data)
        contract = Contract.objects.select_related("amap", "farm").filter(pk=data.pop("contract")).first()
        if contract is None or not perms.can_view_contract(request.user, contract):
            raise ValidationError({"contract": ["contrat inconnu"]})
        try:
            subscription = services.subscription_create(user=request.user, contract=contract, **data)
        except DjangoPermissionDenied as error:
            raise PermissionDenied(str(error)) from error
        except DjangoValidationError as error:
            raise _drf_error(error) from error
        return Response(SubscriptionDetailSerializer(subscription).data, status=201)
