"""Account pages: sign-up, dashboard, and "Ma ferme" / "Mon AMAP" (what the directory shows)."""

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from directory.models import Amap, Farm

from . import permissions, services
from .form_errors import apply_errors
from .forms import AmapForm, FarmForm, SignupForm


@require_http_methods(["GET", "POST"])
def signup(request):
    if request.user.is_authenticated:
        return redirect("accounts:dashboard")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, _("Bienvenue ! Votre compte est créé."))
        return redirect(request.GET.get("suivant") or "accounts:dashboard")
    return render(request, "accounts/signup.html", {"form": form})


@login_required
def dashboard(request):
    from matching.selectors import annonces_managed_by, annonces_to_moderate, threads_for

    user = request.user
    context = {
        "farms": user.managed_farms.order_by("name"),
        "amap_roles": user.amap_roles.select_related("amap").order_by("amap__name", "amap_id"),
        "annonces": annonces_managed_by(user=user)[:50],
        "threads": threads_for(user=user)[:20],
        "alerts": user.saved_searches.all(),
        "to_moderate": annonces_to_moderate(user=user)[:50],
    }
    return render(request, "accounts/dashboard.html", context)


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
            apply_errors(form, error)
        else:
            messages.success(request, _("Enregistré."))
            return obj
    return render(request, template, {"form": form, "object": instance})


@login_required
@require_http_methods(["GET", "POST"])
def farm_edit(request, pk: int | None = None):
    farm = get_object_or_404(Farm, pk=pk) if pk is not None else None
    if farm is not None and not permissions.can_manage_farm(request.user, farm):
        raise PermissionDenied(_("Vous ne gérez pas cette ferme."))
    result = _organisation_form(
        request,
        form_class=FarmForm,
        instance=farm,
        save=services.farm_save,
        template="accounts/farm_form.html",
        kind={"farm": farm},
    )
    if isinstance(result, Farm):
        return redirect("accounts:farm_edit", pk=result.pk)
    return result


@login_required
@require_http_methods(["GET", "POST"])
def amap_edit(request, pk: int | None = None):
    amap = get_object_or_404(Amap, pk=pk) if pk is not None else None
    if amap is not None and not permissions.can_manage_amap(request.user, amap):
        raise PermissionDenied(_("Vous ne gérez pas cette AMAP."))
    result = _organisation_form(
        request,
        form_class=AmapForm,
        instance=amap,
        save=services.amap_save,
        template="accounts/amap_form.html",
        kind={"amap": amap},
    )
    if isinstance(result, Amap):
        return redirect("accounts:amap_edit", pk=result.pk)
    return result


@login_required
@require_http_methods(["POST"])
def amap_team(request, pk: int):
    """Add, change or remove a member of the AMAP's team (admins and référents)."""
    amap = get_object_or_404(Amap, pk=pk)
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
