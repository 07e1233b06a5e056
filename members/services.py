"""Writes on members: joining and the team's decision, invitations, import, adhésions, messages."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core import signing
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import EmailMessage, send_mail
from django.core.validators import validate_email
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from directory.models import Amap

from . import selectors
from .audiences import audience
from .importing import MemberImportReport, members_import  # noqa: F401 (re-exported: callers use services)
from .models import Adhesion, AdhesionSeason, AdhesionTier, Membership, Message, MessageDelivery, PaymentMode
from .selectors import require_team

INVITATION_SALT = "members.invitation"
INVITATION_MAX_AGE = 60 * 60 * 24 * 30  # a month to accept
UNSUBSCRIBE_SALT = "members.unsubscribe"


def site_url(path: str) -> str:
    return getattr(settings, "SITE_URL", "http://127.0.0.1:8000").rstrip("/") + path


def _names(user) -> tuple[str, str]:
    first, _sep, last = (user.display_name or "").strip().partition(" ")
    return first[:100], last[:100]


# --------------------------------------------------------------------------------------------
# Joining


@transaction.atomic
def membership_request(*, user, amap: Amap, note: str = "") -> Membership:
    """The person asks to join: a request the team examines, or the waiting list when the AMAP is full."""
    if amap.status == Amap.Status.CLOSED:
        raise ValidationError(_("Cette AMAP est fermée."))
    existing = Membership.objects.select_for_update().filter(amap=amap, user=user).first()
    if existing is None:
        existing = Membership.objects.filter(amap=amap).filter(email__iexact=user.email).first()
    waiting = amap.accepting_members in (Amap.Accepting.WAITING_LIST, Amap.Accepting.FULL)
    status = Membership.Status.WAITING if waiting else Membership.Status.PENDING
    if existing is not None:
        if existing.status in (Membership.Status.ACTIVE, Membership.Status.PENDING, Membership.Status.WAITING):
            return existing
        if existing.status == Membership.Status.INVITED:
            return membership_activate(membership=existing, user=user)
        existing.user, existing.status, existing.note = user, status, note[:2000]
        existing.save()
        membership = existing
    else:
        first, last = _names(user)
        membership = Membership.objects.create(
            amap=amap, user=user, email=user.email, first_name=first, last_name=last, status=status, note=note[:2000]
        )
    _notify_team(amap, membership)
    return membership


def _team_emails(amap: Amap) -> list[str]:
    return sorted({email for email in amap.managers.filter(is_active=True).values_list("email", flat=True) if email})


def _notify_team(amap: Amap, membership: Membership) -> None:
    recipients = _team_emails(amap)
    if not recipients:
        return
    url = site_url(reverse("members:member_list", args=[amap.pk]))
    body = _(
        "%(name)s demande à rejoindre %(amap)s (%(status)s).\n\nAcceptez ou placez la personne sur la liste "
        "d'attente depuis la liste des membres :\n%(url)s\n"
    ) % {
        "name": membership.full_name or membership.email,
        "amap": amap.name,
        "status": membership.get_status_display(),
        "url": url,
    }
    send_mail(_("Nouvelle demande d'adhésion — %(amap)s") % {"amap": amap.name}, body, None, recipients)


def membership_activate(*, membership: Membership, user=None, actor=None) -> Membership:
    membership.status = Membership.Status.ACTIVE
    membership.joined_at = membership.joined_at or timezone.now()
    if user is not None:
        membership.user = user
    if actor is not None:
        membership.decided_by = actor
    membership.save()
    return membership


DECISIONS = ("accept", "wait", "remove")


@transaction.atomic
def membership_decide(*, actor, membership: Membership, decision: str) -> Membership:
    """The team accepts a person, puts them on the waiting list, or removes them."""
    require_team(actor, membership.amap)
    if decision not in DECISIONS:
        raise ValidationError(_("Décision inconnue."))
    if decision == "accept":
        membership_activate(membership=membership, actor=actor)
        subject = _("Bienvenue à %(amap)s") % {"amap": membership.amap.name}
        body = _("Votre demande est acceptée : vous êtes membre de %(amap)s.\n\n%(url)s\n")
    elif decision == "wait":
        membership.status, membership.decided_by = Membership.Status.WAITING, actor
        membership.save()
        subject = _("Liste d'attente — %(amap)s") % {"amap": membership.amap.name}
        body = _("%(amap)s est complète pour l'instant : vous êtes sur sa liste d'attente.\n\n%(url)s\n")
    else:
        membership.status, membership.decided_by = Membership.Status.LEFT, actor
        membership.save()
        return membership
    url = site_url(reverse("directory:amap_detail", args=[membership.amap_id]))
    send_mail(subject, body % {"amap": membership.amap.name, "url": url}, None, [membership.email])
    return membership


# --------------------------------------------------------------------------------------------
# Invitations


def invitation_token(membership: Membership) -> str:
    return signing.dumps({"m": membership.pk, "e": membership.email.lower()}, salt=INVITATION_SALT, compress=True)


def invitation_membership(token: str) -> Membership | None:
    """The membership an invitation link names, or None (bad, expired or already used by someone else)."""
    try:
        data = signing.loads(token, salt=INVITATION_SALT, max_age=INVITATION_MAX_AGE)
    except signing.BadSignature:
        return None
    membership = Membership.objects.select_related("amap").filter(pk=data.get("m")).first()
    if membership is None or membership.email.lower() != data.get("e"):
        return None
    return membership


@transaction.atomic
def membership_invite(*, actor, amap: Amap, emails: list[str]) -> list[Membership]:
    """Invite people by e-mail: each gets a signed link; following it makes them a member directly."""
    require_team(actor, amap)
    cleaned = []
    for raw in emails:
        email = raw.strip()
        if not email:
            continue
        try:
            validate_email(email)
        except ValidationError as error:
            raise ValidationError(_("Adresse e-mail invalide : %(email)s") % {"email": email}) from error
        cleaned.append(email)
    if not cleaned:
        raise ValidationError(_("Indiquez au moins une adresse e-mail."))
    if len(cleaned) > 500:
        raise ValidationError(_("500 invitations au plus à la fois."))
    invited = []
    for email in dict.fromkeys(cleaned):
        membership = Membership.objects.filter(amap=amap, email__iexact=email).first()
        if membership is None:
            membership = Membership.objects.create(
                amap=amap, email=email, status=Membership.Status.INVITED, source=Membership.Source.INVITATION
            )
        elif membership.status == Membership.Status.ACTIVE:
            continue
        elif membership.status == Membership.Status.LEFT:
            membership.status = Membership.Status.INVITED
            membership.save(update_fields=["status", "updated_at"])
        url = site_url(reverse("members:invitation_accept", args=[invitation_token(membership)]))
        body = _(
            "%(actor)s vous invite à rejoindre %(amap)s sur AMAP Atlas.\n\nSuivez ce lien (valable un mois) pour "
            "accepter ; vous pourrez créer votre compte en chemin :\n%(url)s\n"
        ) % {"actor": str(actor), "amap": amap.name, "url": url}
        send_mail(_("Invitation à rejoindre %(amap)s") % {"amap": amap.name}, body, None, [membership.email])
        invited.append(membership)
    return invited


@transaction.atomic
def invitation_accept(*, user, membership: Membership) -> Membership:
    if Membership.objects.filter(amap_id=membership.amap_id, user=user).exclude(pk=membership.pk).exists():
        other = Membership.objects.get(amap_id=membership.amap_id, user=user)
        return membership_activate(membership=other)
    if membership.user_id not in (None, user.pk):
        raise PermissionDenied(_("Cette invitation a déjà été acceptée par un autre compte."))
    if not membership.first_name and not membership.last_name:
        membership.first_name, membership.last_name = _names(user)
    return membership_activate(membership=membership, user=user)


# --------------------------------------------------------------------------------------------
# Adhésions


def _money(value, *, field_name: str) -> Decimal:
    try:
        amount = Decimal(str(value).replace(",", ".").strip())
    except (InvalidOperation, ValueError) as error:
        raise ValidationError({field_name: [_("Indiquez un montant en euros.")]}) from error
    if not amount.is_finite() or amount < 0 or amount > Decimal("99999"):
        raise ValidationError({field_name: [_("Indiquez un montant en euros.")]})
    return amount.quantize(Decimal("0.01"))


@transaction.atomic
def season_create(*, actor, amap: Amap, tiers: list[tuple[str, Decimal]] | None = None, **fields) -> AdhesionSeason:
    """A season of adhésion; a sliding scale needs at least two tiers."""
    if not selectors.is_admin(actor, amap):
        raise PermissionDenied(_("Réservé aux administrateur·rices de l'AMAP."))
    season = AdhesionSeason(amap=amap, **fields)
    season.full_clean()
    tiers = tiers or []
    if season.fee_kind == AdhesionSeason.FeeKind.SLIDING and len(tiers) < 2:
        raise ValidationError({"tiers": [_("Un barème compte au moins deux tranches.")]})
    season.save()
    for position, (label, amount) in enumerate(tiers if season.fee_kind == AdhesionSeason.FeeKind.SLIDING else []):
        AdhesionTier.objects.create(season=season, label=label, amount=amount, position=position)
    return season


@transaction.atomic
def adhesion_create(
    *, user, membership: Membership, season: AdhesionSeason, payment_mode: str, tier_id=None, amount=None
) -> Adhesion:
    """The member's adhésion of the season, at the fee the season sets; the team marks it paid."""
    if membership.user_id != user.pk or membership.status != Membership.Status.ACTIVE:
        raise PermissionDenied(_("Seul·es les membres de l'AMAP adhèrent."))
    if season.amap_id != membership.amap_id:
        raise ValidationError(_("Cette saison est celle d'une autre AMAP."))
    if payment_mode not in PaymentMode.values:
        raise ValidationError({"payment_mode": [_("Choisissez un mode de paiement.")]})
    tier = None
    if season.fee_kind == AdhesionSeason.FeeKind.FIXED:
        fee = season.amount
    elif season.fee_kind == AdhesionSeason.FeeKind.SLIDING:
        tier = season.tiers.filter(pk=tier_id).first() if str(tier_id or "").isdigit() else None
        if tier is None:
            raise ValidationError({"tier": [_("Choisissez votre tranche du barème.")]})
        fee = tier.amount
    else:
        fee = _money(amount if amount not in (None, "") else season.amount, field_name="amount")
        if fee < season.amount:
            raise ValidationError({"amount": [_("Le minimum est de %(min)s €.") % {"min": season.amount}]})
    adhesion = Adhesion.objects.filter(membership=membership, season=season).first()
    if adhesion is not None:
        if adhesion.status == Adhesion.Status.PAID:
            raise ValidationError(_("Votre adhésion de cette saison est déjà réglée."))
        adhesion.tier, adhesion.amount, adhesion.payment_mode = tier, fee, payment_mode
        adhesion.save()
        return adhesion
    return Adhesion.objects.create(
        membership=membership, season=season, tier=tier, amount=fee, payment_mode=payment_mode
    )


@transaction.atomic
def adhesion_mark(*, actor, adhesion: Adhesion, paid: bool) -> Adhesion:
    """The team marks an adhésion paid (it gets a receipt number) or back to unpaid."""
    adhesion = Adhesion.objects.select_for_update().select_related("membership__amap", "season").get(pk=adhesion.pk)
    require_team(actor, adhesion.membership.amap)
    adhesion.marked_by = actor
    if paid:
        adhesion.status, adhesion.paid_at = Adhesion.Status.PAID, adhesion.paid_at or timezone.now()
        if not adhesion.receipt_number:
            adhesion.receipt_number = f"ADH-{adhesion.membership.amap_id}-{adhesion.season_id}-{adhesion.pk}"
    else:
        adhesion.status, adhesion.paid_at = Adhesion.Status.UNPAID, None
    adhesion.save()
    return adhesion


REMINDER_EVERY_DAYS = 14
REMINDERS_MAX = 3


def adhesions_remind_unpaid(*, now=None) -> int:
    """E-mail members whose adhésion of a running season is unpaid: every two weeks, three times at most."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    since = now - timezone.timedelta(days=REMINDER_EVERY_DAYS)
    due = (
        Adhesion.objects.filter(
            status=Adhesion.Status.UNPAID,
            season__starts_on__lte=today,
            season__ends_on__gte=today,
            membership__status=Membership.Status.ACTIVE,
            reminders_sent__lt=REMINDERS_MAX,
            created_at__lte=since,
        )
        .exclude(reminded_at__gt=since)
        .select_related("membership__amap", "season")
    )
    sent = 0
    for adhesion_id in due.values_list("pk", flat=True):
        with transaction.atomic():
            adhesion = due.select_for_update(skip_locked=True, of=("self",)).filter(pk=adhesion_id).first()
            if adhesion is None:
                continue
            amap = adhesion.membership.amap
            body = _(
                "Bonjour,\n\nvotre adhésion %(season)s à %(amap)s (%(amount)s €, %(mode)s) n'est pas encore "
                "réglée. Si c'est fait, l'équipe la marquera bientôt comme reçue.\n\n%(url)s\n"
            ) % {
                "season": adhesion.season.label,
                "amap": amap.name,
                "amount": adhesion.amount,
                "mode": adhesion.get_payment_mode_display(),
                "url": site_url(reverse("accounts:dashboard")),
            }
            send_mail(_("Adhésion à régler — %(amap)s") % {"amap": amap.name}, body, None, [adhesion.membership.email])
            adhesion.reminders_sent += 1
            adhesion.reminded_at = now
            adhesion.save(update_fields=["reminders_sent", "reminded_at"])
            sent += 1
    return sent


# --------------------------------------------------------------------------------------------
# Messages


def unsubscribe_token(membership_id: int) -> str:
    return signing.dumps({"m": membership_id}, salt=UNSUBSCRIBE_SALT)


def unsubscribe_membership(token: str) -> Membership | None:
    try:
        data = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    except signing.BadSignature:
        return None
    return Membership.objects.select_related("amap").filter(pk=data.get("m")).first()


def news_unsubscribe(*, membership: Membership) -> None:
    membership.news_opt_out = True
    membership.save(update_fields=["news_opt_out", "updated_at"])


@transaction.atomic
def message_create(
    *, actor, amap: Amap, audience_key: str, param: str = "", kind: str = Message.Kind.NEWS, subject: str, body: str
) -> Message:
    """Archive the message and queue its sending (one background job, in this transaction)."""
    from .tasks import message_send  # tasks import services

    require_team(actor, amap)
    chosen = audience(audience_key)
    errors: dict[str, list[str]] = {}
    if chosen is None:
        errors["audience"] = [_("Choisissez les destinataires.")]
    elif chosen.choices is not None and param not in {value for value, _label in chosen.choices(amap=amap)}:
        errors["param"] = [_("Choisissez parmi la liste.")]
    if not subject.strip():
        errors["subject"] = [_("Indiquez un objet.")]
    if not body.strip():
        errors["body"] = [_("Le message est vide.")]
    if kind not in Message.Kind.values:
        errors["kind"] = [_("Choisissez la nature du message.")]
    if errors:
        raise ValidationError(errors)
    if chosen.service:
        kind = Message.Kind.SERVICE
    label = str(chosen.label)
    if chosen.choices is not None:
        label += " : " + dict(chosen.choices(amap=amap))[param]
    message = Message(
        amap=amap,
        author=actor,
        author_name=str(actor)[:200],
        audience=audience_key,
        audience_param=param,
        audience_label=label[:300],
        kind=kind,
        subject=subject.strip(),
        body=body.strip(),
    )
    message.full_clean()
    message.save()
    message_send.defer(message_id=message.pk)
    return message


def _message_email(message: Message, delivery: MessageDelivery) -> EmailMessage:
    archive = site_url(reverse("members:message_detail", args=[message.pk]))
    footer = [
        "",
        "—",
        _("Message de %(amap)s, écrit par %(author)s.") % {"amap": message.amap.name, "author": message.author_name},
        _("Archive : %(url)s") % {"url": archive},
    ]
    headers = {}
    if message.kind == Message.Kind.NEWS and delivery.membership_id:
        unsubscribe = site_url(reverse("members:unsubscribe", args=[unsubscribe_token(delivery.membership_id)]))
        footer.append(_("Ne plus recevoir les actualités de l'AMAP : %(url)s") % {"url": unsubscribe})
        headers["List-Unsubscribe"] = f"<{unsubscribe}>"
    else:
        footer.append(_("Message de service lié à votre participation à l'AMAP (distributions, contrats)."))
    return EmailMessage(
        subject=f"[{message.amap.name}] {message.subject}",
        body=message.body + "\n" + "\n".join(footer) + "\n",
        to=[delivery.email],
        headers=headers,
    )


def message_fan_out(*, message_id: int) -> int:
    """Send the message to each recipient once, even when the job runs again after a failure.

    The recipients are written first (one row per e-mail, unique per message); each row is then
    sent and stamped in one transaction (the e-mail job is deferred in it), so a crash between
    two recipients resumes where it stopped.
    """
    message = Message.objects.select_related("amap").get(pk=message_id)
    chosen = audience(message.audience)
    recipients = chosen.recipients(amap=message.amap, param=message.audience_param) if chosen else []
    if message.kind == Message.Kind.NEWS:
        opted_out = set(Membership.objects.filter(amap=message.amap, news_opt_out=True).values_list("pk", flat=True))
        recipients = [r for r in recipients if r.membership_id not in opted_out]
    unique = {}
    for recipient in recipients:
        if recipient.email:
            unique.setdefault(recipient.email.lower(), recipient)
    MessageDelivery.objects.bulk_create(
        [
            MessageDelivery(
                message=message, email=r.email, name=r.name[:200], user_id=r.user_id, membership_id=r.membership_id
            )
            for r in unique.values()
        ],
        ignore_conflicts=True,
        batch_size=500,
    )
    sent = 0
    for delivery_id in message.deliveries.filter(sent_at__isnull=True).values_list("pk", flat=True):
        with transaction.atomic():
            delivery = (
                MessageDelivery.objects.select_for_update(skip_locked=True)
                .filter(pk=delivery_id, sent_at__isnull=True)
                .first()
            )
            if delivery is None:
                continue
            _message_email(message, delivery).send()
            delivery.sent_at = timezone.now()
            delivery.save(update_fields=["sent_at"])
            sent += 1
    Message.objects.filter(pk=message.pk).update(
        status=Message.Status.SENT, sent_at=timezone.now(), recipients=message.deliveries.count()
    )
    return sent
