"""A network's space (« Espace du réseau »): its coordinators' table, team, imports, exports, announcements.

Every page here is for the network's coordinators (`Network.admins`) and staff: others get a 403
(logged in) or the login page. The unsubscribe and « fiche vérifiée » links work without login:
the signed token in the address is the proof.
"""

from __future__ import annotations

import io

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from cartography.builders import embed_snippet

from . import services_coordination as services
from .csv_export import csv_writer
from .forms_network import AnnouncementForm, ImportForm
from .models import Amap, Announcement, ImportRun, Network
from .selectors.network import is_coordinator, network_counts, pending_request_counts, space_amaps, space_farms

SPACE_PAGE_SIZE = 50


def _network_for_coordinator(request, slug: str) -> Network:
    network = get_object_or_404(Network.objects.defer("custom_territory"), slug=slug)
    if not is_coordinator(request.user, network):
        raise PermissionDenied(_("Cet espace est réservé aux coordinateur·rices du réseau."))
    return network


def _table_params(request) -> dict:
    return {
        "query": request.GET.get("q", "").strip()[:100],
        "department": request.GET.get("departement", "").strip()[:3],
        "missing_contact": request.GET.get("sans_contact") == "1",
        "sort": request.GET.get("tri", "fraicheur"),
    }


@login_required
def network_space(request, slug: str):
    network = _network_for_coordinator(request, slug)
    params = _table_params(request)
    amaps = Paginator(space_amaps(network=network, **params), SPACE_PAGE_SIZE).get_page(request.GET.get("amaps"))
    farms = Paginator(space_farms(network=network, **params), SPACE_PAGE_SIZE).get_page(request.GET.get("fermes"))
    context = {
        "network": network,
        "counts": network_counts(network=network),
        "params": params,
        "amap_page": amaps,
        "farm_page": farms,
        "departments": network.departments.order_by("code"),
        "team": network.admins.order_by("display_name", "email"),
        "embed_snippet": embed_snippet(network_slug=network.slug, base_url=request.build_absolute_uri("/").rstrip("/")),
        "pending": pending_request_counts(network=network),
        "imports": network.import_runs.defer("content")[:5],
        "announcements": network.announcements.all()[:5],
    }
    return render(request, "directory/network/space.html", context)


@login_required
@require_http_methods(["POST"])
def network_team(request, slug: str):
    network = _network_for_coordinator(request, slug)
    try:
        if request.POST.get("remove"):
            services.coordinator_remove(user=request.user, network=network, person_id=int(request.POST["remove"]))
            messages.success(request, _("La personne ne coordonne plus le réseau."))
        else:
            services.coordinator_add(user=request.user, network=network, email=request.POST.get("email", ""))
            messages.success(request, _("Coordinateur·rice ajouté·e."))
    except ValidationError as error:
        for message in error.messages:
            messages.error(request, message)
    except ValueError:
        messages.error(request, _("Personne inconnue."))
    return redirect("directory:network_space", slug=network.slug)


@login_required
def network_export(request, slug: str, kind: str):
    """The space's table as CSV (formula-safe); farms without any coordinates."""
    network = _network_for_coordinator(request, slug)
    if kind not in {"amaps", "fermes"}:
        raise Http404(kind)
    out = io.StringIO()
    writer = csv_writer(out)
    writer.writerow(["id", "nom", "commune", "departement", "statut", "fiche_verifiee_le", "contact", "modifiee_le"])
    params = _table_params(request)
    if kind == "amaps":
        for amap in space_amaps(network=network, **params).iterator(chunk_size=1000):
            contact = bool(amap.contact_email or amap.phone or amap.has_admin)
            status = amap.get_status_display()
            row = [amap.pk, amap.name, amap.commune.name, amap.commune.department_id, status]
            writer.writerow([*row, _date(amap.verified_at), "oui" if contact else "non", _date(amap.updated_at)])
    else:
        for farm in space_farms(network=network, **params).iterator(chunk_size=1000):
            contact = bool(farm.contact_email or farm.phone or farm.manager_count)
            commune = farm.commune.name if farm.commune else ""
            department = farm.commune.department_id if farm.commune else ""
            status = _("en activité") if farm.is_active else _("arrêtée")
            row = [farm.pk, farm.name, commune, department, status]
            writer.writerow([*row, _date(farm.verified_at), "oui" if contact else "non", _date(farm.updated_at)])
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{network.slug}-{kind}.csv"'
    return response


def _date(value) -> str:
    return value.date().isoformat() if value else ""


# --- imports ------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def network_import(request, slug: str):
    network = _network_for_coordinator(request, slug)
    form = ImportForm(request.POST or None, request.FILES or None, network=network)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            run = services.import_run_start(
                user=request.user,
                network=network,
                kind=form.cleaned_data["kind"],
                source=form.cleaned_data["source"],
                filename=upload.name,
                content=upload.read(),
            )
        except ValidationError as error:
            for field, errors in error.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            return redirect("directory:network_import_run", slug=network.slug, pk=run.pk)
    runs = network.import_runs.defer("content")[:20]
    status = 400 if request.method == "POST" else 200
    return render(
        request, "directory/network/import.html", {"network": network, "form": form, "runs": runs}, status=status
    )


def _run_for(request, slug: str, pk: int) -> ImportRun:
    network = _network_for_coordinator(request, slug)
    return get_object_or_404(ImportRun.objects.defer("content").select_related("network"), pk=pk, network=network)


@login_required
@require_http_methods(["GET", "POST"])
def network_import_run(request, slug: str, pk: int):
    run = _run_for(request, slug, pk)
    if request.method == "POST":
        try:
            services.import_run_commit(user=request.user, run=run)
        except ValidationError as error:
            for message in error.messages:
                messages.error(request, message)
        else:
            messages.success(request, _("Enregistrement lancé : la page suit son avancement."))
        return redirect("directory:network_import_run", slug=slug, pk=run.pk)
    return render(request, "directory/network/import_run.html", {"network": run.network, "run": run})


@login_required
def network_import_status(request, slug: str, pk: int):
    """What the progress bar polls: state, step, rows done of total, percent."""
    run = _run_for(request, slug, pk)
    finished = run.status in {ImportRun.Status.CHECKED, ImportRun.Status.DONE, ImportRun.Status.FAILED}
    return JsonResponse(
        {
            "status": run.status,
            "status_label": run.get_status_display(),
            "phase": run.phase,
            "done": run.done,
            "total": run.total,
            "percent": run.percent,
            "finished": finished,
        }
    )


# --- announcements ------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def network_announcements(request, slug: str):
    network = _network_for_coordinator(request, slug)
    form = AnnouncementForm(request.POST or None, network=network)
    if request.method == "POST" and form.is_valid():
        try:
            announcement = services.announcement_send(user=request.user, network=network, **form.cleaned_data)
        except ValidationError as error:
            if hasattr(error, "error_dict"):
                for field, errors in error.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                form.add_error(None, error.messages)
        else:
            messages.success(
                request,
                _("Annonce enregistrée : elle part en arrière-plan vers %(n)s destinataires.")
                % {"n": announcement.recipient_count},
            )
            return redirect("directory:network_announcements", slug=network.slug)
    archive = Paginator(network.announcements.select_related("department", "product"), 20).get_page(
        request.GET.get("page")
    )
    status = 400 if request.method == "POST" else 200
    context = {"network": network, "form": form, "archive": archive}
    return render(request, "directory/network/announcements.html", context, status=status)


@login_required
def network_announcement_detail(request, slug: str, pk: int):
    network = _network_for_coordinator(request, slug)
    announcement = get_object_or_404(Announcement, pk=pk, network=network)
    return render(
        request, "directory/network/announcement_detail.html", {"network": network, "announcement": announcement}
    )


@require_http_methods(["GET", "POST"])
def announcement_optout(request, token: str):
    """Unsubscribe without logging in: GET asks, POST does (mail scanners follow links)."""
    try:
        user_id, network_id = services.optout_read(token)
    except signing.BadSignature as error:
        raise Http404(_("Ce lien de désinscription n'est pas valide.")) from error
    network = Network.objects.filter(pk=network_id).only("name", "slug").first() if network_id else None
    if network_id and network is None:
        raise Http404(_("Ce réseau n'existe plus."))
    done = False
    if request.method == "POST":
        services.optout_apply(user_id=user_id, network_id=network_id)
        done = True
    return render(request, "directory/network/optout.html", {"network": network, "done": done})


@require_http_methods(["GET", "POST"])
def entry_verify(request, token: str):
    """« Ma fiche est à jour »: the reminder's signed link; one button confirms, one link edits."""
    try:
        entry = services.verify_read(token)
    except signing.BadSignature as error:
        raise Http404(_("Ce lien n'est pas ou plus valide : demandez-en un nouveau au réseau.")) from error
    if entry is None:
        raise Http404(_("Cette fiche n'existe plus."))
    if request.method == "POST":
        services.entry_mark_verified(entry=entry)
        messages.success(request, _("Merci : la fiche est marquée comme vérifiée aujourd'hui."))
    is_amap = isinstance(entry, Amap)
    context = {
        "entry": entry,
        "is_amap": is_amap,
        "edit_url": reverse("accounts:amap_edit" if is_amap else "accounts:farm_edit", args=[entry.pk]),
        "page_url": reverse("directory:amap_detail" if is_amap else "directory:farm_detail", args=[entry.pk]),
    }
    return render(request, "directory/network/verify.html", context)
