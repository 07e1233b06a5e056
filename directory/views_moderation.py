"""Pages of a network's directory care: claim a listing, propose a change, the moderation queue,
and the history of an entry with « Rétablir cette version »."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.datastructures import MultiValueDict
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from accounts import permissions

from . import contacts
from . import services_moderation as services
from .forms_manage import AmapForm, FarmForm
from .models import Amap, ChangeRequest, Farm, Network
from .selectors.network import is_coordinator
from .views_manage import _apply_errors

_MODELS = {"amap": Amap, "ferme": Farm, "farm": Farm}
_FORMS = {"amap": AmapForm, "farm": FarmForm}


def _entry(kind: str, pk: int):
    return get_object_or_404(_MODELS[kind], pk=pk)


def _entry_type(entry) -> str:
    return "amap" if isinstance(entry, Amap) else "farm"


def _detail_url_name(entry) -> str:
    return "directory:amap_detail" if isinstance(entry, Amap) else "directory:farm_detail"


def _form_data(post) -> dict:
    """The submitted form as field → list of strings (what `ChangeRequest.data` keeps)."""
    return {key: post.getlist(key) for key in post if key != "csrfmiddlewaretoken"}


# --------------------------------------------------------------------------- claim


@login_required
@require_http_methods(["GET", "POST"])
def entry_claim(request, pk: int, kind: str):
    """« C'est mon AMAP » / « C'est ma ferme »: a code e-mailed to the listed address, or ask the network."""
    entry = _entry(kind, pk)
    if permissions.manages_entry(request.user, entry) and not request.user.is_staff:
        messages.info(request, _("Vous gérez déjà cette fiche."))
        return redirect(_detail_url_name(entry), pk=entry.pk)
    action = request.POST.get("action", "")
    errors: list[str] = []
    if request.method == "POST":
        try:
            if action == "send":
                services.claim_send_code(user=request.user, entry=entry)
                messages.success(request, _("Code envoyé à l'adresse e-mail enregistrée pour cette fiche."))
                return redirect(request.path)
            if action == "confirm":
                services.claim_confirm(user=request.user, entry=entry, code=request.POST.get("code", ""))
                messages.success(request, _("C'est fait : vous administrez maintenant cette fiche."))
                edit = "accounts:amap_edit" if isinstance(entry, Amap) else "accounts:farm_edit"
                return redirect(edit, pk=entry.pk)
            if action == "request":
                services.change_request_submit(
                    user=request.user,
                    kind=ChangeRequest.Kind.CLAIM,
                    entry_type=_entry_type(entry),
                    data={},
                    entry=entry,
                    message=request.POST.get("message", ""),
                )
                messages.success(request, _("Demande transmise aux coordinateur·rices du réseau de votre territoire."))
                return redirect(_detail_url_name(entry), pk=entry.pk)
        except ValidationError as error:
            errors = error.messages
    context = {
        "entry": entry,
        "kind": kind,
        "has_address": bool(contacts.entry_address(entry)),
        "networks": contacts.entry_coordinator_networks(entry),
        "errors": errors,
    }
    return render(request, "directory/moderation/claim.html", context)


# --------------------------------------------------------------------------- propose a change


@login_required
@require_http_methods(["GET", "POST"])
def entry_propose(request, pk: int, kind: str):
    """Someone who does not run the entry proposes a change: it waits for the territory's coordinators."""
    entry = _entry(kind, pk)
    if permissions.can_edit_entry(request.user, entry):
        edit = "accounts:amap_edit" if isinstance(entry, Amap) else "accounts:farm_edit"
        return redirect(edit, pk=entry.pk)
    form_class = _FORMS[_entry_type(entry)]
    form = form_class(request.POST or None, instance=entry)
    if request.method != "POST":
        form.initial["address"] = entry.address
    if request.method == "POST" and form.is_valid():
        services.change_request_submit(
            user=request.user,
            kind=ChangeRequest.Kind.EDIT,
            entry_type=_entry_type(entry),
            data=_form_data(request.POST),
            entry=entry,
        )
        messages.success(request, _("Merci ! Votre proposition sera vérifiée par le réseau avant d'être publiée."))
        return redirect(_detail_url_name(entry), pk=entry.pk)
    return render(request, "directory/moderation/propose.html", {"entry": entry, "form": form})


# --------------------------------------------------------------------------- moderation queue


@login_required
def network_moderation(request, slug: str):
    """The network's queue: what waits in its territory. Its coordinators and staff."""
    network = get_object_or_404(Network, slug=slug)
    if not is_coordinator(request.user, network):
        raise PermissionDenied(_("Seuls les coordinateur·rices du réseau voient sa file de modération."))
    pending = services.pending_for_network(network)
    return render(request, "directory/moderation/queue.html", {"network": network, "pending": pending})


@login_required
def moderation_all(request):
    """Every pending request, for staff."""
    if not permissions.is_platform_staff(request.user):
        raise PermissionDenied(_("Réservé à l'équipe de la plateforme."))
    pending = ChangeRequest.objects.pending().select_related("commune", "author", "amap", "farm")
    return render(request, "directory/moderation/queue.html", {"network": None, "pending": pending})


def _request_form(change: ChangeRequest, data=None):
    form_class = _FORMS[change.entry_type]
    return form_class(data if data is not None else MultiValueDict(change.data), instance=change.entry)


@login_required
@require_http_methods(["GET", "POST"])
def change_request_detail(request, pk: int):
    """One request: approve it as is, correct then approve, or refuse with a reason."""
    change = get_object_or_404(ChangeRequest.objects.select_related("amap", "farm", "author", "commune"), pk=pk)
    if not permissions.coordinates_entry(request.user, change):
        raise PermissionDenied(_("Seuls les coordinateur·rices du territoire traitent cette demande."))
    is_claim = change.kind == ChangeRequest.Kind.CLAIM
    form = None if is_claim else _request_form(change)
    refuse_error = ""
    if request.method == "POST" and change.status == ChangeRequest.Status.PENDING:
        action = request.POST.get("action", "")
        try:
            if action == "refuse":
                services.change_request_refuse(user=request.user, request=change, reason=request.POST.get("reason", ""))
                messages.success(request, _("Demande refusée ; son auteur·rice en est informé·e."))
                return _back_to_queue(change)
            if action == "approve":
                if not is_claim:
                    form = _request_form(change, data=request.POST if "name" in request.POST else None)
                    if not form.is_valid():
                        raise ValidationError(_("Corrigez le formulaire avant d'accepter."))
                entry = services.change_request_approve(
                    user=request.user,
                    request=change,
                    cleaned=dict(form.cleaned_data) if form is not None else None,
                    candidate=form.place_candidate if form is not None else None,
                )
                messages.success(request, _("Demande acceptée : « %(name)s » est à jour.") % {"name": entry})
                return _back_to_queue(change)
        except ValidationError as error:
            if form is not None and hasattr(error, "error_dict"):
                _apply_errors(form, error)
            else:
                refuse_error = " ".join(error.messages)
    context = {
        "change": change,
        "form": form,
        "refuse_error": refuse_error,
        "networks": services.change_request_networks(change),
    }
    return render(request, "directory/moderation/request.html", context)


def _back_to_queue(change: ChangeRequest):
    networks = services.change_request_networks(change)
    if len(networks) == 1:
        return redirect("directory:network_moderation", slug=networks[0].slug)
    return redirect("directory:moderation_all")


# --------------------------------------------------------------------------- history


def _history_subject(kind: str, key: str):
    if kind not in ("reseau", "amap", "ferme"):
        raise Http404
    if kind == "reseau":
        return get_object_or_404(Network, slug=key)
    if not key.isdigit():
        raise Http404
    return _entry(kind, int(key))


@login_required
@require_http_methods(["GET"])
def entry_history(request, kind: str, key: str):
    """Who changed what and when; coordinators of the territory, the entry's admins and staff."""
    entry = _history_subject(kind, key)
    if not services.may_see_history(request.user, entry):
        raise PermissionDenied(_("Historique réservé aux coordinateur·rices du territoire et aux gestionnaires."))
    context = {
        "entry": entry,
        "kind": kind,
        "key": key,
        "rows": services.history_rows(entry),
        "partnerships": services.partnership_history(entry),
        "is_amap": isinstance(entry, Amap),
    }
    return render(request, "directory/moderation/history.html", context)


@login_required
@require_POST
def entry_history_revert(request, kind: str, key: str, history_id: int):
    entry = _history_subject(kind, key)
    if not services.may_see_history(request.user, entry):
        raise PermissionDenied(_("Vous ne pouvez pas modifier cette fiche."))
    try:
        services.history_revert(user=request.user, entry=entry, history_id=history_id)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, _("Version rétablie ; ce rétablissement est lui-même dans l'historique."))
    return redirect("directory:entry_history", kind=kind, key=key)
