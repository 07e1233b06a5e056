"""Pages of the members app: joining, the team's member list (import, export, invitations),
adhésions and their receipts, messages to members.

Access (as in contracts): not logged in → the login page; an object you may not see → 404;
a page of a public AMAP that is not yours to use → 403.
"""

from __future__ import annotations

import io

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from accounts.form_errors import apply_errors
from directory.csv_export import csv_writer
from directory.models import Amap

from . import selectors, services
from .documents import adhesion_receipt_pdf
from .forms import AdhesionForm, ImportForm, InviteForm, JoinForm, MemberFilterForm, MessageForm, SeasonForm
from .models import Adhesion, AdhesionSeason, Membership, Message


def _amap(pk: int) -> Amap:
    return get_object_or_404(Amap.objects.select_related("commune"), pk=pk)


def _team_amap(request, pk: int) -> Amap:
    amap = _amap(pk)
    if not selectors.is_team(request.user, amap):
        raise PermissionDenied(_("Réservé à l'équipe de l'AMAP (administrateur·rices et référent·es)."))
    return amap


def _errors(error: ValidationError) -> str:
    return " ".join(error.messages)


# --------------------------------------------------------------------------------------------
# Joining


@login_required
@require_http_methods(["GET", "POST"])
def join(request, amap_pk: int):
    amap = _amap(amap_pk)
    membership = selectors.membership_of(user=request.user, amap=amap)
    form = JoinForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            membership = services.membership_request(user=request.user, amap=amap, note=form.cleaned_data["note"])
        except ValidationError as error:
            messages.error(request, _errors(error))
        else:
            if membership.status == Membership.Status.ACTIVE:
                messages.success(request, _("Vous êtes membre de %(amap)s.") % {"amap": amap.name})
            elif membership.status == Membership.Status.WAITING:
                messages.success(request, _("Vous êtes sur la liste d'attente de %(amap)s.") % {"amap": amap.name})
            else:
                messages.success(request, _("Demande envoyée : l'équipe de l'AMAP vous répondra par e-mail."))
            return redirect("directory:amap_detail", amap.pk)
    return render(request, "members/join.html", {"amap": amap, "membership": membership, "form": form})


@require_http_methods(["GET", "POST"])
def invitation_accept(request, token: str):
    membership = services.invitation_membership(token)
    if membership is None:
        raise Http404
    if not request.user.is_authenticated:
        return redirect(f"{reverse('accounts:login')}?next={request.path}")
    if request.method == "POST":
        try:
            services.invitation_accept(user=request.user, membership=membership)
        except PermissionDenied as error:
            messages.error(request, str(error))
        else:
            messages.success(request, _("Bienvenue : vous êtes membre de %(amap)s.") % {"amap": membership.amap.name})
            return redirect("directory:amap_detail", membership.amap_id)
    return render(request, "members/invitation.html", {"membership": membership, "amap": membership.amap})


@require_http_methods(["GET", "POST"])
def unsubscribe(request, token: str):
    membership = services.unsubscribe_membership(token)
    if membership is None:
        raise Http404
    done = False
    if request.method == "POST":
        services.news_unsubscribe(membership=membership)
        done = True
    return render(
        request, "members/unsubscribe.html", {"amap": membership.amap, "done": done or membership.news_opt_out}
    )


# --------------------------------------------------------------------------------------------
# The team's member list


def _filtered_members(request, amap: Amap):
    contracts = list(selectors.open_contracts(amap=amap)) + list(
        amap.contracts.exclude(status__in=("draft", "open")).order_by("title")
    )
    form = MemberFilterForm(request.GET or None, contracts=contracts)
    data = form.cleaned_data if form.is_valid() else {}
    season = selectors.season_current(amap=amap)
    members = selectors.member_list(
        amap=amap,
        query=data.get("q") or "",
        contract_id=data.get("contract"),
        adhesion=data.get("adhesion") or "",
        role=data.get("role") or "",
        status=data.get("status") or "",
        season=season,
    )
    return form, members, season


# 100 rows a page: the page's cost stays flat as the AMAP grows (search and filters run over all).
MEMBERS_PER_PAGE = 100


@login_required
def member_list(request, amap_pk: int):
    amap = _team_amap(request, amap_pk)
    form, members, season = _filtered_members(request, amap)
    page_obj = Paginator(members, MEMBERS_PER_PAGE).get_page(request.GET.get("page"))
    rows = list(page_obj.object_list)
    # Labels looked up once: Django's get_FOO_display() hashes the lazy choices on every call
    # (a third of the page's time at 300 members).
    statuses = {value: str(label) for value, label in Membership.Status.choices}
    for member in rows:
        member.status_label = statuses[member.status]
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "amap": amap,
        "form": form,
        "members": rows,
        "page_obj": page_obj,
        "param": "page",
        "season": season,
        "pending": Membership.objects.filter(amap=amap, status=Membership.Status.PENDING).count(),
        "query_string": query.urlencode(),
    }
    return render(request, "members/member_list.html", context)


@login_required
def member_export(request, amap_pk: int):
    amap = _team_amap(request, amap_pk)
    _form, members, season = _filtered_members(request, amap)
    out = io.StringIO()
    writer = csv_writer(out, delimiter=";")
    writer.writerow(["prénom", "nom", "e-mail", "téléphone", "statut", "rôle", "adhésion", "contrats"])
    for m in members:
        writer.writerow(
            [
                m.first_name,
                m.last_name,
                m.email,
                m.phone,
                m.get_status_display(),
                m.team_role or "membre",
                getattr(m, "adhesion_status", None) or "",
                ", ".join(m.contract_titles),
            ]
        )
    response = HttpResponse("\ufeff" + out.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="membres-amap-{amap.pk}.csv"'
    return response


@login_required
@require_http_methods(["GET", "POST"])
def member_import(request, amap_pk: int):
    amap = _team_amap(request, amap_pk)
    form = ImportForm(request.POST or None, request.FILES or None)
    report = None
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        report = services.members_import(actor=request.user, amap=amap, filename=upload.name, content=upload.read())
        if report.ok:
            messages.success(
                request,
                _("Import terminé : %(created)s membre(s) ajouté(s), %(updated)s mis à jour.")
                % {"created": report.created, "updated": report.updated},
            )
            return redirect("members:member_list", amap.pk)
    return render(request, "members/member_import.html", {"amap": amap, "form": form, "report": report})


@login_required
@require_http_methods(["GET", "POST"])
def member_invite(request, amap_pk: int):
    amap = _team_amap(request, amap_pk)
    form = InviteForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            invited = services.membership_invite(actor=request.user, amap=amap, emails=form.email_list())
        except ValidationError as error:
            form.add_error("emails", error)
        else:
            messages.success(request, _("%(n)s invitation(s) envoyée(s).") % {"n": len(invited)})
            return redirect("members:member_list", amap.pk)
    return render(request, "members/member_invite.html", {"amap": amap, "form": form})


@login_required
@require_POST
def membership_decide(request, pk: int):
    membership = get_object_or_404(Membership.objects.select_related("amap"), pk=pk)
    if not selectors.is_team(request.user, membership.amap):
        raise Http404  # members' details are the team's only
    try:
        services.membership_decide(actor=request.user, membership=membership, decision=request.POST.get("decision", ""))
    except ValidationError as error:
        messages.error(request, _errors(error))
    else:
        messages.success(request, _("C'est noté pour %(name)s.") % {"name": membership})
    return redirect("members:member_list", membership.amap_id)


# --------------------------------------------------------------------------------------------
# Adhésions


@login_required
@require_http_methods(["GET", "POST"])
def adhesions(request, amap_pk: int):
    amap = _team_amap(request, amap_pk)
    can_create = selectors.is_admin(request.user, amap)
    form = SeasonForm(request.POST or None) if can_create else None
    if request.method == "POST":
        if not can_create:
            raise PermissionDenied(_("Réservé aux administrateur·rices de l'AMAP."))
        if form.is_valid():
            fields = {k: v for k, v in form.cleaned_data.items() if k != "tiers"}
            try:
                services.season_create(actor=request.user, amap=amap, tiers=form.cleaned_data["tiers"], **fields)
            except ValidationError as error:
                apply_errors(form, error)
            else:
                messages.success(request, _("Saison d'adhésion créée."))
                return redirect("members:adhesions", amap.pk)
    seasons = AdhesionSeason.objects.filter(amap=amap).prefetch_related("tiers")
    rows = (
        Adhesion.objects.filter(season__amap=amap)
        .select_related("membership", "season", "tier")
        .order_by("status", "membership__last_name", "pk")
    )
    return render(
        request,
        "members/adhesions.html",
        {"amap": amap, "form": form, "seasons": seasons, "adhesions": rows},
    )


@login_required
@require_http_methods(["GET", "POST"])
def adhesion_create(request, amap_pk: int):
    amap = _amap(amap_pk)
    membership = selectors.membership_of(user=request.user, amap=amap)
    if membership is None or membership.status != Membership.Status.ACTIVE:
        raise PermissionDenied(_("Seul·es les membres de l'AMAP adhèrent."))
    season = selectors.season_current(amap=amap)
    if season is None:
        return render(request, "members/adhesion_form.html", {"amap": amap, "season": None})
    adhesion = Adhesion.objects.filter(membership=membership, season=season).first()
    form = AdhesionForm(request.POST or None, season=season)
    if request.method == "POST" and form.is_valid():
        try:
            services.adhesion_create(
                user=request.user,
                membership=membership,
                season=season,
                payment_mode=form.cleaned_data["payment_mode"],
                tier_id=form.cleaned_data.get("tier"),
                amount=form.cleaned_data.get("amount"),
            )
        except ValidationError as error:
            apply_errors(form, error)
        else:
            messages.success(request, _("Adhésion enregistrée : l'équipe la marquera réglée à réception du paiement."))
            return redirect("accounts:dashboard")
    return render(
        request, "members/adhesion_form.html", {"amap": amap, "season": season, "form": form, "adhesion": adhesion}
    )


def _adhesion(request, pk: int) -> tuple[Adhesion, bool]:
    """The adhésion if the user is its member or in the AMAP's team (else 404); and whether they are the team."""
    adhesion = get_object_or_404(Adhesion.objects.select_related("membership__amap__commune", "season", "tier"), pk=pk)
    team = selectors.is_team(request.user, adhesion.membership.amap)
    if not team and adhesion.membership.user_id != request.user.pk:
        raise Http404
    return adhesion, team


@login_required
@require_POST
def adhesion_mark(request, pk: int):
    adhesion, team = _adhesion(request, pk)
    if not team:
        raise PermissionDenied(_("Réservé à l'équipe de l'AMAP."))
    services.adhesion_mark(actor=request.user, adhesion=adhesion, paid=request.POST.get("paid") == "1")
    messages.success(request, _("Adhésion mise à jour."))
    return redirect("members:adhesions", adhesion.membership.amap_id)


@login_required
def adhesion_receipt(request, pk: int):
    adhesion, _team = _adhesion(request, pk)
    if adhesion.status != Adhesion.Status.PAID:
        raise PermissionDenied(_("Le reçu est disponible une fois l'adhésion réglée."))
    response = HttpResponse(adhesion_receipt_pdf(adhesion=adhesion), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="recu-adhesion-{adhesion.receipt_number}.pdf"'
    return response


# --------------------------------------------------------------------------------------------
# Messages


@login_required
def message_list(request, amap_pk: int):
    amap = _team_amap(request, amap_pk)
    archive = Message.objects.filter(amap=amap).order_by("-created_at", "-pk")[:200]
    return render(request, "members/message_list.html", {"amap": amap, "archive": archive})


@login_required
@require_http_methods(["GET", "POST"])
def message_create(request, amap_pk: int):
    amap = _team_amap(request, amap_pk)
    form = MessageForm(request.POST or None, amap=amap)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            message = services.message_create(
                actor=request.user,
                amap=amap,
                audience_key=data["audience"],
                param=data.get("param") or "",
                kind=data["kind"],
                subject=data["subject"],
                body=data["body"],
            )
        except ValidationError as error:
            apply_errors(form, error)
        else:
            messages.success(
                request,
                _("Message en cours d'envoi : il part en arrière-plan, chaque destinataire le reçoit une fois."),
            )
            return redirect("members:message_detail", message.pk)
    return render(request, "members/message_form.html", {"amap": amap, "form": form})


@login_required
def message_detail(request, pk: int):
    message = get_object_or_404(Message.objects.select_related("amap"), pk=pk)
    team = selectors.is_team(request.user, message.amap)
    if not team and not message.deliveries.filter(user=request.user).exists():
        raise Http404
    return render(request, "members/message_detail.html", {"message": message, "amap": message.amap, "team": team})
