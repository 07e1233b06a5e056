"""Absences of a member on a delivery date, and deliveries marked done, postponed or cancelled
(members are e-mailed)."""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import permissions

from ..models import (
    Absence,
    Contract,
    Delivery,
    Subscription,
)
from .common import (
    _as_date,
    _evidence,
    _long_date,
    _mail_on_commit,
    _require_member_or_manager,
    _short_date,
)

POSTPONE_GRACE_DAYS = 31  # a delivery may be postponed up to a month after the season ends


# --------------------------------------------------------------------------------------------
# Absences


@transaction.atomic
def absence_declare(
    *, user, subscription: Subscription, delivery: Delivery, substitute_name: str = "", note: str = ""
) -> Absence:
    """The member will not come to this delivery; someone may collect their share (updates if declared)."""
    _require_member_or_manager(user, subscription)
    if delivery.contract_id != subscription.contract_id:
        raise ValidationError({"delivery": [_("Cette distribution n'est pas celle de ce contrat.")]})
    if subscription.status not in Subscription.HOLDING_STATUSES:
        raise ValidationError({"status": [_("Cette souscription n'est pas en cours.")]})
    if delivery.status in (Delivery.Status.CANCELLED, Delivery.Status.DONE) or delivery.date < timezone.localdate():
        raise ValidationError({"delivery": [_("Cette distribution est passée ou annulée.")]})
    if not subscription.items.filter(delivery=delivery).exists():
        raise ValidationError({"delivery": [_("Vous ne recevez rien à cette distribution.")]})
    absence = Absence.objects.filter(subscription=subscription, delivery=delivery).first() or Absence(
        subscription=subscription, delivery=delivery
    )
    absence.substitute_name = str(substitute_name or "").strip()
    absence.note = str(note or "").strip()
    absence.full_clean()
    absence.save()
    return absence


@transaction.atomic
def absence_cancel(*, user, absence: Absence) -> None:
    """The member will come after all."""
    _require_member_or_manager(user, absence.subscription)
    if absence.delivery.date < timezone.localdate():
        raise ValidationError({"delivery": [_("Cette distribution est passée.")]})
    absence.delete()


# --------------------------------------------------------------------------------------------
# Deliveries


def _signed_member_emails(delivery: Delivery) -> list[str]:
    return list(
        Subscription.objects.filter(status=Subscription.Status.SIGNED, items__delivery=delivery, member__isnull=False)
        .values_list("member__email", flat=True)
        .distinct()
    )


@transaction.atomic
def delivery_mark(
    *, user, delivery: Delivery, status: str, new_date: dt.date | None = None, note: str = ""
) -> Delivery:
    """Done, postponed to `new_date`, or cancelled for a production hazard (members are e-mailed)."""
    delivery = (
        Delivery.objects.select_for_update().select_related("contract__amap", "contract__farm").get(pk=delivery.pk)
    )
    contract = delivery.contract
    if not (permissions.can_manage_contract(user, contract) or permissions.can_farm_contract(user, contract)):
        raise PermissionDenied(
            _("Seuls les référents, les administrateurs de l'AMAP et la ferme gèrent les distributions.")
        )
    note = str(note or "").strip()
    marks = (Delivery.Status.DONE, Delivery.Status.POSTPONED, Delivery.Status.CANCELLED)
    if status not in marks:
        raise ValidationError({"status": [_("Statut attendu : effectuée, reportée ou annulée.")]})
    if contract.status not in (Contract.Status.OPEN, Contract.Status.CLOSED):
        raise ValidationError(
            {"status": [_("Les distributions d'un brouillon ou d'un contrat archivé ne se marquent pas.")]}
        )
    if delivery.status in (Delivery.Status.DONE, Delivery.Status.CANCELLED):
        raise ValidationError(
            {"status": [_("Cette distribution est déjà %(status)s.") % {"status": delivery.get_status_display()}]}
        )
    today = timezone.localdate()
    old_date = delivery.date

    if status == Delivery.Status.DONE:
        if delivery.date > today:
            raise ValidationError({"status": [_("Cette distribution n'a pas encore eu lieu.")]})
    elif status == Delivery.Status.POSTPONED:
        if new_date in (None, ""):
            raise ValidationError({"new_date": [_("Indiquez la nouvelle date.")]})
        new_date = _as_date(new_date, field="new_date")
        if new_date == delivery.date:
            raise ValidationError({"new_date": [_("C'est déjà la date de cette distribution.")]})
        if new_date < today:
            raise ValidationError({"new_date": [_("La nouvelle date est passée.")]})
        last = contract.season_end + dt.timedelta(days=POSTPONE_GRACE_DAYS)
        if not contract.season_start <= new_date <= last:
            raise ValidationError(
                {
                    "new_date": [
                        _("Choisissez une date entre le début de la saison et le %(date)s.")
                        % {"date": _short_date(last)}
                    ]
                }
            )
        collision = (
            contract.deliveries.filter(date=new_date).exclude(pk=delivery.pk).exclude(status=Delivery.Status.CANCELLED)
        )
        if collision.exists():
            raise ValidationError(
                {"new_date": [_("Ce contrat a déjà une distribution le %(date)s.") % {"date": _short_date(new_date)}]}
            )
        delivery.date = new_date

    delivery.status = status
    delivery.note = note
    delivery.full_clean()
    delivery.save(update_fields=["status", "date", "note", "updated_at"])
    _evidence(
        kind="delivery.marked",
        payload={
            "status": status,
            "scheduled_date": delivery.scheduled_date,
            "date": delivery.date,
            "old_date": old_date,
            "note": note,
        },
        contract_id=contract.pk,
        actor=user,
    )

    if status == Delivery.Status.POSTPONED:
        subject = _("[AMAP Atlas] Distribution reportée : %(title)s") % {"title": contract.title}
        body = _(
            "Bonjour,\n\n"
            "La distribution du %(old)s du contrat « %(title)s » (%(amap)s, ferme %(farm)s) "
            "est reportée au %(new)s.\n%(note)s\n"
            "Pensez à prévenir votre remplaçant·e si vous en aviez un·e.\n\n"
            "L'équipe de l'AMAP"
        )
        context = {"old": _long_date(old_date), "new": _long_date(delivery.date)}
    elif status == Delivery.Status.CANCELLED:
        subject = _("[AMAP Atlas] Distribution annulée : %(title)s") % {"title": contract.title}
        body = _(
            "Bonjour,\n\n"
            "La distribution du %(old)s du contrat « %(title)s » (%(amap)s, ferme %(farm)s) "
            "est annulée à cause d'un aléa de production.\n%(note)s\n"
            "Elle ne vous sera pas facturée.\n\n"
            "L'équipe de l'AMAP"
        )
        context = {"old": _long_date(old_date)}
    else:
        return delivery
    context.update(
        {
            "title": contract.title,
            "amap": contract.amap.name,
            "farm": contract.farm.name,
            "note": (_("Motif : %(note)s") % {"note": note} + "\n") if note else "",
        }
    )
    _mail_on_commit(subject, body % context, _signed_member_emails(delivery))
    return delivery
