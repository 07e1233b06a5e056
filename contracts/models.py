"""Contracts between an AMAP's members and a farm: templates, calendars, subscriptions,
signatures with their evidence, deliveries.

Vocabulary:
- `Contract` is the contract *template* a référent sets up for one AMAP ↔ farm partnership
  and one season (calendar, products and prices, capacity, payment schedule);
- `Subscription` is one member's contract under that template: their quantities, their
  signatures, their PDF. Signed subscriptions are immutable: an amendment is a new
  `Subscription` version pointing to the one it replaces;
- `Delivery` is one date of the contract's calendar; `SubscriptionItem` says what a
  subscription takes on that date. Every figure (totals, instalments, summaries,
  distribution sheets) is a sum of items, so they always agree.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from directory.models import Weekday

MAX_SEASON_DAYS = 731  # two years: a longer "season" is a typing error
MAX_INSTALMENTS = 12
MAX_CAPACITY_SHARES = 100_000
MAX_TEXT_LENGTH = 20_000  # a contract's presentation and commitments
MAX_PRODUCT_QUANTITY = 1000


class HouseMessagesMixin:
    """Field errors in the words people read on this site, looked up by (field, code) then by code.

    Django's generic messages stay for any error not listed in `FIELD_MESSAGES`.
    """

    FIELD_MESSAGES: dict = {
        "blank": _("Ce champ est obligatoire."),
        "max_length": _("%(limit_value)s caractères au plus."),
    }

    def clean_fields(self, exclude=None):
        try:
            super().clean_fields(exclude=exclude)
        except ValidationError as error:
            raise ValidationError(
                {
                    name: list(dict.fromkeys(self._house_message(name, item) for item in errors))
                    for name, errors in error.error_dict.items()
                }
            ) from None

    def _house_message(self, name: str, error: ValidationError) -> str:
        message = self.FIELD_MESSAGES.get((name, error.code), self.FIELD_MESSAGES.get(error.code))
        if message is None:
            return error.messages[0]
        if callable(message):
            return message(self)
        return str(message) % (error.params or {})


class Charter(models.Model):
    """A version of the Charte des AMAP, accepted by both parties before they sign."""

    version = models.CharField(_("version"), max_length=40, unique=True)
    title = models.CharField(_("titre"), max_length=200)
    text = models.TextField(_("texte"))
    text_sha256 = models.CharField(_("empreinte SHA-256 du texte"), max_length=64, editable=False)
    published_on = models.DateField(_("date de publication"))
    is_current = models.BooleanField(_("version en vigueur"), default=False)

    class Meta:
        verbose_name = _("charte")
        verbose_name_plural = _("chartes")
        ordering = ["-published_on", "-pk"]
        constraints = [
            # Only one version is offered for signature at a time.
            models.UniqueConstraint(fields=["is_current"], condition=Q(is_current=True), name="charter_one_current"),
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.version})"

    def save(self, *args, **kwargs):
        self.text_sha256 = hashlib.sha256(self.text.encode("utf-8")).hexdigest()
        super().save(*args, **kwargs)


class AcademicCalendar(models.Model):
    """A university year for student AMAPs: deliveries skip its holidays and exam periods."""

    amap = models.ForeignKey(
        "directory.Amap",
        verbose_name=_("AMAP"),
        on_delete=models.CASCADE,
        related_name="academic_calendars",
        null=True,
        blank=True,
        help_text=_("Vide : calendrier partagé (par exemple celui d'une université)."),
    )
    name = models.CharField(_("nom"), max_length=200)
    year_start = models.PositiveSmallIntegerField(_("année de rentrée"), help_text=_("2026 pour l'année 2026-2027."))
    starts_on = models.DateField(_("début de l'année universitaire"))
    ends_on = models.DateField(_("fin de l'année universitaire"))

    class Meta:
        verbose_name = _("calendrier universitaire")
        verbose_name_plural = _("calendriers universitaires")
        ordering = ["-year_start", "name", "pk"]
        constraints = [
            models.CheckConstraint(condition=Q(ends_on__gt=F("starts_on")), name="academic_calendar_ordered"),
        ]

    def __str__(self) -> str:
        return f"{self.name} {self.year_start}-{self.year_start + 1}"


class AcademicBreak(models.Model):
    """A period without deliveries in an academic calendar (dates inclusive)."""

    class Kind(models.TextChoices):
        HOLIDAYS = "holidays", _("vacances")
        EXAMS = "exams", _("examens")
        OTHER = "other", _("autre")

    calendar = models.ForeignKey(AcademicCalendar, on_delete=models.CASCADE, related_name="breaks")
    kind = models.CharField(_("type"), max_length=20, choices=Kind.choices, default=Kind.HOLIDAYS)
    label = models.CharField(_("libellé"), max_length=200, blank=True)
    starts_on = models.DateField(_("du"))
    ends_on = models.DateField(_("au (inclus)"))

    class Meta:
        verbose_name = _("période sans distribution")
        verbose_name_plural = _("périodes sans distribution")
        ordering = ["starts_on", "pk"]
        constraints = [
            models.CheckConstraint(condition=Q(ends_on__gte=F("starts_on")), name="academic_break_ordered"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.starts_on:%d/%m/%Y}–{self.ends_on:%d/%m/%Y}"


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


class ContractDocument(models.Model):
    """The exact PDF both parties sign; its SHA-256 is what the signatures bind to."""

    subscription = models.OneToOneField(Subscription, on_delete=models.PROTECT, related_name="document")
    pdf = models.BinaryField(_("PDF"))
    sha256 = models.CharField(_("empreinte SHA-256"), max_length=64, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("contrat PDF")
        verbose_name_plural = _("contrats PDF")

    def __str__(self) -> str:
        return f"PDF {self.sha256[:12]}…"


class Signature(models.Model):
    """A simple electronic signature: logged-in identity confirmed by an e-mailed one-time code."""

    class Role(models.TextChoices):
        MEMBER = "member", _("adhérent·e")
        FARMER = "farmer", _("paysan·ne")

    subscription = models.ForeignKey(Subscription, on_delete=models.PROTECT, related_name="signatures")
    role = models.CharField(_("qualité"), max_length=20, choices=Role.choices)
    signer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="signatures", null=True, blank=True
    )
    signer_name = models.CharField(_("nom du signataire"), max_length=200)
    document_sha256 = models.CharField(_("empreinte du PDF signé"), max_length=64)
    charter = models.ForeignKey(Charter, verbose_name=_("charte acceptée"), on_delete=models.PROTECT)
    consent_text = models.TextField(_("texte du consentement"))
    consent_version = models.CharField(_("version du consentement"), max_length=40)
    signed_at = models.DateTimeField(_("signé le"))
    ip_address = models.GenericIPAddressField(_("adresse IP"), null=True, blank=True)
    user_agent = models.CharField(_("navigateur"), max_length=500, blank=True)

    class Meta:
        verbose_name = _("signature")
        verbose_name_plural = _("signatures")
        ordering = ["signed_at", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["subscription", "role"], name="signature_one_per_role"),
        ]

    def __str__(self) -> str:
        return f"{self.signer_name} ({self.get_role_display()}) le {self.signed_at:%d/%m/%Y %H:%M}"


class SignatureChallenge(models.Model):
    """A one-time code sent by e-mail before a signature; only its hash is stored."""

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="challenges")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    role = models.CharField(max_length=20, choices=Signature.Role.choices)
    code_hash = models.CharField(max_length=128)
    document_sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["subscription", "user", "role"], name="challenge_lookup_idx")]

    def __str__(self) -> str:
        return f"code pour {self.get_role_display()} (souscription {self.subscription_id})"


class EvidenceEvent(models.Model):
    """One link of the hash-chained evidence trail.

    `hash = sha256(previous_hash | kind | created_at | the three ids | payload_sha256)` (see
    `contracts.evidence`), in `id` order: editing
    or deleting any row breaks the chain from there on. Retention may redact a payload (the
    personal data goes) but keeps `payload_sha256`, so the chain still verifies.
    No foreign keys: the trail outlives the rows it speaks of.
    """

    created_at = models.DateTimeField()
    kind = models.CharField(max_length=60)
    contract_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    subscription_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    actor_id = models.BigIntegerField(null=True, blank=True)
    payload = models.JSONField(default=dict)
    payload_sha256 = models.CharField(max_length=64)
    previous_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)
    redacted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("preuve")
        verbose_name_plural = _("journal de preuves")
        ordering = ["id"]

    def __str__(self) -> str:
        return f"#{self.pk} {self.kind} {self.hash[:12]}…"
