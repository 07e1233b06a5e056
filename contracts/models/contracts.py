"""The contract template of one AMAP ↔ farm partnership and one season: its calendar
exceptions, its products and prices, the payment methods it offers."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from directory.models import Weekday

from .academic import AcademicCalendar
from .base import MAX_CAPACITY_SHARES, MAX_INSTALMENTS, MAX_SEASON_DAYS, MAX_TEXT_LENGTH, HouseMessagesMixin


class PaymentMethod(models.TextChoices):
    CHEQUE = "cheque", _("chèques")
    TRANSFER = "transfer", _("virement")
    CASH = "cash", _("espèces")


class ContractQuerySet(models.QuerySet):
    def open_for_subscription(self):
        return self.filter(status=Contract.Status.OPEN)

    def of_amap(self, amap_id: int):
        return self.filter(amap_id=amap_id)


class Contract(HouseMessagesMixin, models.Model):
    """The contract template of one AMAP ↔ farm partnership for one season."""

    # What a référent sets on a draft contract (besides products and calendar exceptions): the
    # one list forms, serializers and services share.
    EDITABLE_FIELDS = (
        "title",
        "description",
        "commitments",
        "season_start",
        "season_end",
        "weekday",
        "frequency",
        "exclude_public_holidays",
        "delivery_place",
        "delivery_start",
        "delivery_end",
        "capacity_shares",
        "instalments_max",
        "payment_methods",
        "payment_payee",
        "subscription_deadline",
        "requires_membership",
        # Relations: chosen among the AMAP's calendars, team and partnerships.
        "academic_calendar",
        "referent",
        "partnership",
    )
    EDITABLE_RELATIONS = ("academic_calendar", "referent", "partnership")
    # Once members may have subscribed, only these may change (capacity upwards only; a new référent
    # takes over the running of the contract, what members signed stays as it is).
    OPEN_EDITABLE_FIELDS = ("description", "commitments", "capacity_shares", "referent")

    FIELD_MESSAGES = {
        **HouseMessagesMixin.FIELD_MESSAGES,
        ("weekday", "invalid_choice"): _("Les jours vont de 1 (lundi) à 7 (dimanche)."),
        ("frequency", "invalid_choice"): _(
            "Fréquence inconnue : choisissez chaque semaine, toutes les deux semaines ou chaque mois."
        ),
        ("capacity_shares", "min_value"): _("Il faut au moins une part."),
        ("weekday", "min_value"): _("Les jours vont de 1 (lundi) à 7 (dimanche)."),
        ("weekday", "max_value"): _("Les jours vont de 1 (lundi) à 7 (dimanche)."),
        ("capacity_shares", "max_value"): _("100 000 parts au plus."),
        ("instalments_max", "min_value"): lambda contract: _("De 1 à %(max)s versements.") % {"max": MAX_INSTALMENTS},
        ("payment_methods", "blank"): _("Proposez au moins un moyen de paiement."),
        ("payment_methods", "item_invalid"): lambda contract: (
            _("Moyen de paiement inconnu : %(value)s.")
            % {"value": ", ".join(str(m) for m in contract.payment_methods if m not in PaymentMethod.values)}
        ),
    }

    class Status(models.TextChoices):
        DRAFT = "draft", _("brouillon")
        OPEN = "open", _("ouvert aux souscriptions")
        CLOSED = "closed", _("souscriptions closes")
        ARCHIVED = "archived", _("archivé")

    class Frequency(models.TextChoices):
        WEEKLY = "weekly", _("chaque semaine")
        FORTNIGHTLY = "fortnightly", _("toutes les deux semaines")
        MONTHLY = "monthly", _("chaque mois")

    amap = models.ForeignKey(
        "directory.Amap", verbose_name=_("AMAP"), on_delete=models.PROTECT, related_name="contracts"
    )
    farm = models.ForeignKey(
        "directory.Farm", verbose_name=_("ferme"), on_delete=models.PROTECT, related_name="contracts"
    )
    partnership = models.ForeignKey(
        "directory.Partnership",
        verbose_name=_("partenariat"),
        on_delete=models.SET_NULL,
        related_name="contracts",
        null=True,
        blank=True,
    )
    title = models.CharField(_("intitulé"), max_length=200, help_text=_("Par exemple « Légumes saison 2027 »."))
    description = models.TextField(_("présentation"), blank=True)
    commitments = models.TextField(
        _("engagements particuliers"),
        blank=True,
        help_text=_("Ce que chaque partie s'engage à faire en plus de la charte (apparaît dans le contrat signé)."),
    )

    season_start = models.DateField(_("début de la saison"))
    season_end = models.DateField(_("fin de la saison"))
    weekday = models.PositiveSmallIntegerField(_("jour de distribution"), choices=Weekday.choices)
    frequency = models.CharField(_("fréquence"), max_length=20, choices=Frequency.choices, default=Frequency.WEEKLY)
    exclude_public_holidays = models.BooleanField(_("pas de distribution les jours fériés"), default=True)
    academic_calendar = models.ForeignKey(
        AcademicCalendar,
        verbose_name=_("calendrier universitaire"),
        on_delete=models.PROTECT,
        related_name="contracts",
        null=True,
        blank=True,
    )
    delivery_start = models.TimeField(_("début de distribution"), null=True, blank=True)
    delivery_end = models.TimeField(_("fin de distribution"), null=True, blank=True)
    delivery_place = models.CharField(_("lieu de distribution"), max_length=300, blank=True)

    capacity_shares = models.PositiveIntegerField(
        _("nombre de parts"), validators=[MinValueValidator(1)], help_text=_("Au-delà, liste d'attente.")
    )
    instalments_max = models.PositiveSmallIntegerField(
        _("nombre maximal de versements"), default=1, validators=[MinValueValidator(1)]
    )
    payment_methods = ArrayField(
        models.CharField(max_length=20, choices=PaymentMethod.choices),
        verbose_name=_("moyens de paiement"),
        default=list,
    )
    payment_payee = models.CharField(_("ordre des chèques / bénéficiaire"), max_length=200, blank=True)
    subscription_deadline = models.DateField(_("date limite de souscription"), null=True, blank=True)
    # Checked through contracts.gates (the members app registers the check): an AMAP may ask for a
    # paid adhésion of the season before anyone subscribes.
    requires_membership = models.BooleanField(
        _("adhésion à l'AMAP obligatoire"),
        default=False,
        help_text=_("Seules les personnes dont l'adhésion de la saison est réglée peuvent souscrire."),
    )

    referent = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("référent·e"),
        on_delete=models.PROTECT,
        related_name="contracts_as_referent",
    )
    status = models.CharField(_("statut"), max_length=20, choices=Status.choices, default=Status.DRAFT)
    version = models.PositiveSmallIntegerField(_("version"), default=1)
    previous = models.ForeignKey(
        "self",
        verbose_name=_("version précédente"),
        on_delete=models.PROTECT,
        related_name="amendments",
        null=True,
        blank=True,
    )
    legal_hold = models.BooleanField(_("conservation pour litige"), default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, related_name="+", null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ContractQuerySet.as_manager()

    class Meta:
        verbose_name = _("contrat")
        verbose_name_plural = _("contrats")
        ordering = ["-season_start", "title", "pk"]
        indexes = [models.Index(fields=["amap", "status"], name="contract_amap_status_idx")]
        constraints = [
            models.CheckConstraint(condition=Q(season_end__gt=F("season_start")), name="contract_season_ordered"),
            models.CheckConstraint(condition=Q(capacity_shares__gte=1), name="contract_capacity_positive"),
            models.CheckConstraint(condition=Q(instalments_max__gte=1), name="contract_instalments_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.title} — {self.amap} / {self.farm}"

    def clean(self):
        """Rules across fields and limits the columns do not state, with the messages people read."""
        errors: dict[str, str] = {}
        for name in ("description", "commitments"):
            if len(getattr(self, name) or "") > MAX_TEXT_LENGTH:
                errors[name] = _("%(limit_value)s caractères au plus.") % {"limit_value": MAX_TEXT_LENGTH}
        if isinstance(self.capacity_shares, int) and MAX_CAPACITY_SHARES < self.capacity_shares <= 2**31 - 1:
            errors["capacity_shares"] = _("100 000 parts au plus.")
        if isinstance(self.instalments_max, int) and self.instalments_max > MAX_INSTALMENTS:
            errors["instalments_max"] = _("De 1 à %(max)s versements.") % {"max": MAX_INSTALMENTS}
        start, end = self.season_start, self.season_end
        if start and end:
            if end <= start:
                errors["season_end"] = _("La fin de la saison doit être après son début.")
            elif (end - start).days > MAX_SEASON_DAYS:
                errors["season_end"] = _("Une saison dure deux ans au plus.")
            if self.subscription_deadline and self.subscription_deadline > end:
                errors["subscription_deadline"] = _("La date limite de souscription est après la fin de la saison.")
        if self.delivery_start and self.delivery_end and self.delivery_end <= self.delivery_start:
            errors["delivery_end"] = _("La distribution doit finir après son début.")
        academic = self.academic_calendar
        if academic is not None and academic.amap_id not in (None, self.amap_id):
            errors["academic_calendar"] = _("Ce calendrier universitaire est celui d'une autre AMAP.")
        partnership = self.partnership
        if partnership is not None and (partnership.amap_id != self.amap_id or partnership.farm_id != self.farm_id):
            errors["partnership"] = _("Ce partenariat ne lie pas cette AMAP à cette ferme.")
        if self.amap_id is None:
            pass  # the field's own error says it
        elif self.referent_id is None or not self.amap.manager_roles.filter(user_id=self.referent_id).exists():
            errors["referent"] = _("Le ou la référent·e doit faire partie de l'équipe de l'AMAP.")
        if errors:
            raise ValidationError(errors)


class CalendarException(models.Model):
    """A date taken out of a contract's calendar (farm closure or a date the AMAP chose)."""

    class Kind(models.TextChoices):
        FARM_CLOSURE = "farm_closure", _("fermeture de la ferme")
        CHOSEN = "chosen", _("date retirée par l'AMAP")

    contract = models.ForeignKey(Contract, on_delete=models.CASCADE, related_name="exceptions")
    date = models.DateField(_("date"))
    kind = models.CharField(_("motif"), max_length=20, choices=Kind.choices, default=Kind.CHOSEN)
    label = models.CharField(_("précision"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("date sans distribution")
        verbose_name_plural = _("dates sans distribution")
        ordering = ["date"]
        constraints = [models.UniqueConstraint(fields=["contract", "date"], name="calendar_exception_unique_date")]

    def __str__(self) -> str:
        return f"{self.date:%d/%m/%Y} ({self.get_kind_display()})"


class ContractProduct(models.Model):
    """An option of the contract with its unit price: « petit panier », « 6 œufs »…"""

    contract = models.ForeignKey(Contract, on_delete=models.CASCADE, related_name="products")
    name = models.CharField(_("produit"), max_length=120)
    category = models.ForeignKey(
        "directory.ProductCategory",
        verbose_name=_("catégorie"),
        on_delete=models.PROTECT,
        related_name="contract_products",
        null=True,
        blank=True,
    )
    unit_price = models.DecimalField(_("prix unitaire (€)"), max_digits=8, decimal_places=2)
    max_quantity = models.PositiveSmallIntegerField(_("quantité maximale par distribution"), default=10)
    position = models.PositiveSmallIntegerField(_("ordre"), default=0)

    class Meta:
        verbose_name = _("produit du contrat")
        verbose_name_plural = _("produits du contrat")
        ordering = ["position", "pk"]
        constraints = [
            models.CheckConstraint(condition=Q(unit_price__gt=0), name="contract_product_price_positive"),
            models.UniqueConstraint(fields=["contract", "name"], name="contract_product_unique_name"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.unit_price} €)"
