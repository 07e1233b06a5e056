"""« Ma ferme » and « Mon AMAP »: where managers edit what the directory shows (under /comptes/)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from accounts import permissions

from . import services_manage as services
from . import services_moderation as moderation
from .forms_manage import AmapForm, FarmForm
from .models import Amap, ChangeRequest, Farm


def _apply_errors(form, error: ValidationError) -> None:
    if hasattr(error, "error_dict"):
        for field, errors in error.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, error.messages)


def _organisation_form(request, *, form_class, instance, save, template, kind):
    form = form_class(request.POST or None, instance=instance)
    if instance is not None and request.method != "POST":
        form.initial["address"] = instance.address
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        moved = instance is None or data.get("address", "") != (instance.address or "")
        try:
            obj = save(user=request.user, data=data, candidate=form.place_candidate if moved else None, **kind)
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            messages.success(request, _("Enregistré."))
            return obj
    return render(request, template, {"form": form, "object": instance})


@login_required
@require_http_methods(["GET", "POST"])
def farm_edit(request, pk: int | None = None):
    farm = get_object_or_404(Farm, pk=pk) if pk is not None else None
    if farm is not None and not permissions.can_edit_entry(request.user, farm):
        raise PermissionDenied(_("Vous ne gérez pas cette ferme."))
    result = _organisation_form(
        request,
        form_class=FarmForm,
        instance=farm,
        save=services.farm_save,
        template="directory/manage/farm_form.html",
        kind={"farm": farm},
    )
    if isinstance(result, Farm):
        return redirect("accounts:farm_edit", pk=result.pk)
    return result


@login_required
@require_http_methods(["GET", "POST"])
def amap_edit(request, pk: int | None = None):
    amap = get_object_or_404(Amap, pk=pk) if pk is not None else None
    if amap is not None and not permissions.can_edit_entry(request.user, amap):
        # Référents see their AMAP's page (read only); only its admins (and the territory's
        # coordinators) change it.
        if request.method == "POST" or not permissions.can_act_for_amap(request.user, amap):
            raise PermissionDenied(_("Vous ne gérez pas cette AMAP."))
        return render(request, "directory/manage/amap_view.html", {"object": amap, "can_manage": False})
    if amap is None and request.method == "POST":
        queued = _amap_declare(request)
        if queued is not None:
            return queued
    result = _organisation_form(
        request,
        form_class=AmapForm,
        instance=amap,
        save=services.amap_save,
        template="directory/manage/amap_form.html",
        kind={"amap": amap},
    )
    if isinstance(result, Amap):
        return redirect("accounts:amap_edit", pk=result.pk)
    return result


def _amap_declare(request):
    """« Déclarer une AMAP »: published at once by the territory's coordinators (and staff); from
    anyone else it waits in the moderation queue, out of every public list, until approved."""
    form = AmapForm(request.POST)
    if not form.is_valid() or form.place_candidate is None:
        return None  # the normal path shows the errors
    candidate = form.place_candidate
    stub = moderation.place_stub(commune=candidate.commune, point=candidate.point)
    if permissions.coordinates_entry(request.user, stub):
        return None
    change = moderation.change_request_submit(
        user=request.user,
        kind=ChangeRequest.Kind.CREATE,
        entry_type="amap",
        data={key: request.POST.getlist(key) for key in request.POST if key != "csrfmiddlewaretoken"},
        candidate=candidate,
    )
    networks = moderation.change_request_networks(change)
    if networks:
        text = _(
            "Merci ! « %(name)s » sera publiée après vérification par le réseau %(networks)s ; vous recevrez un e-mail."
        ) % {"name": change.name, "networks": ", ".join(str(n) for n in networks)}
    else:
        text = _("Merci ! « %(name)s » sera publiée après vérification par l'équipe d'AMAP Atlas.") % {
            "name": change.name
        }
    messages.success(request, text)
    return redirect("accounts:dashboard")


@login_required
@require_http_methods(["GET", "POST"])
def amap_team(request, pk: int):
    """GET: the AMAP's team (its admins and référents see it); POST: add, change or remove a
    member of the team (admins only)."""
    amap = get_object_or_404(Amap, pk=pk)
    if request.method == "GET":
        if not permissions.can_act_for_amap(request.user, amap):
            raise PermissionDenied(_("Réservé à l'équipe de l'AMAP."))
        context = {"object": amap, "can_manage": permissions.can_manage_amap(request.user, amap)}
        return render(request, "directory/manage/amap_team.html", context)
    if not permissions.can_manage_amap(request.user, amap):
        raise PermissionDenied(_("Seuls les administrateur·rices de l'AMAP gèrent son équipe."))
    try:
        if request.POST.get("remove"):
            services.amap_team_remove(user=request.user, amap=amap, person_id=int(request.POST["remove"]))
            messages.success(request, _("La personne ne fait plus partie de l'équipe."))
        else:
            services.amap_team_set(
                user=request.user, amap=amap, email=request.POST.get("email", ""), role=request.POST.get("role", "")
            )
            messages.success(request, _("Équipe mise à jour."))
    except ValidationError as error:
        for message in error.messages:
            messages.error(request, message)
    except ValueError:
        messages.error(request, _("Personne inconnue."))
    return redirect("accounts:amap_edit", pk=amap.pk)
