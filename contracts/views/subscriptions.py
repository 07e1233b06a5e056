"""Members: subscribe, change, cancel, amend, see the total and the PDF, declare absences."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import permissions
from accounts.form_errors import apply_errors

from .. import documents, selectors, services
from ..forms import (
    AbsenceForm,
    AmendmentForm,
    SubscriptionForm,
)
from ..models import Absence, Contract, Delivery, Subscription
from .access import (
    _attachment,
    _contract,
    _error_text,
    _own_subscription,
    _posted,
    _subscription,
)

# --------------------------------------------------------------------------------------------
# Member: subscribe, see the total, sign, absences


def _open_deliveries(contract: Contract):
    return contract.deliveries.exclude(status=Delivery.Status.CANCELLED).order_by("date", "pk")


@login_required
@require_http_methods(["GET", "POST"])
def subscription_create(request, pk: int):
    contract = _contract(request, pk)
    existing = (
        Subscription.objects.filter(contract=contract, member=request.user)
        .exclude(status__in=[Subscription.Status.SUPERSEDED, Subscription.Status.CANCELLED])
        .first()
    )
    if existing is not None:
        messages.info(request, _("Vous avez déjà souscrit à ce contrat."))
        return redirect("contracts:subscription_detail", pk=existing.pk)
    if contract.status != Contract.Status.OPEN:
        messages.error(request, _("Ce contrat n'est pas ouvert aux souscriptions."))
        return redirect("contracts:contract_detail", pk=contract.pk)
    varying = request.GET.get("rythme") == "variable"
    deliveries = list(_open_deliveries(contract)) if varying else None
    form = SubscriptionForm(_posted(request), contract=contract, varying_deliveries=deliveries)
    if request.method == "POST" and form.is_valid():
        try:
            subscription = services.subscription_create(user=request.user, contract=contract, **form.service_fields())
        except ValidationError as error:
            apply_errors(form, error)
        else:
            if subscription.status == Subscription.Status.WAITING:
                messages.info(request, _("Le contrat est complet : vous êtes sur la liste d'attente."))
            else:
                messages.success(request, _("Souscription enregistrée : vérifiez le montant puis signez."))
            return redirect("contracts:subscription_detail", pk=subscription.pk)
    context = {"contract": contract, "form": form, "varying": varying}
    return render(request, "contracts/subscription_form.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def subscription_edit(request, pk: int):
    subscription = _own_subscription(request, pk)
    contract = subscription.contract
    if subscription.is_frozen or subscription.status == Subscription.Status.CANCELLED:
        messages.error(request, _("Une souscription signée ne se modifie plus."))
        return redirect("contracts:subscription_detail", pk=subscription.pk)
    varying = request.GET.get("rythme") == "variable"
    deliveries = list(_open_deliveries(contract)) if varying else None
    items = list(subscription.items.all())
    initial = {
        "pattern": subscription.pattern if subscription.pattern != Subscription.Pattern.VARYING else "same",
        "shares": subscription.shares,
        "instalments": subscription.instalments,
        "payment_method": subscription.payment_method,
    }
    first_delivery = min((item.delivery_id for item in items), default=None)
    for item in items:
        if item.delivery_id == first_delivery:
            initial[f"product_{item.product_id}"] = item.quantity
        if varying:
            initial[f"d{item.delivery_id}_p{item.product_id}"] = item.quantity
    form = SubscriptionForm(_posted(request), contract=contract, varying_deliveries=deliveries, initial=initial)
    if request.method == "POST" and form.is_valid():
        fields = form.service_fields()
        fields.pop("shares", None)
        try:
            services.subscription_set_quantities(user=request.user, subscription=subscription, **fields)
        except ValidationError as error:
            apply_errors(form, error)
        else:
            messages.success(request, _("Quantités enregistrées."))
            return redirect("contracts:subscription_detail", pk=subscription.pk)
    context = {"contract": contract, "form": form, "varying": varying, "subscription": subscription}
    return render(request, "contracts/subscription_form.html", context)


# Not yet binding on both parties: the member (or a manager) may withdraw it.
CANCELLABLE = (Subscription.Status.WAITING, Subscription.Status.PENDING, Subscription.Status.MEMBER_SIGNED)


@login_required
@require_POST
def subscription_cancel(request, pk: int):
    subscription = _subscription(request, pk)
    user = request.user
    if subscription.member_id != user.pk and not permissions.can_manage_contract(user, subscription.contract):
        raise PermissionDenied(_("Seul·es l'adhérent·e et les responsables du contrat annulent une souscription."))
    try:
        services.subscription_cancel(user=user, subscription=subscription, reason=request.POST.get("reason", "")[:300])
    except ValidationError as error:
        messages.error(request, _error_text(error))
    else:
        messages.success(request, _("Souscription annulée."))
    return redirect("contracts:subscription_detail", pk=subscription.pk)


@login_required
@require_http_methods(["GET", "POST"])
def subscription_amend(request, pk: int):
    """An amendment: new quantities from a date on, to be signed again by both parties."""
    subscription = _subscription(request, pk)
    user = request.user
    if subscription.member_id != user.pk and not permissions.can_manage_contract(user, subscription.contract):
        raise PermissionDenied(_("Seul·es l'adhérent·e et les responsables du contrat proposent un avenant."))
    if subscription.status != Subscription.Status.SIGNED:
        messages.error(request, _("Seul un contrat signé par les deux parties peut faire l'objet d'un avenant."))
        return redirect("contracts:subscription_detail", pk=subscription.pk)
    contract = subscription.contract
    initial = {"pattern": subscription.pattern if subscription.pattern != Subscription.Pattern.VARYING else "same"}
    upcoming = subscription.items.filter(delivery__date__gte=timezone.localdate()).order_by("delivery__date")
    first = upcoming.values_list("delivery_id", flat=True).first()
    for item in upcoming.filter(delivery_id=first):
        initial[f"product_{item.product_id}"] = item.quantity
    form = AmendmentForm(_posted(request), contract=contract, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            amendment = services.subscription_amend(
                user=user,
                subscription=subscription,
                effective_from=form.cleaned_data["effective_from"],
                quantities=form.quantities(),
                pattern=form.cleaned_data["pattern"],
            )
        except ValidationError as error:
            apply_errors(form, error)
        else:
            messages.success(
                request, _("Avenant préparé : il remplacera le contrat actuel une fois signé par les deux parties.")
            )
            return redirect("contracts:subscription_detail", pk=amendment.pk)
    context = {"subscription": subscription, "contract": contract, "form": form}
    return render(request, "contracts/subscription_amend.html", context)


@login_required
@require_GET
def subscription_detail(request, pk: int):
    subscription = _subscription(request, pk)
    user = request.user
    contract = subscription.contract
    is_member = subscription.member_id == user.pk
    is_farmer = permissions.can_sign_as_farmer(user, subscription)
    items = list(
        subscription.items.select_related("delivery", "product").order_by("delivery__date", "product__position")
    )
    by_delivery: dict[int, dict] = {}
    for item in items:
        row = by_delivery.setdefault(item.delivery_id, {"delivery": item.delivery, "items": []})
        row["items"].append(item)
    waiting_rank = None
    if subscription.status == Subscription.Status.WAITING:
        ids = list(contract.subscriptions.waiting().values_list("pk", flat=True))
        waiting_rank = ids.index(subscription.pk) + 1 if subscription.pk in ids else None
    context = {
        "subscription": subscription,
        "contract": contract,
        "totals": selectors.subscription_totals(subscription=subscription),
        "deliveries": list(by_delivery.values()),
        "signatures": subscription.signatures.all(),
        "absences": subscription.absences.select_related("delivery"),
        "is_member": is_member,
        "is_farmer": is_farmer,
        "can_member_sign": is_member and subscription.status == Subscription.Status.PENDING,
        "can_farmer_sign": is_farmer and subscription.status == Subscription.Status.MEMBER_SIGNED,
        "can_edit": is_member and subscription.status in (Subscription.Status.PENDING, Subscription.Status.WAITING),
        "can_cancel": subscription.status in CANCELLABLE
        and (is_member or permissions.can_manage_contract(user, contract)),
        "waiting_rank": waiting_rank,
        "has_document": hasattr(subscription, "document"),
        "can_amend": subscription.status == Subscription.Status.SIGNED
        and (is_member or permissions.can_manage_contract(user, contract)),
        "next_version": Subscription.objects.filter(previous=subscription)
        .exclude(status=Subscription.Status.CANCELLED)
        .first(),
    }
    return render(request, "contracts/subscription_detail.html", context)


@login_required
@require_GET
def subscription_pdf(request, pk: int):
    subscription = _subscription(request, pk)
    document = getattr(subscription, "document", None)
    if document is not None:
        content = bytes(document.pdf)
        name = f"contrat-{subscription.pk}-v{subscription.version}-signe.pdf"
    else:
        content = documents.contract_pdf(subscription=subscription)
        name = f"contrat-{subscription.pk}-v{subscription.version}-projet.pdf"
    return _attachment(content, content_type="application/pdf", filename=name)


@login_required
@require_http_methods(["GET", "POST"])
def subscription_absences(request, pk: int):
    subscription = _own_subscription(request, pk)
    upcoming = subscription.contract.deliveries.filter(
        date__gte=timezone.localdate(), items__subscription=subscription
    ).exclude(status=Delivery.Status.CANCELLED)
    deliveries = Delivery.objects.filter(pk__in=upcoming.values("pk")).order_by("date", "pk")
    form = AbsenceForm(_posted(request), deliveries=deliveries)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.absence_declare(
                user=request.user,
                subscription=subscription,
                delivery=data["delivery"],
                substitute_name=data["substitute_name"],
                note=data["note"],
            )
        except ValidationError as error:
            apply_errors(form, error)
        else:
            messages.success(request, _("Absence enregistrée."))
            return redirect("contracts:subscription_absences", pk=subscription.pk)
    context = {
        "subscription": subscription,
        "contract": subscription.contract,
        "form": form,
        "absences": subscription.absences.select_related("delivery").order_by("delivery__date"),
    }
    return render(request, "contracts/subscription_absences.html", context)


@login_required
@require_POST
def absence_cancel(request, pk: int):
    absence = get_object_or_404(Absence.objects.select_related("subscription", "subscription__contract"), pk=pk)
    subscription = absence.subscription
    if not permissions.can_view_subscription(request.user, subscription):
        raise Http404
    if subscription.member_id != request.user.pk:
        raise PermissionDenied(_("Seul·e l'adhérent·e annule son absence."))
    try:
        services.absence_cancel(user=request.user, absence=absence)
    except ValidationError as error:
        messages.error(request, _error_text(error))
    else:
        messages.success(request, _("Absence annulée."))
    return redirect("contracts:subscription_absences", pk=subscription.pk)
