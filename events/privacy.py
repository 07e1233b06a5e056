"""What events holds about a person, declared to « Mes données » (`accounts.privacy`).

Answers to events (yes, no, waiting list), shifts on duty and the events the person created are
exported and listed on the page. On erasure, what is still to come goes: answers to events not
started yet (their places go to the waiting list) and shifts from today on (the AMAP sees the
place open again). What is over stays, tied to the anonymised account, as the members' and
matching's messages do: an event keeps its count of who came and a distribution its number on
duty, without the person's name. Events the person created belong to their AMAP or network:
they stay, and no longer name their author once the account is anonymised.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.privacy import ErasureNote, PersonalDataCsv, PersonalDataSummary, register_personal_data

from . import services
from .models import Event, Rsvp, Shift


def _json(value: Any) -> Any:
    return value.isoformat() if isinstance(value, (dt.datetime, dt.date)) else value


def _moment(value: dt.datetime) -> str:
    return date_format(timezone.localtime(value), "j F Y, H:i")


def _organiser(event: Event) -> str:
    return event.amap.name if event.amap_id else event.network.name


# --------------------------------------------------------------------------------------------
# Answers to events


def _replies_of(user):
    return (
        Rsvp.objects.filter(person=user)
        .select_related("event__amap", "event__network")
        .order_by("event__starts_at", "event_id")
    )


def replies_export(user) -> list[dict[str, Any]]:
    return [
        {
            "event": rsvp.event.title,
            "kind": rsvp.event.kind,
            "organiser": _organiser(rsvp.event),
            "place": rsvp.event.place,
            "starts_at": _json(rsvp.event.starts_at),
            "ends_at": _json(rsvp.event.ends_at),
            "event_cancelled": rsvp.event.cancelled,
            "answer": rsvp.answer,
            "answered_at": _json(rsvp.answered_at),
        }
        for rsvp in _replies_of(user)
    ]


def replies_lines(user) -> list[str]:
    lines = []
    for rsvp in _replies_of(user):
        line = _("%(when)s — « %(title)s » (%(organiser)s) : %(answer)s") % {
            "when": _moment(rsvp.event.starts_at),
            "title": rsvp.event.title,
            "organiser": _organiser(rsvp.event),
            "answer": rsvp.get_answer_display(),
        }
        lines.append(line + (_(" (annulé)") if rsvp.event.cancelled else ""))
    return lines


def upcoming_replies_count(user) -> int:
    return Rsvp.objects.filter(person=user, event__starts_at__gt=timezone.now()).count()


def past_replies_count(user) -> int:
    return Rsvp.objects.filter(person=user, event__starts_at__lte=timezone.now()).count()


def replies_erase(user) -> None:
    services.rsvps_withdraw_upcoming(user=user)


# --------------------------------------------------------------------------------------------
# Shifts


def _shifts_of(user):
    return Shift.objects.filter(member=user).select_related("amap").order_by("date", "pk")


def shifts_export(user) -> list[dict[str, Any]]:
    return [
        {
            "amap": shift.amap.name,
            "date": _json(shift.date),
            "offered_at": _json(shift.offered_at),
            "created_at": _json(shift.created_at),
        }
        for shift in _shifts_of(user)
    ]


def shifts_lines(user) -> list[str]:
    return [
        _("%(date)s — %(amap)s") % {"date": date_format(shift.date, "l j F Y"), "amap": shift.amap.name}
        for shift in _shifts_of(user)
    ]


def upcoming_shifts_count(user) -> int:
    return Shift.objects.filter(member=user, date__gte=timezone.localdate()).count()


def past_shifts_count(user) -> int:
    return Shift.objects.filter(member=user, date__lt=timezone.localdate()).count()


def shifts_erase(user) -> None:
    services.shifts_withdraw_upcoming(user=user)


# --------------------------------------------------------------------------------------------
# Events the person created


def _created_by(user):
    return Event.objects.filter(created_by=user).select_related("amap", "network").order_by("starts_at", "pk")


def created_export(user) -> list[dict[str, Any]]:
    return [
        {
            "event": event.title,
            "organiser": _organiser(event),
            "place": event.place,
            "starts_at": _json(event.starts_at),
            "cancelled": event.cancelled,
            "created_at": _json(event.created_at),
        }
        for event in _created_by(user)
    ]


def created_lines(user) -> list[str]:
    return [
        _("%(when)s — « %(title)s » (%(organiser)s)")
        % {"when": _moment(event.starts_at), "title": event.title, "organiser": _organiser(event)}
        for event in _created_by(user)
    ]


def register() -> None:
    """Called from `EventsConfig.ready()`."""
    register_personal_data(
        "event_replies",
        export=replies_export,
        csv=PersonalDataCsv(
            "reponses_evenements.csv",
            ["evenement", "organisateur", "lieu", "debut", "fin", "evenement_annule", "reponse", "repondu_le"],
            lambda r: [
                r["event"],
                r["organiser"],
                r["place"],
                r["starts_at"],
                r["ends_at"],
                r["event_cancelled"],
                r["answer"],
                r["answered_at"],
            ],
        ),
        summary=PersonalDataSummary(gettext_lazy("Vos réponses aux évènements"), replies_lines),
        count=upcoming_replies_count,
        erasure_note=lambda count: ErasureNote(
            _("%(count)d réponse(s) à des évènements à venir") % {"count": count},
            _("Supprimées : les places que vous teniez vont aux personnes en liste d'attente."),
        ),
        erase=replies_erase,
    )
    register_personal_data(
        "past_event_replies",
        count=past_replies_count,
        erasure_note=lambda count: ErasureNote(
            _("%(count)d réponse(s) à des évènements passés") % {"count": count},
            _("Conservées sans votre nom : le nombre de participant·es reste juste."),
            kept=True,
        ),
    )
    register_personal_data(
        "shifts",
        export=shifts_export,
        csv=PersonalDataCsv(
            "permanences.csv",
            ["amap", "date", "proposee_a_l_echange_le", "inscrite_le"],
            lambda s: [s["amap"], s["date"], s["offered_at"], s["created_at"]],
        ),
        summary=PersonalDataSummary(gettext_lazy("Vos permanences"), shifts_lines),
        count=upcoming_shifts_count,
        erasure_note=lambda count: ErasureNote(
            _("%(count)d permanence(s) à venir") % {"count": count},
            _("Supprimées : l'AMAP voit que la place est de nouveau à prendre."),
        ),
        erase=shifts_erase,
    )
    register_personal_data(
        "past_shifts",
        count=past_shifts_count,
        erasure_note=lambda count: ErasureNote(
            _("%(count)d permanence(s) passée(s)") % {"count": count},
            _("Conservées sans votre nom : l'AMAP garde le compte des permanences tenues."),
            kept=True,
        ),
    )
    register_personal_data(
        "events_created",
        export=created_export,
        csv=PersonalDataCsv(
            "evenements_crees.csv",
            ["evenement", "organisateur", "lieu", "debut", "annule", "cree_le"],
            lambda e: [e["event"], e["organiser"], e["place"], e["starts_at"], e["cancelled"], e["created_at"]],
        ),
        summary=PersonalDataSummary(gettext_lazy("Évènements que vous avez créés"), created_lines),
        count=lambda user: Event.objects.filter(created_by=user).count(),
        erasure_note=lambda count: ErasureNote(
            _("%(count)d évènement(s) que vous avez créé(s)") % {"count": count},
            _("Conservés : ils sont ceux de l'AMAP ou du réseau, et ne portent plus votre nom."),
            kept=True,
        ),
    )
