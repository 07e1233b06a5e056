"""Shift and event pages. Access rule (as in contracts): not logged in → the login page (except
the public calendars); an object you may not see → 404; an action that is not yours → 403.
Rules live in `services`, reads in `selectors`; pages only translate."""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.form_errors import apply_errors
from contracts.models import Contract
from directory.models import Amap, Network

from . import feeds, selectors, services
from .forms import DateForm, EventCancelForm, EventForm, RsvpForm, ShiftQuotaForm
from .models import Event, Rsvp, Shift


def _error_text(error: ValidationError) -> str:
    return " ".join(error.messages)


def _amap_for_members(request, pk: int) -> Amap:
    amap = get_object_or_404(Amap.objects.only("pk", "name", "address"), pk=pk)
    if not selectors.can_see_amap_private(user=request.user, amap=amap):
        raise PermissionDenied(_("Réservé aux membres de l'AMAP."))
    return amap


def _amap_for_team(request, pk: int) -> Amap:
    amap = get_object_or_404(Amap, pk=pk)
    if not selectors.can_run_amap_events(user=request.user, amap=amap):
        raise PermissionDenied(_("Réservé à l'équipe de l'AMAP."))
    return amap


def _shift(request, pk: int) -> Shift:
    shift = get_object_or_404(Shift.objects.select_related("amap"), pk=pk)
    if not selectors.can_see_amap_private(user=request.user, amap=shift.amap):
        raise Http404
    return shift


# --------------------------------------------------------------------------------------------
# Shifts


@login_required
@require_GET
def shift_list(request, pk: int):
    """The season's distributions to come: who is on duty, places left, swaps offered; the team
    sees what is missing and can ask those who served least."""
    amap = _amap_for_members(request, pk)
    today = timezone.localdate()
    start, end = selectors.season_bounds(amap_id=amap.pk, today=today)
    rows = selectors.distributions(amap_id=amap.pk, start=today, end=max(end, today))
    me = request.user.pk
    for row in rows:
        row.mine = next((s for s in row.shifts if s.member_id == me), None)
        row.offered = [s for s in row.shifts if s.offered_at is not None and s.member_id != me]
    served = selectors.shift_counts(amap_id=amap.pk, start=start, end=end)
    context = {
        "amap": amap,
        "rows": rows,
        "is_team": selectors.can_run_amap_events(user=request.user, amap=amap),
        "missing_total": sum(row.missing for row in rows),
        "my_count": served[me],
        "season": (start, end),
    }
    return render(request, "events/shift_list.html", context)


@login_required
@require_POST
def shift_signup(request, pk: int):
    amap = _amap_for_members(request, pk)
    form = DateForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Date de distribution attendue."))
    else:
        try:
            shift = services.shift_signup(user=request.user, amap=amap, date=form.cleaned_data["date"])
        except ValidationError as error:
            messages.error(request, _error_text(error))
        else:
            messages.success(
                request, _("Merci ! Vous êtes de permanence le %(date)s.") % {"date": f"{shift.date:%d/%m/%Y}"}
            )
    return redirect("events:shift_list", pk=amap.pk)


def _shift_action(request, pk: int, action, done: str):
    shift = _shift(request, pk)
    try:
        action(user=request.user, shift=shift)
    except ValidationError as error:
        messages.error(request, _error_text(error))
    else:
        messages.success(request, done)
    return redirect("events:shift_list", pk=shift.amap_id)


@login_required
@require_POST
def shift_withdraw(request, pk: int):
    return _shift_action(request, pk, services.shift_withdraw, _("Vous n'êtes plus de permanence ce jour-là."))


@login_required
@require_POST
def shift_offer(request, pk: int):
    offered = request.POST.get("offered", "1") != "0"

    def action(*, user, shift):
        return services.shift_offer(user=user, shift=shift, offered=offered)

    done = _("Permanence proposée à l'échange.") if offered else _("Vous gardez votre permanence.")
    return _shift_action(request, pk, action, done)


@login_required
@require_POST
def shift_take(request, pk: int):
    return _shift_action(request, pk, services.shift_take, _("Vous reprenez cette permanence : merci !"))


@login_required
@require_http_methods(["GET", "POST"])
def shift_settings(request, pk: int):
    amap = _amap_for_team(request, pk)
    contracts = list(Contract.objects.filter(amap=amap, status__in=selectors.RUNNING).select_related("shift_quota"))
    initial = {"needed": selectors.amap_needed_default(amap_id=amap.pk)}
    for contract in contracts:
        quota = getattr(contract, "shift_quota", None)
        initial[f"contract_{contract.pk}"] = quota.needed if quota else None
    form = ShiftQuotaForm(request.POST if request.method == "POST" else None, contracts=contracts, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.shift_quota_set(
                user=request.user, amap=amap, needed=form.cleaned_data["needed"], per_contract=form.per_contract()
            )
        except ValidationError as error:
            apply_errors(form, error)
        else:
            messages.success(request, _("Besoins de permanence enregistrés."))
            return redirect("events:shift_list", pk=amap.pk)
    return render(request, "events/shift_settings.html", {"amap": amap, "form": form})


@login_required
@require_POST
def shift_ask(request, pk: int):
    """« Solliciter » : e-mail the members who served least, as many as places are missing."""
    amap = _amap_for_team(request, pk)
    form = DateForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Date de distribution attendue."))
        return redirect("events:shift_list", pk=amap.pk)
    try:
        asked = services.shift_ask_least_served(user=request.user, amap=amap, date=form.cleaned_data["date"])
    except ValidationError as error:
        messages.error(request, _error_text(error))
    else:
        if asked:
            messages.success(request, _("%(n)s membre(s) sollicité(s) par e-mail.") % {"n": asked})
        else:
            # A message that reaches nobody is never shown as sent.
            messages.info(request, _("Personne à solliciter : aucun message envoyé."))
    return redirect("events:shift_list", pk=amap.pk)


# --------------------------------------------------------------------------------------------
# Events and calendars


@require_GET
def amap_calendar(request, pk: int):
    """The AMAP's calendar: its events and its networks' (public ones for visitors)."""
    amap = get_object_or_404(Amap.objects.only("pk", "name"), pk=pk)
    now = timezone.now()
    coming = selectors.amap_events(amap=amap, user=request.user, start=now)
    events = list(coming.active()[:100])
    counts = selectors.rsvp_counts(events=events)
    for event in events:
        event.yes_count = counts[event.pk]["yes"]
    is_member = selectors.can_see_amap_private(user=request.user, amap=amap)
    context = {
        "amap": amap,
        "events": events,
        # Apart, so that nobody takes them for what is coming, yet nobody wonders where they went.
        "cancelled": list(coming.filter(cancelled=True)[:20]),
        "is_member": is_member,
        "is_team": selectors.can_run_amap_events(user=request.user, amap=amap),
        "ics_url": request.build_absolute_uri(reverse("events:amap_ics", args=[amap.pk])),
    }
    return render(request, "events/amap_calendar.html", context)


def _ics_response(content: bytes, filename: str) -> HttpResponse:
    response = HttpResponse(content, content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = f'inline; filename="{filename}"'
    return response


@require_GET
def amap_ics(request, pk: int):
    amap = get_object_or_404(Amap.objects.only("pk", "name"), pk=pk)
    since = timezone.now() - dt.timedelta(days=365)
    events = Event.objects.filter(amap=amap, is_public=True, ends_at__gte=since).select_related("amap", "network")
    return _ics_response(feeds.public_calendar(events=events, name=f"{amap.name} — agenda"), f"amap-{amap.pk}.ics")


@require_GET
def network_ics(request, pk: int):
    network = get_object_or_404(Network.objects.only("pk", "name"), pk=pk)
    since = timezone.now() - dt.timedelta(days=365)
    events = Event.objects.filter(network=network, is_public=True, ends_at__gte=since).select_related("amap", "network")
    return _ics_response(
        feeds.public_calendar(events=events, name=f"{network.name} — agenda"), f"reseau-{network.pk}.ics"
    )


def _event_form_page(request, *, amap=None, network=None):
    form = EventForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            event = services.event_create(user=request.user, amap=amap, network=network, **form.cleaned_data)
        except ValidationError as error:
            apply_errors(form, error)
        else:
            messages.success(request, _("Évènement publié."))
            return redirect("events:event_detail", pk=event.pk)
    return render(request, "events/event_form.html", {"form": form, "organiser": amap or network})


@login_required
@require_http_methods(["GET", "POST"])
def amap_event_create(request, pk: int):
    return _event_form_page(request, amap=_amap_for_team(request, pk))


@login_required
@require_http_methods(["GET", "POST"])
def network_event_create(request, pk: int):
    network = get_object_or_404(Network, pk=pk)
    if not selectors.can_run_network_events(user=request.user, network=network):
        raise PermissionDenied(_("Réservé aux administrateur·rices du réseau."))
    return _event_form_page(request, network=network)


def _event(request, pk: int) -> Event:
    event = get_object_or_404(Event.objects.select_related("amap", "network"), pk=pk)
    if not selectors.can_see_event(user=request.user, event=event):
        raise Http404
    return event


@require_GET
def event_detail(request, pk: int):
    """Public events for anyone; a members-only event asks visitors to log in first."""
    if not request.user.is_authenticated and not Event.objects.filter(pk=pk, is_public=True).exists():
        return redirect_to_login(request.get_full_path())
    event = _event(request, pk)
    counts = selectors.rsvp_counts(events=[event])[event.pk]
    mine = None
    if request.user.is_authenticated:
        mine = Rsvp.objects.filter(event=event, person=request.user).first()
    context = {
        "event": event,
        "yes_count": counts["yes"],
        "waiting_count": counts["waiting"],
        "mine": mine,
        "can_answer": selectors.can_answer_event(user=request.user, event=event) and event.ends_at >= timezone.now(),
        "can_organise": not event.cancelled and selectors.can_organise_event(user=request.user, event=event),
    }
    return render(request, "events/event_detail.html", context)


@login_required
@require_POST
def event_answer(request, pk: int):
    event = _event(request, pk)
    form = RsvpForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Réponse attendue : oui ou non."))
        return redirect("events:event_detail", pk=event.pk)
    try:
        rsvp = services.event_answer(user=request.user, event=event, answer=form.cleaned_data["answer"])
    except ValidationError as error:
        messages.error(request, _error_text(error))
    else:
        if rsvp.answer == Rsvp.Answer.WAITING:
            messages.info(request, _("C'est complet : vous êtes sur la liste d'attente."))
        else:
            messages.success(request, _("Réponse enregistrée : %(answer)s.") % {"answer": rsvp.get_answer_display()})
    return redirect("events:event_detail", pk=event.pk)


# --------------------------------------------------------------------------------------------
# The organisers' page: edit, cancel with a reason


def _event_for_organiser(request, pk: int) -> Event:
    event = _event(request, pk)
    if not selectors.can_organise_event(user=request.user, event=event):
        raise PermissionDenied(_("Réservé aux organisateur·rices de l'évènement."))
    return event


def _manage_page(request, event: Event, *, form=None, cancel_form=None, status: int = 200):
    counts = selectors.rsvp_counts(events=[event])[event.pk]
    context = {
        "event": event,
        "form": form or EventForm(instance=event),
        "cancel_form": cancel_form or EventCancelForm(),
        "yes_count": counts["yes"],
        "waiting_count": counts["waiting"],
    }
    return render(request, "events/event_manage.html", context, status=status)


def _told(notified: int) -> str:
    # A message that reaches nobody is never shown as sent.
    if not notified:
        return _("Personne n'est inscrit·e : aucun message envoyé.")
    return ngettext(
        "%(n)s personne inscrite prévenue par e-mail.", "%(n)s personnes inscrites prévenues par e-mail.", notified
    ) % {"n": notified}


@login_required
@require_http_methods(["GET", "POST"])
def event_edit(request, pk: int):
    """Change the title, time, place, description, capacity…; those registered are told when the
    time or the place changes, and the page says how many."""
    event = _event_for_organiser(request, pk)
    if event.cancelled:
        messages.info(request, _("Cet évènement est annulé : il ne peut plus être modifié."))
        return redirect("events:event_detail", pk=event.pk)
    if request.method == "GET":
        return _manage_page(request, event)
    form = EventForm(request.POST, instance=event)
    if form.is_valid():
        try:
            change = services.event_update(user=request.user, event=event, **form.cleaned_data)
        except ValidationError as error:
            apply_errors(form, error)
        else:
            if not change.changed:
                messages.info(request, _("Rien n'a changé."))
            elif change.notified is None:
                unchanged = _("Évènement modifié (date, heure et lieu inchangés : aucun message envoyé).")
                messages.success(request, unchanged)
            else:
                messages.success(request, _("Évènement modifié. %(told)s") % {"told": _told(change.notified)})
            return redirect("events:event_detail", pk=event.pk)
    return _manage_page(request, event, form=form, status=400)


@login_required
@require_POST
def event_cancel(request, pk: int):
    event = _event_for_organiser(request, pk)
    form = EventCancelForm(request.POST)
    if form.is_valid():
        try:
            notified = services.event_cancel(user=request.user, event=event, reason=form.cleaned_data["reason"])
        except ValidationError as error:
            apply_errors(form, error)
        else:
            messages.success(request, _("Évènement annulé. %(told)s") % {"told": _told(notified)})
            return redirect("events:event_detail", pk=event.pk)
    if event.cancelled:
        messages.info(request, _("Cet évènement est déjà annulé."))
        return redirect("events:event_detail", pk=event.pk)
    return _manage_page(request, event, cancel_form=form, status=400)
