"""Référents and AMAP admins: the contract list, setting a contract up, publishing, closing;
the contract page with its subscribers and deliveries."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Q
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import permissions
from accounts.form_errors import apply_errors
from directory.models import Amap, Farm

from .. import calendars, selectors, services
from ..forms import (
    ContractForm,
    ContractOpenForm,
    DeliveryMarkForm,
    ProductFormSet,
    product_initial,
)
from ..forms_academic import AcademicCalendarForm
from ..models import AcademicCalendar, Contract, Subscription
from .access import (
    _contract,
    _error_text,
    _posted,
)

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
        # Admins and référents alike read their AMAP's summaries.
        "admin_amaps": Amap.objects.filter(pk__in=managed_amap_ids).order_by("name", "pk"),
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


@login_required
@require_http_methods(["GET", "POST"])
def academic_calendars(request, pk: int):
    """A student AMAP's team adds the university years its contracts may follow (no admin needed)."""
    amap = get_object_or_404(Amap, pk=pk)
    if not permissions.can_act_for_amap(request.user, amap):
        raise PermissionDenied(_("Réservé à l'équipe de l'AMAP."))
    form = AcademicCalendarForm(_posted(request))
    if request.method == "POST" and form.is_valid():
        try:
            calendar = services.academic_calendar_create(user=request.user, amap=amap, **form.cleaned_data)
        except ValidationError as error:
            apply_errors(form, error)
        else:
            messages.success(request, _("Calendrier « %(name)s » ajouté.") % {"name": calendar})
            return redirect("contracts:academic_calendars", pk=amap.pk)
    calendars_ = (
        AcademicCalendar.objects.filter(Q(amap=amap) | Q(amap__isnull=True))
        .prefetch_related("breaks")
        .order_by("-year_start", "name", "pk")
    )
    return render(request, "contracts/academic_calendars.html", {"amap": amap, "form": form, "calendars": calendars_})
