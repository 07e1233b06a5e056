"""What every contract page shares: fetching an object the user may see (else 404) and act on
(else 403), binding forms, turning service errors into form errors, attachments."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _

from accounts import permissions

from ..models import Contract, Delivery, Subscription

# --------------------------------------------------------------------------------------------
# Access helpers


def _contract(request, pk: int, *, need: str = "view") -> Contract:
    """The contract if the user may see it (else 404) and do `need` on it (else 403).

    need: "view", "team" (managers and the farmer: subscribers, deliveries, summaries) or "manage".
    """
    contract = get_object_or_404(Contract.objects.select_related("amap", "farm", "referent"), pk=pk)
    user = request.user
    if not permissions.can_view_contract(user, contract):
        raise Http404
    if need == "manage" and not permissions.can_manage_contract(user, contract):
        raise PermissionDenied(_("Seul·es le ou la référent·e du contrat et les administrateur·rices de l'AMAP."))
    if need == "team" and not permissions.can_see_contract_subscribers(user, contract):
        raise PermissionDenied(_("Réservé aux responsables du contrat et à la ferme."))
    return contract


def _delivery(request, pk: int, *, need: str = "team") -> Delivery:
    delivery = get_object_or_404(Delivery.objects.select_related("contract"), pk=pk)
    _contract(request, delivery.contract_id, need=need)
    return delivery


def _subscription(request, pk: int) -> Subscription:
    subscription = get_object_or_404(
        Subscription.objects.select_related("contract", "contract__amap", "contract__farm", "member"), pk=pk
    )
    if not permissions.can_view_subscription(request.user, subscription):
        raise Http404
    return subscription


def _own_subscription(request, pk: int) -> Subscription:
    subscription = _subscription(request, pk)
    if subscription.member_id != request.user.pk:
        raise PermissionDenied(_("Seul·e l'adhérent·e peut faire cela sur sa souscription."))
    return subscription


def _posted(request):
    """The POST data to bind a form to, even when empty (an empty submission shows its errors)."""
    return request.POST if request.method == "POST" else None


def _error_text(error: ValidationError) -> str:
    return " ".join(error.messages)


def _client_ip(request) -> str | None:
    # REMOTE_ADDR only: X-Forwarded-For is set by whoever sends the request.
    return request.META.get("REMOTE_ADDR") or None


def _attachment(content: bytes | str, *, content_type: str, filename: str) -> HttpResponse:
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
