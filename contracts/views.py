"""Contract pages: référents set contracts up and run deliveries, members subscribe and sign,
farmers countersign and prepare, anyone verifies a signed PDF.

Access rule on every page (the API follows the same one):
- not logged in → the login page (except the public charter and PDF verification pages);
- an object you may not see → 404 (its existence is not disclosed);
- an object you may see but an action that is not yours → 403.
Business rules live in `services` / `signing`; reads in `selectors`; pages only translate.
"""

from __future__ import annotations

import datetime as dt
import json

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Prefetch, Q
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import permissions
from accounts.form_errors import apply_errors
from directory.models import Amap, Farm

from . import calendars, documents, exports, ics, privacy, selectors, services, signing
from .forms import (
    SUMMARY_BY,
    AbsenceForm,
    AmendmentForm,
    ContractForm,
    ContractOpenForm,
    DeliveryMarkForm,
    ErasureForm,
    ProductFormSet,
    SignatureCodeForm,
    SignatureRequestForm,
    SubscriptionForm,
    SummaryForm,
    VerifyForm,
    product_initial,
)
from .models import Absence, Contract, Delivery, Signature, SignatureChallenge, Subscription

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


# --------------------------------------------------------------------------------------------
# Lists


@login_required
@require_GET
def contract_list(request):
    """Everything the person has to do with contracts: as member, as farmer, as référent/admin."""
    user = request.user
    managed_amap_ids = list(user.amap_roles.values_list("amap_id", flat=True))
    admin_amap_ids = list(user.amap_roles.filter(role=permissions.AMAP_ADMIN).values_list("amap_id", flat=True))
    farm_ids = list(user.managed_farms.values_list("pk", flat=True))
    base = Contract.objects.select_related("amap", "farm", "referent")
    managed = base.filter(Q(referent=user) | Q(amap_id__in=admin_amap_ids)).order_by("-season_start", "title", "pk")
    farmed = base.filter(farm_id__in=farm_ids).exclude(status=Contract.Status.DRAFT)
    to_countersign = (
        Subscription.objects.filter(contract__farm_id__in=farm_ids, status=Subscription.Status.MEMBER_SIGNED)
        .select_related("contract")
        .order_by("contract__title", "member_name", "pk")
    )
    mine = (
        Subscription.objects.filter(member=user)
        .exclude(status__in=[Subscription.Status.SUPERSEDED, Subscription.Status.CANCELLED])
        .select_related("contract", "contract__amap", "contract__farm")
        .order_by("-contract__season_start", "contract__title", "pk")
    )
    open_contracts = selectors.contracts_visible_to(user=user).filter(status=Contract.Status.OPEN)
    amap_filter = request.GET.get("amap", "")
    amap = None
    if amap_filter.isdigit():
        amap = get_object_or_404(Amap, pk=int(amap_filter))
        open_contracts = open_contracts.filter(amap=amap)
    open_contracts = open_contracts.select_related("amap", "farm").order_by("amap__name", "title", "pk")
    page = Paginator(open_contracts, 20).get_page(request.GET.get("page"))
    context = {
        "managed": managed[:100],
        "farmed": farmed.order_by("-season_start", "title", "pk")[:100],
        "to_countersign": to_countersign[:100],
        "mine": mine,
        "page_obj": page,
        "amap": amap,
        "creatable_amaps": Amap.objects.filter(pk__in=managed_amap_ids).order_by("name", "pk"),
        "admin_amaps": Amap.objects.filter(pk__in=admin_amap_ids).order_by("name", "pk"),
        "farms": Farm.objects.filter(pk__in=farm_ids).order_by("name", "pk"),
    }
    return render(request, "contracts/contract_list.html", context)


# --------------------------------------------------------------------------------------------
# Référent / AMAP admin: set up, publish, close


def _amap_for_new_contract(request) -> Amap | None:
    amaps = Amap.objects.filter(pk__in=request.user.amap_roles.values("amap_id")).order_by("name", "pk")
    raw = request.GET.get("amap", "")
    if raw.isdigit():
        amap = get_object_or_404(Amap, pk=int(raw))
        if not permissions.can_act_for_amap(request.user, amap):
            raise PermissionDenied(_("Vous ne faites pas partie de l'équipe de cette AMAP."))
        return amap
    if amaps.count() == 1:
        return amaps.first()
    return None


def _contract_form_page(request, *, amap: Amap, contract: Contract | None):
    """The full form (draft contracts): fields + product rows, then the services."""
    if contract is None:
        weekday = amap.delivery_weekdays[0] if amap.delivery_weekdays else None
        initial = {"weekday": weekday, "referent": request.user.pk, "delivery_place": amap.address}
        if amap.delivery_start:
            initial["delivery_start"] = amap.delivery_start
        if amap.delivery_end:
            initial["delivery_end"] = amap.delivery_end
        products = []
    else:
        initial = ContractForm.initial_from(contract)
        products = product_initial(contract)
    form = ContractForm(_posted(request), amap=amap, initial=initial)
    formset = ProductFormSet(_posted(request), prefix="products", initial=products or None)
    # `&`, not `and`: both are validated so that every error shows at once.
    if request.method == "POST" and form.is_valid() & formset.is_valid():
        fields = form.service_fields()
        try:
            if contract is None:
                contract = services.contract_create(user=request.user, amap=amap, products=formset.products(), **fields)
                messages.success(request, _("Contrat créé (brouillon). Vérifiez le calendrier puis publiez-le."))
            else:
                services.contract_update(user=request.user, contract=contract, products=formset.products(), **fields)
                messages.success(request, _("Contrat enregistré."))
        except ValidationError as error:
            apply_errors(form, error)
        else:
            return redirect("contracts:contract_detail", pk=contract.pk)
    context = {"form": form, "formset": formset, "amap": amap, "contract": contract}
    return render(request, "contracts/contract_form.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def contract_create(request):
    amap = _amap_for_new_contract(request)
    if amap is None:
        amaps = Amap.objects.filter(pk__in=request.user.amap_roles.values("amap_id")).order_by("name", "pk")
        return render(request, "contracts/contract_choose_amap.html", {"amaps": amaps})
    return _contract_form_page(request, amap=amap, contract=None)


@login_required
@require_http_methods(["GET", "POST"])
def contract_edit(request, pk: int):
    contract = _contract(request, pk, need="manage")
    if contract.status == Contract.Status.DRAFT:
        return _contract_form_page(request, amap=contract.amap, contract=contract)
    initial = {
        "capacity_shares": contract.capacity_shares,
        "referent": contract.referent_id,
        "description": contract.description,
        "commitments": contract.commitments,
    }
    form = ContractOpenForm(_posted(request), contract=contract, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.contract_update(user=request.user, contract=contract, **form.cleaned_data)
        except ValidationError as error:
            apply_errors(form, error)
        else:
            messages.success(request, _("Contrat enregistré."))
            return redirect("contracts:contract_detail", pk=contract.pk)
    return render(request, "contracts/contract_form.html", {"form": form, "contract": contract, "amap": contract.amap})


@login_required
@require_POST
def contract_publish(request, pk: int):
    contract = _contract(request, pk, need="manage")
    try:
        services.contract_publish(user=request.user, contract=contract)
    except ValidationError as error:
        messages.error(request, _error_text(error))
    else:
        messages.success(request, _("Contrat publié : les adhérent·es peuvent souscrire."))
    return redirect("contracts:contract_detail", pk=contract.pk)


@login_required
@require_POST
def contract_close(request, pk: int):
    contract = _contract(request, pk, need="manage")
    try:
        services.contract_close(user=request.user, contract=contract)
    except ValidationError as error:
        messages.error(request, _error_text(error))
    else:
        messages.success(request, _("Souscriptions closes."))
    return redirect("contracts:contract_detail", pk=contract.pk)


def _shares_taken(contract: Contract) -> int:
    # As the services count them: an amendment being signed holds no share beside its signed version.
    return contract.capacity_shares - services.free_shares(contract=contract)


@login_required
@require_GET
def contract_detail(request, pk: int):
    contract = _contract(request, pk)
    user = request.user
    can_manage = permissions.can_manage_contract(user, contract)
    is_team = permissions.can_see_contract_subscribers(user, contract)
    own = (
        Subscription.objects.filter(contract=contract, member=user)
        .exclude(status__in=[Subscription.Status.SUPERSEDED, Subscription.Status.CANCELLED])
        .first()
    )
    context = {
        "contract": contract,
        "products": contract.products.select_related("category"),
        "calendar": calendars.contract_calendar(contract),
        "exceptions": contract.exceptions.all(),
        "can_manage": can_manage,
        "is_team": is_team,
        "own": own,
        "shares_taken": _shares_taken(contract),
        "waiting": contract.subscriptions.waiting().count(),
        "can_subscribe": contract.status == Contract.Status.OPEN and own is None,
    }
    return render(request, "contracts/contract_detail.html", context)


@login_required
@require_GET
def contract_subscribers(request, pk: int):
    contract = _contract(request, pk, need="team")
    subscriptions = list(
        contract.subscriptions.exclude(status=Subscription.Status.SUPERSEDED)
        .select_related("member")
        .order_by("member_name", "pk")
    )
    waiting = [s for s in contract.subscriptions.waiting()]
    live = [s for s in subscriptions if s.status != Subscription.Status.WAITING]
    context = {
        "contract": contract,
        "subscriptions": live,
        "waiting": waiting,
        "shares_taken": _shares_taken(contract),
        "can_manage": permissions.can_manage_contract(request.user, contract),
    }
    return render(request, "contracts/contract_subscribers.html", context)


@login_required
@require_GET
def contract_deliveries(request, pk: int):
    contract = _contract(request, pk, need="team")
    context = {
        "contract": contract,
        "deliveries": contract.deliveries.all(),
        "can_mark": permissions.can_mark_delivery(request.user, contract),
        "mark_form": DeliveryMarkForm(),
    }
    return render(request, "contracts/contract_deliveries.html", context)


# --------------------------------------------------------------------------------------------
# Deliveries: distribution sheet, preparation list, done / postponed / cancelled


@login_required
@require_GET
def delivery_sheet(request, pk: int):
    delivery = _delivery(request, pk)
    context = {
        "delivery": delivery,
        "contract": delivery.contract,
        "rows": selectors.distribution_sheet(delivery=delivery),
        "preparation": selectors.preparation_list(delivery=delivery),
    }
    return render(request, "contracts/delivery_sheet.html", context)


@login_required
@require_GET
def delivery_sheet_pdf(request, pk: int):
    delivery = _delivery(request, pk)
    pdf = exports.distribution_sheet_pdf(delivery=delivery)
    return _attachment(pdf, content_type="application/pdf", filename=f"distribution-{delivery.date:%Y-%m-%d}.pdf")


@login_required
@require_GET
def delivery_preparation(request, pk: int):
    delivery = _delivery(request, pk)
    context = {
        "delivery": delivery,
        "contract": delivery.contract,
        "preparation": selectors.preparation_list(delivery=delivery),
    }
    return render(request, "contracts/delivery_preparation.html", context)


@login_required
@require_GET
def delivery_preparation_pdf(request, pk: int):
    delivery = _delivery(request, pk)
    pdf = exports.preparation_list_pdf(delivery=delivery)
    return _attachment(pdf, content_type="application/pdf", filename=f"preparation-{delivery.date:%Y-%m-%d}.pdf")


@login_required
@require_POST
def delivery_mark(request, pk: int):
    delivery = _delivery(request, pk)
    if not permissions.can_mark_delivery(request.user, delivery.contract):
        raise PermissionDenied(_("Seul·es les responsables du contrat et la ferme changent l'état d'une distribution."))
    form = DeliveryMarkForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
    else:
        data = form.cleaned_data
        try:
            services.delivery_mark(
                user=request.user,
                delivery=delivery,
                status=data["status"],
                new_date=data.get("new_date"),
                note=data.get("note") or "",
            )
        except ValidationError as error:
            messages.error(request, _error_text(error))
        else:
            messages.success(
                request,
                _("Distribution du %(date)s : %(status)s.")
                % {
                    "date": delivery.scheduled_date.strftime("%d/%m/%Y"),
                    "status": Delivery.Status(data["status"]).label,
                },
            )
    return redirect("contracts:contract_deliveries", pk=delivery.contract_id)


# --------------------------------------------------------------------------------------------
# Summaries (contract, AMAP, farm)


def _summary_page(request, *, scope: dict, title: str, back_url: str, export_route: str, route_args: list, fmt=None):
    form = SummaryForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        if fmt is not None:
            raise Http404
        return render(
            request,
            "contracts/summary.html",
            {"form": form, "title": title, "back_url": back_url, "summary": None},
        )
    data = form.cleaned_data if form.is_bound else {"by": "date", "start": None, "end": None}
    params = {"by": data["by"], "start": data.get("start"), "end": data.get("end")}
    if fmt == "csv":
        content = exports.summary_csv(**scope, **params)
        return _attachment(content, content_type="text/csv; charset=utf-8", filename=f"bilan-{data['by']}.csv")
    if fmt == "pdf":
        content = exports.summary_pdf(**scope, **params)
        return _attachment(content, content_type="application/pdf", filename=f"bilan-{data['by']}.pdf")
    if fmt is not None:
        raise Http404
    summary = selectors.summary(**scope, **params)
    query = request.GET.urlencode()
    context = {
        "form": form,
        "title": title,
        "back_url": back_url,
        "summary": summary,
        "table": [(row.label, row.cells(summary.columns), row.quantity, row.amount) for row in summary.rows],
        "total_cells": summary.totals.cells(summary.columns),
        "by": data["by"],
        "by_label": SUMMARY_BY[data["by"]],
        "csv_url": reverse(export_route, args=[*route_args, "csv"]) + (f"?{query}" if query else ""),
        "pdf_url": reverse(export_route, args=[*route_args, "pdf"]) + (f"?{query}" if query else ""),
    }
    return render(request, "contracts/summary.html", context)


@login_required
@require_GET
def contract_summary(request, pk: int, fmt: str | None = None):
    contract = _contract(request, pk, need="team")
    return _summary_page(
        request,
        scope={"contract": contract},
        title=_("Bilan du contrat « %(title)s »") % {"title": contract.title},
        back_url=reverse("contracts:contract_detail", args=[contract.pk]),
        export_route="contracts:contract_summary_export",
        route_args=[contract.pk],
        fmt=fmt,
    )


@login_required
@require_GET
def amap_summary(request, pk: int, fmt: str | None = None):
    amap = get_object_or_404(Amap, pk=pk)
    if not permissions.can_manage_amap(request.user, amap):
        raise PermissionDenied(_("Réservé aux administrateur·rices de l'AMAP."))
    return _summary_page(
        request,
        scope={"amap": amap},
        title=_("Bilan des contrats de %(name)s") % {"name": amap.name},
        back_url=reverse("contracts:contract_list"),
        export_route="contracts:amap_summary_export",
        route_args=[amap.pk],
        fmt=fmt,
    )


@login_required
@require_GET
def farm_summary(request, pk: int, fmt: str | None = None):
    farm = get_object_or_404(Farm, pk=pk)
    if not permissions.can_manage_farm(request.user, farm):
        raise PermissionDenied(_("Réservé aux gestionnaires de la ferme."))
    return _summary_page(
        request,
        scope={"farm": farm},
        title=_("Bilan des contrats de %(name)s") % {"name": farm.name},
        back_url=reverse("contracts:contract_list"),
        export_route="contracts:farm_summary_export",
        route_args=[farm.pk],
        fmt=fmt,
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


# --------------------------------------------------------------------------------------------
# Member: deliveries and calendar feed, personal data


@login_required
@require_GET
def my_deliveries(request):
    deliveries = (
        selectors.deliveries_of_member(user=request.user)
        .select_related("contract", "contract__amap", "contract__farm")
        .filter(date__gte=timezone.localdate() - dt.timedelta(days=7))
        .order_by("date", "pk")
    )
    feed = request.build_absolute_uri(reverse("contracts:ics_feed", args=[ics.ics_token(request.user)]))
    return render(request, "contracts/my_deliveries.html", {"deliveries": deliveries[:200], "feed_url": feed})


@require_GET
def ics_feed(request, token: str):
    user = ics.user_from_ics_token(token)
    if user is None:
        raise Http404
    content = ics.member_calendar(user=user)
    response = HttpResponse(content, content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = 'inline; filename="amap-livraisons.ics"'
    return response


@login_required
@require_GET
def my_data(request):
    return render(request, "contracts/my_data.html")


@login_required
@require_GET
def my_data_export(request, fmt: str):
    user = request.user
    if fmt == "json":
        content = json.dumps(privacy.member_data_export(user=user), cls=DjangoJSONEncoder, ensure_ascii=False, indent=2)
        return _attachment(content, content_type="application/json; charset=utf-8", filename="mes-donnees.json")
    if fmt == "csv":
        # One CSV file per table (account, subscriptions, deliveries…), zipped.
        content = privacy.member_data_export_csv(user=user)
        return _attachment(content, content_type="application/zip", filename="mes-donnees-csv.zip")
    raise Http404


@login_required
@require_http_methods(["GET", "POST"])
def my_data_erase(request):
    """GET: what erasure would delete and keep (computed, then rolled back); POST: do it."""
    form = ErasureForm(_posted(request))
    if request.method == "POST" and form.is_valid():
        try:
            report = privacy.member_erasure(user=request.user)
        except ValidationError as error:
            apply_errors(form, error)
        else:
            logout(request)
            return render(request, "contracts/my_data_erased.html", {"report": report})
    try:
        preview, blocked = privacy.member_erasure(user=request.user, commit=False), []
    except ValidationError as error:
        preview, blocked = None, error.messages
    context = {"form": form, "preview": preview, "blocked": blocked}
    return render(request, "contracts/my_data_erase.html", context)


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
