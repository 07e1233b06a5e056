"""Signing and countersigning with an e-mailed code; public pages: the charter, verifying a signed PDF."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Prefetch
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from accounts import permissions
from accounts.form_errors import apply_errors

from .. import documents, selectors, signing
from ..forms import (
    SignatureCodeForm,
    SignatureRequestForm,
    VerifyForm,
)
from ..models import Signature, SignatureChallenge, Subscription
from .access import (
    _client_ip,
    _posted,
    _subscription,
)


def _pending_challenge(*, subscription, user, role) -> SignatureChallenge | None:
    return (
        SignatureChallenge.objects.filter(
            subscription=subscription, user=user, role=role, used_at__isnull=True, expires_at__gt=timezone.now()
        )
        .order_by("-created_at")
        .first()
    )


def _sign_page(request, pk: int, *, role: str):
    subscription = _subscription(request, pk)
    user = request.user
    if role == Signature.Role.MEMBER:
        if subscription.member_id != user.pk:
            raise PermissionDenied(_("Seul·e l'adhérent·e signe sa souscription."))
        expected = Subscription.Status.PENDING
    else:
        if not permissions.can_sign_as_farmer(user, subscription):
            raise PermissionDenied(_("Seul·es les gestionnaires de la ferme contresignent."))
        expected = Subscription.Status.MEMBER_SIGNED
    if subscription.status != expected:
        messages.info(request, _("Cette souscription n'attend pas votre signature."))
        return redirect("contracts:subscription_detail", pk=subscription.pk)
    request_form = SignatureRequestForm(request.POST if request.POST.get("step") == "request" else None)
    code_form = SignatureCodeForm(request.POST if request.POST.get("step") == "confirm" else None)
    if request.method == "POST":
        if request_form.is_bound and request_form.is_valid():
            try:
                signing.signature_request_code(user=user, subscription=subscription, role=role, charter_accepted=True)
            except ValidationError as error:
                apply_errors(request_form, error)
            else:
                messages.success(
                    request, _("Un code vous a été envoyé par e-mail. Saisissez-le ci-dessous pour signer.")
                )
                return redirect(request.path)
        elif code_form.is_bound and code_form.is_valid():
            try:
                signing.signature_confirm(
                    user=user,
                    subscription=subscription,
                    role=role,
                    code=code_form.cleaned_data["code"],
                    ip_address=_client_ip(request),
                    user_agent=request.META.get("HTTP_USER_AGENT", "")[:500],
                )
            except ValidationError as error:
                apply_errors(code_form, error)
            else:
                if role == Signature.Role.MEMBER:
                    messages.success(request, _("Contrat signé. La ferme va le contresigner."))
                else:
                    messages.success(request, _("Contrat contresigné : il est en vigueur."))
                return redirect("contracts:subscription_detail", pk=subscription.pk)
    challenge = _pending_challenge(subscription=subscription, user=user, role=role)
    context = {
        "subscription": subscription,
        "contract": subscription.contract,
        "role": role,
        "charter": documents.charter_current(),
        "totals": selectors.subscription_totals(subscription=subscription),
        "request_form": request_form,
        "code_form": code_form,
        "challenge": challenge,
    }
    return render(request, "contracts/subscription_sign.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def subscription_sign(request, pk: int):
    return _sign_page(request, pk, role=Signature.Role.MEMBER)


@login_required
@require_http_methods(["GET", "POST"])
def subscription_countersign(request, pk: int):
    return _sign_page(request, pk, role=Signature.Role.FARMER)


# --------------------------------------------------------------------------------------------
# Public: the charter, verifying a signed PDF


@require_GET
def charter(request):
    return render(request, "contracts/charter.html", {"charter": documents.charter_current()})


@require_http_methods(["GET", "POST"])
def verify(request):
    form = VerifyForm(_posted(request), request.FILES if request.method == "POST" else None)
    result = None
    if request.method == "POST" and form.is_valid():
        document = documents.document_verify(pdf=form.cleaned_data["pdf"])
        if document is None:
            result = {"ok": False}
        else:
            subscription = (
                Subscription.objects.select_related("contract", "contract__amap", "contract__farm")
                .prefetch_related(Prefetch("signatures", queryset=Signature.objects.order_by("signed_at", "pk")))
                .get(pk=document.subscription_id)
            )
            result = {"ok": True, "document": document, "subscription": subscription}
    return render(request, "contracts/verify.html", {"form": form, "result": result})


@login_required
@require_GET
def countersign_list(request):
    """« À contresigner » : the subscriptions the farmer's farms have to countersign, oldest first."""
    waiting = selectors.subscriptions_awaiting_countersignature(user=request.user)
    return render(request, "contracts/countersign_list.html", {"waiting": waiting[:200], "count": waiting.count()})
