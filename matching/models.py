"""Annonces ("Paysan cherche AMAP" / "AMAP cherche paysan"), their matches, alerts and contact threads."""

import datetime

from django.conf import settings
from django.contrib.gis.db import models
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GistIndex
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from directory.models import Weekday

ANNONCE_DEFAULT_LIFETIME_DAYS = 90


def default_expiry() -> datetime.date:
    return timezone.localdate() + datetime.timedelta(days=ANNONCE_DEFAULT_LIFETIME_DAYS)


class AnnonceQuerySet(models.QuerySet):
    def live(self):
        """Open and not past its expiry date (expiry applies even before `annonce_expire_due` runs)."""
        return self.filter(status=Annonce.Status.OPEN, expires_on__gte=timezone.localdate())

    def of_kind(self, kind: str):
        return self.filter(kind=kind)

    def in_department(self, code: str):
        return self.filter(commune__department_id=code)

    def for_products(self, product_slugs: list[str]):
        return self.filter(products__slug__in=product_slugs).distinct()


class Annonce(models.Model):
    class Kind(models.TextChoices):
        FARM_SEEKS_AMAP = "paysan_cherche_amap", _("Paysan cherche AMAP")
        AMAP_SEEKS_FARM = "amap_cherche_paysan", _("AMAP cherche paysan")

    class Status(models.TextChoices):
        OPEN = "open", _("ouverte")
        PAUSED = "paused", _("en pause")
        FULFILLED = "fulfilled", _("pourvue")
        EXPIRED = "expired", _("expirée")

    kind = models.CharField(_("type d'annonce"), max_length=30, choices=Kind.choices)
    farm = models.ForeignKey(
        "directory.Farm",
        verbose_name=_("ferme"),
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="annonces",
    )
    amap = models.ForeignKey(
        "directory.Amap",
        verbose_name=_("AMAP"),
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="annonces",
    )
    title = models.CharField(_("titre"), max_length=200, blank=True)
    products = models.ManyToManyField("directory.ProductCategory", verbose_name=_("produits"), related_name="annonces")
    # Farm: shares it can supply. AMAP: members interested.
    shares = models.PositiveIntegerField(_("nombre de parts"), null=True, blank=True)
    delivery_weekdays = ArrayField(
        models.PositiveSmallIntegerField(choices=Weekday.choices),
        verbose_name=_("jours de livraison"),
        default=list,
        blank=True,
        help_text=_("vide : n'importe quel jour"),
    )
    # Farm: how far it will drive. AMAP: how far the farm may come from.
    radius_km = models.PositiveSmallIntegerField(
        _("distance maximale (km)"), default=30, validators=[MinValueValidator(1), MaxValueValidator(300)]
    )
    # Farm annonce: the farm's exact (private) point, never shown nor measured from; AMAP annonce:
    # the delivery place (the AMAP's by default), public. Matching measures from `public_location`
    # (the farm's masked point) so that no distance, order or sentence reveals a farmhouse.
    location = models.PointField(_("lieu"), geography=True, srid=4326)  # WGS84, metres in lookups
    public_location = models.PointField(_("lieu affiché"), geography=True, srid=4326)  # WGS84, metres in lookups
    delivery_place = models.CharField(_("lieu de livraison"), max_length=300, blank=True)
    commune = models.ForeignKey(
        "geo.Commune",
        verbose_name=_("commune"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="annonces",
    )
    start_date = models.DateField(_("à partir du"), null=True, blank=True)
    description = models.TextField(_("présentation"), blank=True)
    status = models.CharField(_("statut"), max_length=20, choices=Status.choices, default=Status.OPEN)
    expires_on = models.DateField(_("expire le"), default=default_expiry)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("publiée par"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="annonces",
    )
    moderation_note = models.CharField(_("note de modération"), max_length=300, blank=True)
    moderated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("modérée par"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="moderated_annonces",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = AnnonceQuerySet.as_manager()

    class Meta:
        verbose_name = _("annonce")
        verbose_name_plural = _("annonces")
        ordering = ["-created_at", "-pk"]
        indexes = [
            GistIndex(fields=["location"], name="annonce_location_gist"),
            models.Index(fields=["status", "kind", "expires_on"], name="annonce_status_kind_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind="paysan_cherche_amap", farm__isnull=False, amap__isnull=True)
                | Q(kind="amap_cherche_paysan", amap__isnull=False, farm__isnull=True),
                name="annonce_owner_matches_kind",
            ),
        ]

    def __str__(self) -> str:
        return self.title or f"{self.get_kind_display()} — {self.owner}"

    @property
    def owner(self):
        """The farm or AMAP that publishes the annonce."""
        return self.farm if self.kind == self.Kind.FARM_SEEKS_AMAP else self.amap

    @property
    def is_farm_annonce(self) -> bool:
        return self.kind == self.Kind.FARM_SEEKS_AMAP

    def weekday_names(self) -> list[str]:
        return [str(Weekday(day).label) for day in sorted(self.delivery_weekdays or [])]

    @property
    def effective_status(self) -> str:
        """The status a visitor sees: an open annonce past its date is expired."""
        if self.status == self.Status.OPEN and self.expires_on < timezone.localdate():
            return self.Status.EXPIRED
        return self.status

    def get_effective_status_display(self) -> str:
        return str(self.Status(self.effective_status).label)

    def get_absolute_url(self) -> str:
        from django.urls import reverse

        return reverse("matching:annonce_detail", args=[self.pk])


class Match(models.Model):
    """A stored, ranked counterpart of an annonce (written by `match_all`).

    Matches are derived data, rebuilt by every `match_all`: a million rows are written at a
    time, so the table carries no database-level foreign keys and only the indexes it is read
    by (measured at 700k rows: FK checks and per-FK indexes tripled the write time). Django
    still applies `on_delete` when an annonce, AMAP or farm is deleted through the ORM.
    """

    # Indexed by the unique constraint below (annonce first).
    annonce = models.ForeignKey(
        Annonce, on_delete=models.CASCADE, related_name="matches", db_index=False, db_constraint=False
    )
    amap = models.ForeignKey(
        "directory.Amap",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="counterpart_matches",
        db_index=False,
        db_constraint=False,
    )
    farm = models.ForeignKey(
        "directory.Farm",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="counterpart_matches",
        db_index=False,
        db_constraint=False,
    )
    # The counterpart's own open annonce, when it has one (the "reciprocal annonce" component).
    counterpart_annonce = models.ForeignKey(
        Annonce,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    rank = models.PositiveSmallIntegerField(_("rang"))
    score = models.FloatField(_("score"))
    components = models.JSONField(_("composantes"), default=dict)
    reasons = models.JSONField(_("raisons"), default=list)
    distance_m = models.FloatField(_("distance (m)"))
    drive_minutes = models.FloatField(_("durée de trajet estimée (min)"))
    computed_at = models.DateTimeField(_("calculée le"))
    first_seen_at = models.DateTimeField(_("trouvée le"))
    # Set by `send_digest` once the annonce's managers were told about this match.
    notified_at = models.DateTimeField(_("signalée le"), null=True, blank=True)

    class Meta:
        verbose_name = _("correspondance")
        verbose_name_plural = _("correspondances")
        ordering = ["annonce", "rank"]
        constraints = [
            models.CheckConstraint(
                condition=Q(amap__isnull=False, farm__isnull=True) | Q(amap__isnull=True, farm__isnull=False),
                name="match_one_counterpart",
            ),
            # One row per (annonce, counterpart): exactly one of amap/farm is set, the other NULL.
            models.UniqueConstraint(
                fields=["annonce", "amap", "farm"], nulls_distinct=False, name="match_unique_annonce_counterpart"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.annonce_id} → {self.amap or self.farm} ({self.score:.2f})"


class SavedSearch(models.Model):
    """ "Tell me about new AMAPs/annonces for eggs within 20 km of Libourne"."""

    class Target(models.TextChoices):
        AMAPS = "amaps", _("nouvelles AMAP")
        AMAP_ANNONCES = "amap_annonces", _("annonces « AMAP cherche paysan »")
        FARM_ANNONCES = "farm_annonces", _("annonces « Paysan cherche AMAP »")

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_searches")
    target = models.CharField(_("je veux être prévenu·e des"), max_length=20, choices=Target.choices)
    products = models.ManyToManyField(
        "directory.ProductCategory",
        verbose_name=_("produits"),
        blank=True,
        related_name="+",
        help_text=_("aucun : tous les produits"),
    )
    place = models.CharField(_("lieu"), max_length=200)
    location = models.PointField(_("point"), geography=True, srid=4326)  # WGS84
    radius_km = models.PositiveSmallIntegerField(
        _("rayon (km)"), default=20, validators=[MinValueValidator(1), MaxValueValidator(200)]
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Everything created up to this instant has already been sent (the digest is idempotent).
    notified_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("alerte")
        verbose_name_plural = _("alertes")
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.get_target_display()} — {self.radius_km} km de {self.place}"


class Thread(models.Model):
    """A conversation started through the platform: nobody sees anybody's e-mail address."""

    annonce = models.ForeignKey(
        Annonce, verbose_name=_("annonce"), on_delete=models.SET_NULL, null=True, blank=True, related_name="threads"
    )
    subject = models.CharField(_("objet"), max_length=200)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="started_threads"
    )
    # Who the sender speaks for (optional) and whom they write to (exactly one of each pair).
    sender_amap = models.ForeignKey(
        "directory.Amap", on_delete=models.CASCADE, null=True, blank=True, related_name="sent_threads"
    )
    sender_farm = models.ForeignKey(
        "directory.Farm", on_delete=models.CASCADE, null=True, blank=True, related_name="sent_threads"
    )
    recipient_amap = models.ForeignKey(
        "directory.Amap", on_delete=models.CASCADE, null=True, blank=True, related_name="received_threads"
    )
    recipient_farm = models.ForeignKey(
        "directory.Farm", on_delete=models.CASCADE, null=True, blank=True, related_name="received_threads"
    )
    # The entry had no account and no address: its territory's network(s) received it to pass on.
    relayed_to = models.ManyToManyField(
        "directory.Network", verbose_name=_("transmis au réseau"), blank=True, related_name="relayed_threads"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("conversation")
        verbose_name_plural = _("conversations")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(recipient_amap__isnull=False, recipient_farm__isnull=True)
                | Q(recipient_amap__isnull=True, recipient_farm__isnull=False),
                name="thread_one_recipient",
            ),
        ]

    def __str__(self) -> str:
        return self.subject

    @property
    def recipient(self):
        return self.recipient_amap or self.recipient_farm

    @property
    def sender(self):
        return self.sender_amap or self.sender_farm

    def get_absolute_url(self) -> str:
        from django.urls import reverse

        return reverse("matching:thread_detail", args=[self.pk])


class Message(models.Model):
    class Delivery(models.TextChoices):
        TEAM = "team", _("envoyé à l'équipe")
        ADDRESS = "address", _("envoyé à l'adresse de contact")
        NETWORK = "network", _("transmis au réseau")
        SENDER = "sender", _("envoyé")

    thread = models.ForeignKey(Thread, on_delete=models.CASCADE, related_name="messages")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    # A reply through a signed e-mail link has no account: the name of the entry it answers for.
    author_name = models.CharField(_("auteur"), max_length=200, blank=True)
    body = models.TextField(_("message"), max_length=5000)
    delivery = models.CharField(_("remise"), max_length=10, choices=Delivery.choices, blank=True)
    # Said to the sender as is: « transmis au réseau AMAP Gironde, qui fera suivre ».
    delivery_label = models.CharField(_("remis à"), max_length=300, blank=True)
    read_at = models.DateTimeField(_("lu le"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return self.body[:60]


class MatchingModel(models.Model):
    """A fitted ranking (`matching.learning`), versioned: its coefficients in JSON and its card.

    The active one with the highest version ranks matches; none active: the engine's fixed weights.
    """

    version = models.PositiveIntegerField(_("version"), unique=True)
    created_at = models.DateTimeField(_("entraîné le"), auto_now_add=True)
    parameters = models.JSONField(_("coefficients"), default=dict)  # LinearRanker.to_json()
    card = models.JSONField(_("fiche du modèle"), default=dict)  # data size, cross-validated recall
    links = models.PositiveIntegerField(_("partenariats d'entraînement"), default=0)
    is_active = models.BooleanField(_("actif"), default=True)

    class Meta:
        ordering = ("-version",)
        verbose_name = _("modèle de mise en relation")
        verbose_name_plural = _("modèles de mise en relation")

    def __str__(self) -> str:
        return f"v{self.version}"
