"""Writes on shifts and events. Each checks the acting person's right and raises
`PermissionDenied`; bad values raise `ValidationError({field: [message in French]})`.
E-mails go through Django's mail API, which the project queues as background jobs
(accounts/mail.py), and leave once the transaction commits.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _

from contracts.models import Contract
from directory.models import Amap

from . import selectors
from .models import MAX_NEEDED, Event, Rsvp, Shift, ShiftQuota

REMIND_DAYS_BEFORE = 2


def _long_date(day: dt.date) -> str:
    with translation.override("fr"):
        return formats.date_format(day, "l j F Y")


def _long_moment(moment: dt.datetime) -> str:
    with translation.override("fr"):
        return formats.date_format(timezone.localtime(moment), "l j F Y, H:i")


def _long_span(start: dt.datetime, end: dt.datetime) -> str:
    """« samedi 12 juin 2027, 19:00 – 21:00 », the end's date too when it is another day."""
    if timezone.localtime(start).date() == timezone.localtime(end).date():
        return f"{_long_moment(start)} – {timezone.localtime(end):%H:%M}"
    return f"{_long_moment(start)} – {_long_moment(end)}"


def _mail_on_commit(subject: str, body: str, recipients) -> int:
    """One e-mail per recipient once the transaction commits; returns how many will leave."""
    recipients = sorted({address for address in recipients if address})

    def send():
        for address in recipients:
            send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [address], fail_silently=True)

    if recipients:
        transaction.on_commit(send)
    return len(recipients)


def _url(name: str, *args) -> str:
    return settings.SITE_URL.rstrip("/") + reverse(name, args=args)


def _locked_amap(amap: Amap) -> Amap:
    # One sign-up at a time per AMAP: two people never take the last place of the same date.
    return Amap.objects.select_for_update().only("pk", "name").get(pk=amap.pk)


# --------------------------------------------------------------------------------------------
# Shifts


@transaction.atomic
def shift_signup(*, user, amap: Amap, date: dt.date) -> Shift:
    """The member takes a place on duty at this distribution."""
    if not selectors.is_amap_member(user=user, amap=amap):
        raise PermissionDenied(_("Les permanences sont tenues par les membres de l'AMAP."))
    if date < timezone.localdate():
        raise ValidationError({"date": [_("Cette distribution est passée.")]})
    _locked_amap(amap)
    distribution = selectors.distribution_of(amap_id=amap.pk, date=date)
    if distribution is None:
        raise ValidationError({"date": [_("Pas de distribution ce jour-là.")]})
    if user.pk in distribution.member_ids:
        raise ValidationError({"date": [_("Vous êtes déjà de permanence ce jour-là.")]})
    if distribution.missing <= 0:
        raise ValidationError({"date": [_("Il y a déjà assez de monde ce jour-là : merci !")]})
    return Shift.objects.create(amap=amap, date=date, member=user)


def _own_future_shift(user, shift: Shift) -> Shift:
    shift = Shift.objects.select_for_update().get(pk=shift.pk)
    if shift.member_id != user.pk:
        raise PermissionDenied(_("Ce n'est pas votre permanence."))
    if shift.date < timezone.localdate():
        raise ValidationError({"date": [_("Cette distribution est passée.")]})
    return shift


@transaction.atomic
def shift_withdraw(*, user, shift: Shift) -> None:
    shift = _own_future_shift(user, shift)
    shift.delete()


@transaction.atomic
def shift_offer(*, user, shift: Shift, offered: bool = True) -> Shift:
    """Offer one's shift for a swap (another member takes it), or take the offer back."""
    shift = _own_future_shift(user, shift)
    shift.offered_at = timezone.now() if offered else None
    shift.save(update_fields=["offered_at", "updated_at"])
    return shift


@transaction.atomic
def shift_take(*, user, shift: Shift) -> Shift:
    """Another member takes an offered shift; the one who offered it is told by e-mail."""
    shift = Shift.objects.select_for_update().select_related("amap", "member").get(pk=shift.pk)
    if not selectors.is_amap_member(user=user, amap=shift.amap):
        raise PermissionDenied(_("Les permanences sont tenues par les membres de l'AMAP."))
    if shift.member_id == user.pk:
        raise ValidationError({"shift": [_("C'est déjà votre permanence.")]})
    if shift.offered_at is None:
        raise ValidationError({"shift": [_("Cette permanence n'est pas proposée à l'échange.")]})
    if shift.date < timezone.localdate():
        raise ValidationError({"shift": [_("Cette distribution est passée.")]})
    if Shift.objects.filter(amap_id=shift.amap_id, date=shift.date, member_id=user.pk).exists():
        raise ValidationError({"shift": [_("Vous êtes déjà de permanence ce jour-là.")]})
    former = shift.member
    shift.member = user
    shift.offered_at = None
    shift.reminded_at = None
    shift.save(update_fields=["member", "offered_at", "reminded_at", "updated_at"])
    _mail_on_commit(
        _("Permanence reprise : %(date)s") % {"date": _long_date(shift.date)},
        _(
            "Bonjour,\n\n%(name)s reprend votre permanence du %(date)s à %(amap)s : vous n'êtes plus de permanence "
            "ce jour-là.\n\n— AMAP Atlas"
        )
        % {"name": user.display_name or user.email, "date": _long_date(shift.date), "amap": shift.amap.name},
        [former.email],
    )
    return shift


def shifts_withdraw_upcoming(*, user) -> int:
    """Erasure of the account: its shifts from today on go, so the AMAP sees the place open again.
    Returns how many went. Past shifts stay: they tell who held each distribution."""
    deleted, _by_model = Shift.objects.filter(member=user, date__gte=timezone.localdate()).delete()
    return deleted


@transaction.atomic
def shift_quota_set(*, user, amap: Amap, needed: int, per_contract: dict[int, int | None]) -> None:
    """How many members each distribution needs: the AMAP's number, and per contract (None: the AMAP's)."""
    if not selectors.can_run_amap_events(user=user, amap=amap):
        raise PermissionDenied(_("Réservé à l'équipe de l'AMAP."))
    for value in [needed, *[v for v in per_contract.values() if v is not None]]:
        if not isinstance(value, int) or not 0 <= value <= MAX_NEEDED:
            raise ValidationError({"needed": [_("De 0 à %(max)s personnes.") % {"max": MAX_NEEDED}]})
    ShiftQuota.objects.update_or_create(amap=amap, contract=None, defaults={"needed": needed})
    contracts = set(Contract.objects.filter(amap=amap, pk__in=list(per_contract)).values_list("pk", flat=True))
    for contract_id, value in per_contract.items():
        if contract_id not in contracts:
            raise ValidationError({"contract": [_("Contrat inconnu pour cette AMAP.")]})
        if value is None:
            ShiftQuota.objects.filter(contract_id=contract_id).delete()
        else:
            ShiftQuota.objects.update_or_create(contract_id=contract_id, defaults={"amap": amap, "needed": value})


@transaction.atomic
def shift_ask_least_served(*, user, amap: Amap, date: dt.date) -> int:
    """E-mail the members who served least this season, as many as places are missing on `date`.

    Returns how many were asked (0 when nothing is missing: nobody is bothered)."""
    if not selectors.can_run_amap_events(user=user, amap=amap):
        raise PermissionDenied(_("Réservé à l'équipe de l'AMAP."))
    if date < timezone.localdate():
        raise ValidationError({"date": [_("Cette distribution est passée.")]})
    distribution = selectors.distribution_of(amap_id=amap.pk, date=date)
    if distribution is None:
        raise ValidationError({"date": [_("Pas de distribution ce jour-là.")]})
    if distribution.missing == 0:
        return 0
    people = list(selectors.least_served_members(amap_id=amap.pk, date=date, limit=distribution.missing))
    subject = _("Permanence du %(date)s : il manque du monde") % {"date": _long_date(date)}
    body = _(
        "Bonjour,\n\nÀ la distribution du %(date)s, %(amap)s a encore besoin de %(missing)s personne(s) de "
        "permanence. Vous en avez tenu peu cette saison : pourriez-vous vous inscrire ?\n\n%(url)s\n\n— AMAP Atlas"
    ) % {
        "date": _long_date(date),
        "amap": amap.name,
        "missing": distribution.missing,
        "url": _url("events:shift_list", amap.pk),
    }
    return _mail_on_commit(subject, body, [person.email for person in people])


def shift_reminders_send(*, today: dt.date | None = None) -> int:
    """E-mail each member on duty in two days, once (`reminded_at`); returns how many were reminded.

    Rows are claimed with SKIP LOCKED, so two workers never remind the same person twice."""
    today = today or timezone.localdate()
    target = today + dt.timedelta(days=REMIND_DAYS_BEFORE)
    sent = 0
    with transaction.atomic():
        due = list(
            Shift.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(date=target, reminded_at__isnull=True)
            .select_related("amap", "member")
            .order_by("pk")
        )
        now = timezone.now()
        for shift in due:
            places = list(
                Contract.objects.filter(
                    amap_id=shift.amap_id, deliveries__date=shift.date, status__in=selectors.RUNNING
                )
                .exclude(delivery_place="")
                .values_list("delivery_place", flat=True)
                .distinct()
            )
            where = ", ".join(places) or shift.amap.address or shift.amap.name
            _mail_on_commit(
                _("Rappel : permanence le %(date)s") % {"date": _long_date(shift.date)},
                _(
                    "Bonjour,\n\nVous êtes de permanence à la distribution de %(amap)s le %(date)s (%(where)s).\n"
                    "Un empêchement ? Proposez votre permanence à l'échange : %(url)s\n\n— AMAP Atlas"
                )
                % {
                    "amap": shift.amap.name,
                    "date": _long_date(shift.date),
                    "where": where,
                    "url": _url("events:shift_list", shift.amap_id),
                },
                [shift.member.email],
            )
            shift.reminded_at = now
            sent += 1
        Shift.objects.bulk_update(due, ["reminded_at"])
    return sent


# --------------------------------------------------------------------------------------------
# Events


EVENT_FIELDS = ("kind", "title", "description", "place", "starts_at", "ends_at", "capacity", "is_public")
# A change to one of these changes the plans of those registered: they are told by e-mail.
EVENT_FIELDS_TOLD = ("starts_at", "ends_at", "place")


@transaction.atomic
def event_create(*, user, amap: Amap | None = None, network=None, **fields) -> Event:
    if amap is not None and not selectors.can_run_amap_events(user=user, amap=amap):
        raise PermissionDenied(_("Réservé à l'équipe de l'AMAP."))
    if network is not None and not selectors.can_run_network_events(user=user, network=network):
        raise PermissionDenied(_("Réservé aux administrateur·rices du réseau."))
    event = Event(amap=amap, network=network, created_by=user, **{k: fields[k] for k in EVENT_FIELDS if k in fields})
    if event.starts_at and event.ends_at and event.ends_at <= event.starts_at:
        raise ValidationError({"ends_at": [_("La fin doit suivre le début.")]})
    event.full_clean()
    event._history_user = user
    event.save()
    return event


@dataclass(frozen=True)
class EventChange:
    event: Event
    changed: tuple[str, ...]  # the fields whose value changed
    notified: int | None  # e-mails queued to those registered; None when nothing they need to know changed


def _organised_event(user, event: Event) -> Event:
    """The event, locked, after checking that `user` organises it and that it still runs."""
    event = Event.objects.select_for_update(of=("self",)).select_related("amap", "network").get(pk=event.pk)
    if not selectors.can_organise_event(user=user, event=event):
        raise PermissionDenied(_("Réservé aux organisateur·rices de l'évènement."))
    if event.cancelled:
        raise ValidationError(_("Cet évènement est annulé : il ne peut plus être modifié."))
    return event


@transaction.atomic
def event_update(*, user, event: Event, **fields) -> EventChange:
    """The organisers change an event; those registered are told when its time or place changes."""
    event = _organised_event(user, event)
    before = {name: getattr(event, name) for name in EVENT_FIELDS}
    for name in EVENT_FIELDS:
        if name in fields:
            setattr(event, name, fields[name])
    if event.ends_at <= event.starts_at:
        raise ValidationError({"ends_at": [_("La fin doit suivre le début.")]})
    taken = Rsvp.objects.filter(event=event, answer=Rsvp.Answer.YES).count()
    if event.capacity is not None and event.capacity < taken:
        raise ValidationError(
            {"capacity": [_("%(n)s personnes sont déjà inscrites : pas moins de places que cela.") % {"n": taken}]}
        )
    event.full_clean()
    changed = tuple(name for name in EVENT_FIELDS if getattr(event, name) != before[name])
    if not changed:
        return EventChange(event=event, changed=(), notified=None)
    event._history_user = user
    event.save()
    if event.capacity is None or (before["capacity"] is not None and event.capacity > before["capacity"]):
        _promote_waiting(event)  # more places: the waiting list moves up (and is told)
    notified = None
    if any(name in EVENT_FIELDS_TOLD for name in changed):
        notified = _mail_on_commit(
            _("Changement : %(title)s") % {"title": event.title},
            _(
                "Bonjour,\n\n« %(title)s » (%(organiser)s) change. Désormais :\n"
                "- quand : %(when)s\n- où : %(place)s\n\n"
                "Votre réponse est gardée. Vous ne pouvez plus venir ? Dites-le sur la page de l'évènement :\n"
                "%(url)s\n\n— AMAP Atlas"
            )
            % {
                "title": event.title,
                "organiser": event.organiser.name,
                "when": _long_span(event.starts_at, event.ends_at),
                "place": event.place,
                "url": _url("events:event_detail", event.pk),
            },
            selectors.event_registered_emails(event=event),
        )
    return EventChange(event=event, changed=changed, notified=notified)


@transaction.atomic
def event_cancel(*, user, event: Event, reason: str) -> int:
    """Cancel with a reason: the event stays, shown « Annulé »; those registered (yes or waiting)
    are told by e-mail. Returns how many e-mails were queued."""
    event = _organised_event(user, event)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": [_("Dites en quelques mots pourquoi : les inscrit·es le liront.")]})
    if event.ends_at < timezone.now():
        raise ValidationError(_("Cet évènement est passé : il n'y a plus rien à annuler."))
    event.cancelled = True
    event.cancel_reason = reason
    event.cancelled_at = timezone.now()
    event.full_clean()
    event._history_user = user
    event._change_reason = _("Annulation")
    event.save()
    return _mail_on_commit(
        _("Annulé : %(title)s") % {"title": event.title},
        _(
            "Bonjour,\n\n« %(title)s » (%(organiser)s), prévu le %(start)s, est annulé.\n\n"
            "Motif : %(reason)s\n\n%(url)s\n\n— AMAP Atlas"
        )
        % {
            "title": event.title,
            "organiser": event.organiser.name,
            "start": _long_moment(event.starts_at),
            "reason": reason,
            "url": _url("events:event_detail", event.pk),
        },
        selectors.event_registered_emails(event=event),
    )


@transaction.atomic
def event_answer(*, user, event: Event, answer: str) -> Rsvp:
    """Yes (or the waiting list when full) or no. A place freed goes to the first on the waiting list."""
    event = Event.objects.select_for_update(of=("self",)).select_related("amap", "network").get(pk=event.pk)
    if event.cancelled:
        raise ValidationError({"answer": [_("Cet évènement est annulé : on ne peut plus s'y inscrire.")]})
    if not selectors.can_answer_event(user=user, event=event):
        raise PermissionDenied(_("Vous ne pouvez pas répondre à cet évènement."))
    if answer not in (Rsvp.Answer.YES, Rsvp.Answer.NO):
        raise ValidationError({"answer": [_("Réponse attendue : oui ou non.")]})
    if event.ends_at < timezone.now():
        raise ValidationError({"answer": [_("Cet évènement est passé.")]})
    current = Rsvp.objects.filter(event=event, person=user).first()
    was_yes = current is not None and current.answer == Rsvp.Answer.YES
    if answer == Rsvp.Answer.YES and not was_yes:
        taken = Rsvp.objects.filter(event=event, answer=Rsvp.Answer.YES).count()
        if event.capacity is not None and taken >= event.capacity:
            answer = Rsvp.Answer.WAITING
            if current is not None and current.answer == Rsvp.Answer.WAITING:
                return current  # keeps their place in the queue
    if answer == Rsvp.Answer.YES and was_yes:
        return current
    rsvp, _created = Rsvp.objects.update_or_create(
        event=event, person=user, defaults={"answer": answer, "answered_at": timezone.now()}
    )
    if was_yes and answer == Rsvp.Answer.NO:
        _promote_waiting(event)
    return rsvp


@transaction.atomic
def rsvps_withdraw_upcoming(*, user) -> int:
    """Erasure of the account: its answers to events not started yet go, and the places it held go to
    the waiting list. Returns how many went. Answers to events already started stay: they count who came."""
    upcoming = Rsvp.objects.filter(person=user, event__starts_at__gt=timezone.now())
    held = upcoming.filter(answer=Rsvp.Answer.YES, event__cancelled=False).values("event_id")
    # Locked as `event_answer` locks them: nobody takes or frees a place meanwhile.
    events = list(Event.objects.select_for_update().filter(pk__in=held).order_by("pk"))
    deleted, _by_model = upcoming.delete()
    for event in events:
        _promote_waiting(event)
    return deleted


def _promote_waiting(event: Event) -> None:
    taken = Rsvp.objects.filter(event=event, answer=Rsvp.Answer.YES).count()
    free = (event.capacity - taken) if event.capacity is not None else None
    waiting = (
        Rsvp.objects.filter(event=event, answer=Rsvp.Answer.WAITING)
        .select_related("person")
        .order_by("answered_at", "pk")
    )
    for rsvp in waiting[: free if free is not None else None]:
        rsvp.answer = Rsvp.Answer.YES
        rsvp.save(update_fields=["answer"])
        _mail_on_commit(
            _("Une place s'est libérée : %(title)s") % {"title": event.title},
            _(
                "Bonjour,\n\nUne place s'est libérée : vous êtes inscrit·e à « %(title)s » le %(date)s.\n\n"
                "%(url)s\n\n— AMAP Atlas"
            )
            % {
                "title": event.title,
                "date": _long_date(timezone.localtime(event.starts_at).date()),
                "url": _url("events:event_detail", event.pk),
            },
            [rsvp.person.email],
        )
