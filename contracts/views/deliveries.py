"""Deliveries (distribution sheet, preparation list, done / postponed / cancelled) and summaries
(per contract, AMAP, farm)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from accounts import permissions
from directory.models import Amap, Farm

from .. import exports, hooks, selectors, services
from ..forms import (
    SUMMARY_BY,
    DeliveryMarkForm,
    SummaryForm,
)
from ..models import Delivery, PreparedFile
from ..services import files as file_services
from .access import (
    _attachment,
    _contract,
    _delivery,
    _error_text,
)

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
        # Blocks from the apps above contracts (who is on duty…), via contracts.hooks.
        "extra_sections": hooks.delivery_sheet_sections_render(request=request, delivery=delivery),
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


def _summary_page(request, *, kind: str, subject, title: str, back_url: str, fmt: str | None = None):
    """The summary of a contract, an AMAP or a farm (`kind`), as a page, a CSV or a PDF.

    The page and the CSV come straight back; a PDF too when small, else a job builds it and the
    person is sent to « votre fichier est en préparation », then « prêt »."""
    scope = {kind: subject}
    export_route, route_args = f"contracts:{kind}_summary_export", [subject.pk]
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
    if fmt == "pdf" and file_services.summary_pdf_is_large(scope=scope):
        prepared = file_services.summary_pdf_prepare(owner=request.user, scope=scope, title=title, **params)
        return redirect("contracts:prepared_file", token=prepared.token)
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


def _own_prepared_file(request, token) -> PreparedFile:
    # Someone else's file, or an expired one, does not exist for this person.
    return get_object_or_404(
        PreparedFile.objects.filter(expires_at__gt=timezone.now()), token=token, owner=request.user
    )


@login_required
@require_GET
def prepared_file(request, token):
    """« Votre fichier est en préparation », then « votre fichier est prêt » with its link."""
    prepared = _own_prepared_file(request, token)
    return render(request, "contracts/prepared_file.html", {"file": prepared, "Status": PreparedFile.Status})


@login_required
@require_GET
def prepared_file_download(request, token):
    prepared = _own_prepared_file(request, token)
    if prepared.status != PreparedFile.Status.READY:
        raise Http404(_("Ce fichier n'est pas prêt."))
    return _attachment(bytes(prepared.content), content_type=prepared.content_type, filename=prepared.filename)


@login_required
@require_GET
def contract_summary(request, pk: int, fmt: str | None = None):
    contract = _contract(request, pk, need="team")
    return _summary_page(
        request,
        kind="contract",
        subject=contract,
        title=_("Bilan du contrat « %(title)s »") % {"title": contract.title},
        back_url=reverse("contracts:contract_detail", args=[contract.pk]),
        fmt=fmt,
    )


@login_required
@require_GET
def amap_summary(request, pk: int, fmt: str | None = None):
    amap = get_object_or_404(Amap, pk=pk)
    # Admins and référents (the AMAP's team) read its summaries; staff too.
    if not permissions.can_act_for_amap(request.user, amap):
        raise PermissionDenied(_("Réservé à l'équipe de l'AMAP."))
    return _summary_page(
        request,
        kind="amap",
        subject=amap,
        title=_("Bilan des contrats de %(name)s") % {"name": amap.name},
        back_url=reverse("contracts:contract_list"),
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
        kind="farm",
        subject=farm,
        title=_("Bilan des contrats de %(name)s") % {"name": farm.name},
        back_url=reverse("contracts:contract_list"),
        fmt=fmt,
    )
