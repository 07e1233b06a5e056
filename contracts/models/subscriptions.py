"""Members' subscriptions under a contract template: the delivery dates, what each
subscription takes on each of them, and the dates a member is away."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from .base import HouseMessagesMixin
from .contracts import Contract, ContractProduct, PaymentMethod


class Delivery(HouseMessagesMixin, models.Model):
    """One date of a contract's calendar."""

    class Status(models.TextChoices):
        PLANNED = "planned", _("prévue")
        DONE = "done", _("effectuée")
        POSTPONED = "postponed", _("reportée")
        CANCELLED = "cancelled", _("annulée (aléa de production)")

    contract = models.ForeignKey(Contract, on_delete=models.CASCADE, related_name="deliveries")
    scheduled_date = models.DateField(_("date prévue au calendrier"))
    date = models.DateField(_("date de distribution"))
    status = models.CharField(_("statut"), max_length=20, choices=Status.choices, default=Status.PLANNED)
    note = models.CharField(_("motif / remarque"), max_length=300, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("distribution")
        verbose_name_plural = _("distributions")
        ordering = ["date", "pk"]
        indexes = [models.Index(fields=["contract", "date"], name="delivery_contract_date_idx")]
        constraints = [
            models.UniqueConstraint(fields=["contract", "scheduled_date"], name="delivery_unique_scheduled_date"),
        ]

    def __str__(self) -> str:
        return f"{self.date:%d/%m/%Y} ({self.get_status_display()})"

    @property
    def counts(self) -> bool:
        """Cancelled deliveries are neither delivered nor paid."""
        return self.status != self.Status.CANCELLED


class SubscriptionQuerySet(models.QuerySet):
    def holding_shares(self):
        """Subscriptions that take a share of the capacity."""
        return self.filter(status__in=Subscription.HOLDING_STATUSES)

    def waiting(self):
        return self.filter(status=Subscription.Status.WAITING).order_by("waiting_since", "pk")


class Subscription(models.Model):
    """One member's contract under a template: quantities, signatures, the signed PDF."""

    class Status(models.TextChoices):
        WAITING = "waiting", _("liste d'attente")
        PENDING = "pending", _("à signer")
        MEMBER_SIGNED = "member_signed", _("signé par l'adhérent·e, en attente du paysan")
        SIGNED = "signed", _("signé")
        CANCELLED = "cancelled", _("annulé")
        SUPERSEDED = "superseded", _("remplacé par un avenant")

    class Pattern(models.TextChoices):
        SAME = "same", _("les mêmes quantités à chaque distribution")
        ALTERNATE = "alternate", _("une distribution sur deux")
        VARYING = "varying", _("des quantités différentes selon les distributions")

    HOLDING_STATUSES = (Status.PENDING, Status.MEMBER_SIGNED, Status.SIGNED)
    FROZEN_STATUSES = (Status.MEMBER_SIGNED, Status.SIGNED, Status.SUPERSEDED)

    contract = models.ForeignKey(
        Contract, verbose_name=_("contrat"), on_delete=models.PROTECT, related_name="subscriptions"
    )
    # Null once the member's retention period is over (the farmer's copy is kept longer).
    member = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("adhérent·e"),
        on_delete=models.PROTECT,
        related_name="subscriptions",
        null=True,
        blank=True,
    )
    member_name = models.CharField(_("nom de l'adhérent·e"), max_length=200)
    status = models.CharField(_("statut"), max_length=20, choices=Status.choices, default=Status.PENDING)
    shares = models.PositiveSmallIntegerField(_("parts"), default=1, validators=[MinValueValidator(1)])
    pattern = models.CharField(_("rythme"), max_length=20, choices=Pattern.choices, default=Pattern.SAME)
    instalments = models.PositiveSmallIntegerField(_("nombre de versements"), default=1)
    payment_method = models.CharField(
        _("moyen de paiement"), max_length=20, choices=PaymentMethod.choices, default=PaymentMethod.CHEQUE
    )
    waiting_since = models.DateTimeField(_("en liste d'attente depuis"), null=True, blank=True)
    version = models.PositiveSmallIntegerField(_("version"), default=1)
    previous = models.OneToOneField(
        "self",
        verbose_name=_("version remplacée"),
        on_delete=models.PROTECT,
        related_name="next_version",
        null=True,
        blank=True,
    )
    signed_at = models.DateTimeField(_("signé le"), null=True, blank=True)
    cancelled_at = models.DateTimeField(_("annulé le"), null=True, blank=True)
    legal_hold = models.BooleanField(_("conservation pour litige"), default=False)
    member_anonymised_at = models.DateTimeField(_("adhérent·e anonymisé·e le"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = SubscriptionQuerySet.as_manager()

    class Meta:
        verbose_name = _("souscription")
        verbose_name_plural = _("souscriptions")
        ordering = ["contract", "member_name", "pk"]
        indexes = [models.Index(fields=["contract", "status"], name="subscription_status_idx")]
        constraints = [
            # One live subscription per member and contract (older versions are superseded or cancelled).
            # Amendments (`previous` set) are left out: a pending amendment lives beside the signed
            # version it replaces until it is signed; `previous` being one-to-one, a version has one.
            models.UniqueConstraint(
                fields=["contract", "member"],
                condition=Q(status__in=["waiting", "pending", "member_signed", "signed"], previous__isnull=True),
                name="subscription_one_live_per_member",
            ),
            models.CheckConstraint(condition=Q(instalments__gte=1), name="subscription_instalments_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.member_name} — {self.contract.title} (v{self.version})"

    @property
    def is_frozen(self) -> bool:
        """Signed (even by one party) or replaced: never edited again, only amended."""
        return self.status in self.FROZEN_STATUSES


class SubscriptionItem(models.Model):
    """What a subscription takes on one delivery: a quantity of one product at its unit price."""

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="items")
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="items")
    product = models.ForeignKey(ContractProduct, on_delete=models.PROTECT, related_name="items")
    quantity = models.PositiveSmallIntegerField(_("quantité"), validators=[MinValueValidator(1)])
    unit_price = models.DecimalField(_("prix unitaire (€)"), max_digits=8, decimal_places=2)

    class Meta:
        verbose_name = _("quantité livrée")
        verbose_name_plural = _("quantités livrées")
        ordering = ["delivery", "product", "pk"]
        indexes = [models.Index(fields=["delivery", "product"], name="item_delivery_product_idx")]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "delivery", "product"], name="item_unique_subscription_delivery_product"
            ),
            models.CheckConstraint(condition=Q(quantity__gte=1), name="item_quantity_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.product.name} le {self.delivery.date:%d/%m/%Y}"


class Absence(HouseMessagesMixin, models.Model):
    """A member away on a delivery date; someone else may collect the share."""

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="absences")
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="absences")
    substitute_name = models.CharField(_("remplaçant·e"), max_length=200, blank=True)
    note = models.CharField(_("remarque"), max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("absence")
        verbose_name_plural = _("absences")
        constraints = [
            models.UniqueConstraint(fields=["subscription", "delivery"], name="absence_unique_per_delivery"),
        ]

    def __str__(self) -> str:
        return f"{self.subscription.member_name} absent·e le {self.delivery.date:%d/%m/%Y}"
