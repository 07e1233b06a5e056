"""An AMAP's members: who belongs (or asked to), their yearly adhésion, and the messages the team sends.

- `Membership`: one person in one AMAP. A person with no account yet (imported, invited) is a
  membership with an e-mail and no `user`; accepting the invitation ties it to their account.
- `AdhesionSeason`: the AMAP's adhésion for one season (fixed fee, sliding scale with a few
  tiers, or free price with a minimum); `Adhesion`: one member's, with its payment.
- `Message` and `MessageDelivery`: what the team wrote and to whom it went, one row per
  recipient and message (unique), so a retried send never sends twice.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _


class MembershipQuerySet(models.QuerySet):
    def active(self):
        return self.filter(status=Membership.Status.ACTIVE)

    def of_amap(self, amap_id: int):
        return self.filter(amap_id=amap_id)


class Membership(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("demande à examiner")
        WAITING = "waiting", _("liste d'attente")
        INVITED = "invited", _("invité·e")
        ACTIVE = "active", _("membre")
        LEFT = "left", _("a quitté l'AMAP")

    class Source(models.TextChoices):
        JOIN = "join", _("demande sur le site")
        IMPORT = "import", _("import d'un tableau")
        INVITATION = "invitation", _("invitation")

    amap = models.ForeignKey(
        "directory.Amap", verbose_name=_("AMAP"), on_delete=models.CASCADE, related_name="memberships"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("compte"),
        on_delete=models.CASCADE,
        related_name="memberships",
        null=True,
        blank=True,
    )
    email = models.EmailField(_("e-mail"))
    first_name = models.CharField(_("prénom"), max_length=100, blank=True)
    last_name = models.CharField(_("nom"), max_length=100, blank=True)
    phone = models.CharField(_("téléphone"), max_length=30, blank=True)
    status = models.CharField(_("statut"), max_length=20, choices=Status.choices, default=Status.PENDING)
    source = models.CharField(_("origine"), max_length=20, choices=Source.choices, default=Source.JOIN)
    note = models.TextField(_("message de la personne"), blank=True, max_length=2000)
    # Non-service messages (news) are not sent once the person said no; service ones still are.
    news_opt_out = models.BooleanField(_("ne souhaite pas recevoir les actualités"), default=False)
    requested_at = models.DateTimeField(_("demande du"), auto_now_add=True)
    joined_at = models.DateTimeField(_("membre depuis"), null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, related_name="+", null=True, blank=True
    )
    updated_at = models.DateTimeField(auto_now=True)

    objects = MembershipQuerySet.as_manager()

    class Meta:
        verbose_name = _("membre")
        verbose_name_plural = _("membres")
        ordering = ["last_name", "first_name", "pk"]
        constraints = [
            models.UniqueConstraint(Lower("email"), "amap", name="membership_unique_email_per_amap"),
            models.UniqueConstraint(
                fields=["amap", "user"], condition=Q(user__isnull=False), name="membership_unique_user_per_amap"
            ),
        ]
        indexes = [models.Index(fields=["amap", "status"], name="membership_amap_status_idx")]

    def __str__(self) -> str:
        return self.full_name or self.email

    @property
    def full_name(self) -> str:
        name = f"{self.first_name} {self.last_name}".strip()
        if not name and self.user_id:
            return self.user.display_name
        return name


class PaymentMode(models.TextChoices):
    CHEQUE = "cheque", _("chèque")
    TRANSFER = "transfer", _("virement")
    CASH = "cash", _("espèces")
    CARD = "card", _("carte ou paiement en ligne")


class AdhesionSeason(models.Model):
    class FeeKind(models.TextChoices):
        FIXED = "fixed", _("montant fixe")
        SLIDING = "sliding", _("barème selon les revenus")
        FREE = "free", _("prix libre (avec un minimum)")

    amap = models.ForeignKey(
        "directory.Amap", verbose_name=_("AMAP"), on_delete=models.CASCADE, related_name="adhesion_seasons"
    )
    label = models.CharField(_("saison"), max_length=60, help_text=_("Par exemple « 2026-2027 »."))
    starts_on = models.DateField(_("début"))
    ends_on = models.DateField(_("fin"))
    fee_kind = models.CharField(_("cotisation"), max_length=20, choices=FeeKind.choices, default=FeeKind.FIXED)
    amount = models.DecimalField(
        _("montant (€)"),
        max_digits=7,
        decimal_places=2,
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0"))],
        help_text=_("Montant fixe, ou minimum du prix libre."),
    )
    payee = models.CharField(_("ordre des chèques / bénéficiaire"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("saison d'adhésion")
        verbose_name_plural = _("saisons d'adhésion")
        ordering = ["-starts_on", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["amap", "label"], name="adhesion_season_unique_label"),
            models.CheckConstraint(condition=Q(ends_on__gt=models.F("starts_on")), name="adhesion_season_ordered"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="adhesion_season_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.label} ({self.amap})"

    def clean(self):
        if self.starts_on and self.ends_on and self.ends_on <= self.starts_on:
            raise ValidationError({"ends_on": _("La fin de la saison doit être après son début.")})


class AdhesionTier(models.Model):
    """A step of a sliding scale: « revenus modestes : 5 € »."""

    season = models.ForeignKey(AdhesionSeason, on_delete=models.CASCADE, related_name="tiers")
    label = models.CharField(_("tranche"), max_length=120)
    amount = models.DecimalField(_("montant (€)"), max_digits=7, decimal_places=2, validators=[MinValueValidator(0)])
    position = models.PositiveSmallIntegerField(_("ordre"), default=0)

    class Meta:
        verbose_name = _("tranche du barème")
        verbose_name_plural = _("tranches du barème")
        ordering = ["position", "amount", "pk"]
        constraints = [models.CheckConstraint(condition=Q(amount__gte=0), name="adhesion_tier_amount_positive")]

    def __str__(self) -> str:
        return f"{self.label} ({self.amount} €)"


class Adhesion(models.Model):
    class Status(models.TextChoices):
        UNPAID = "unpaid", _("à régler")
        PAID = "paid", _("réglée")

    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="adhesions")
    season = models.ForeignKey(AdhesionSeason, on_delete=models.PROTECT, related_name="adhesions")
    tier = models.ForeignKey(AdhesionTier, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    amount = models.DecimalField(_("montant (€)"), max_digits=7, decimal_places=2)
    payment_mode = models.CharField(_("mode de paiement"), max_length=20, choices=PaymentMode.choices)
    status = models.CharField(_("statut"), max_length=20, choices=Status.choices, default=Status.UNPAID)
    paid_at = models.DateTimeField(_("réglée le"), null=True, blank=True)
    marked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, related_name="+", null=True, blank=True
    )
    receipt_number = models.CharField(_("n° de reçu"), max_length=40, blank=True)
    reminders_sent = models.PositiveSmallIntegerField(_("relances envoyées"), default=0)
    reminded_at = models.DateTimeField(_("dernière relance"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("adhésion")
        verbose_name_plural = _("adhésions")
        ordering = ["-created_at", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["membership", "season"], name="adhesion_unique_per_season"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="adhesion_amount_positive"),
        ]
        indexes = [models.Index(fields=["season", "status"], name="adhesion_season_status_idx")]

    def __str__(self) -> str:
        return f"{self.membership} — {self.season.label} ({self.get_status_display()})"


class Message(models.Model):
    class Kind(models.TextChoices):
        SERVICE = "service", _("message de service (distributions, contrats)")
        NEWS = "news", _("actualité de l'AMAP")

    class Status(models.TextChoices):
        QUEUED = "queued", _("en cours d'envoi")
        SENT = "sent", _("envoyé")

    amap = models.ForeignKey(
        "directory.Amap", verbose_name=_("AMAP"), on_delete=models.CASCADE, related_name="messages"
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, related_name="amap_messages", null=True, blank=True
    )
    author_name = models.CharField(_("signé"), max_length=200)
    audience = models.CharField(_("destinataires"), max_length=60)
    audience_param = models.CharField(max_length=60, blank=True)
    audience_label = models.CharField(_("destinataires"), max_length=300)
    kind = models.CharField(_("nature"), max_length=20, choices=Kind.choices, default=Kind.NEWS)
    subject = models.CharField(_("objet"), max_length=200)
    body = models.TextField(_("message"), max_length=20000)
    status = models.CharField(_("statut"), max_length=20, choices=Status.choices, default=Status.QUEUED)
    recipients = models.PositiveIntegerField(_("nombre de destinataires"), default=0)
    created_at = models.DateTimeField(_("écrit le"), auto_now_add=True)
    sent_at = models.DateTimeField(_("envoyé le"), null=True, blank=True)

    class Meta:
        verbose_name = _("message aux membres")
        verbose_name_plural = _("messages aux membres")
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return self.subject


class MessageDelivery(models.Model):
    """One recipient of one message: the unique row that makes each recipient get it once."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="deliveries")
    email = models.EmailField()
    name = models.CharField(max_length=200, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    membership = models.ForeignKey(Membership, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("envoi")
        verbose_name_plural = _("envois")
        constraints = [models.UniqueConstraint(fields=["message", "email"], name="message_delivery_unique_recipient")]

    def __str__(self) -> str:
        return f"{self.message_id} → {self.email}"
