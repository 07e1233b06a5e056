"""What the contract services share: permission checks, row locks, value parsing with French
errors, the evidence trail, e-mails sent once the transaction commits."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.urls import NoReverseMatch, reverse
from django.utils import formats, translation
from django.utils.translation import gettext as _

from accounts import permissions

from ..evidence import evidence_append
from ..models import (
    Contract,
    Subscription,
)

LIVE_STATUSES = (
    Subscription.Status.WAITING,
    Subscription.Status.PENDING,
    Subscription.Status.MEMBER_SIGNED,
    Subscription.Status.SIGNED,
)


def _evidence(*, kind: str, payload: dict, contract_id=None, subscription_id=None, actor=None) -> None:
    evidence_append(
        kind=kind,
        payload=payload,
        contract_id=contract_id,
        subscription_id=subscription_id,
        actor_id=getattr(actor, "pk", None),
    )


def _site_url(path: str) -> str:
    base = getattr(settings, "SITE_URL", "http://127.0.0.1:8000").rstrip("/")
    return f"{base}{path}"


def _subscription_path(subscription: Subscription) -> str:
    try:
        return reverse("contracts:subscription_detail", kwargs={"pk": subscription.pk})
    except NoReverseMatch:  # pages not wired (e.g. a project using the services alone)
        return f"/contrats/souscriptions/{subscription.pk}/"


def _long_date(day: dt.date) -> str:
    with translation.override("fr"):
        return formats.date_format(day, "l j F Y")


def _short_date(day: dt.date) -> str:
    return day.strftime("%d/%m/%Y")


def _mail_on_commit(subject: str, body: str, recipients: Iterable[str]) -> None:
    """Send one e-mail per recipient once the transaction commits (nothing leaves on rollback)."""
    recipients = sorted({address for address in recipients if address})
    if not recipients:
        return

    def send():
        for address in recipients:
            send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [address], fail_silently=True)

    transaction.on_commit(send)


def _is_authenticated(user) -> bool:
    return bool(user is not None and getattr(user, "is_authenticated", False) and user.is_active)


def _require_manager(user, contract: Contract) -> None:
    if not permissions.can_manage_contract(user, contract):
        raise PermissionDenied(
            _("Seuls le ou la référent·e du contrat et les administrateurs de l'AMAP peuvent faire cela.")
        )


def _require_member_or_manager(user, subscription: Subscription) -> None:
    if not _is_authenticated(user):
        raise PermissionDenied(_("Connectez-vous pour gérer votre contrat."))
    if subscription.member_id is not None and subscription.member_id == user.pk:
        return
    if permissions.can_manage_contract(user, subscription.contract):
        return
    raise PermissionDenied(_("Cette souscription n'est pas la vôtre."))


def _locked_contract(contract: Contract) -> Contract:
    """The contract row, locked until the transaction ends (serialises capacity counts)."""
    return Contract.objects.select_for_update().select_related("amap__commune", "farm").get(pk=contract.pk)


def _locked_subscription(subscription: Subscription) -> Subscription:
    return Subscription.objects.select_for_update().get(pk=subscription.pk)


def _as_int(value: Any, *, field: str, label: str) -> int:
    if isinstance(value, bool):
        raise ValidationError({field: [_("%(label)s : nombre entier attendu.") % {"label": label}]})
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValidationError({field: [_("%(label)s : nombre entier attendu.") % {"label": label}]}) from None
    if isinstance(value, float) and value != number:
        raise ValidationError({field: [_("%(label)s : nombre entier attendu.") % {"label": label}]})
    return number


def _as_date(value: Any, *, field: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValidationError({field: [_("Date invalide (attendu : AAAA-MM-JJ).")]})


def _as_time(value: Any, *, field: str) -> dt.time | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.time):
        return value
    if isinstance(value, str):
        try:
            return dt.time.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValidationError({field: [_("Heure invalide (attendu : HH:MM).")]})


def _text(value: Any, *, field: str, max_length: int, required: bool = False) -> str:
    text = "" if value is None else str(value).strip()
    if required and not text:
        raise ValidationError({field: [_("Ce champ est obligatoire.")]})
    if len(text) > max_length:
        raise ValidationError({field: [_("%(max)s caractères au plus.") % {"max": max_length}]})
    return text
