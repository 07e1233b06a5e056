"""The spatial directory: product categories, networks, AMAPs, farms and partnerships."""

import re

from django.conf import settings
from django.contrib.gis.db import models
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from geo.masking import LandOutlines, mask_point


class Weekday(models.IntegerChoices):
    """ISO weekday numbers, as in the API's `weekday=1-7`."""

    MONDAY = 1, _("lundi")
    TUESDAY = 2, _("mardi")
    WEDNESDAY = 3, _("mercredi")
    THURSDAY = 4, _("jeudi")
    FRIDAY = 5, _("vendredi")
    SATURDAY = 6, _("samedi")
    SUNDAY = 7, _("dimanche")


class LocationPrecision(models.TextChoices):
    EXACT = "exact", _("coordonnées fournies")
    ADDRESS = "address", _("adresse")
    STREET = "street", _("rue")
    POSTAL_CODE = "postal_code", _("code postal")
    COMMUNE = "commune", _("commune")
    UNKNOWN = "unknown", _("inconnue")


class ProductCategory(models.Model):
    slug = models.SlugField(_("identifiant"), max_length=60, unique=True)
    name = models.CharField(_("nom"), max_length=100)
    family = models.CharField(_("famille"), max_length=60, blank=True)
    # Words that importers map to this category ("oeufs", "œuf", "poules pondeuses"…).
    aliases = ArrayField(models.CharField(max_length=80), verbose_name=_("synonymes"), default=list, blank=True)
    position = models.PositiveSmallIntegerField(_("ordre"), default=0)

    class Meta:
        verbose_name = _("catégorie de produits")
        verbose_name_plural = _("catégories de produits")
        ordering = ["position", "name"]

    def __str__(self) -> str:
        return self.name


# A web origin as a CSP source: scheme, host (optionally `*.` first) and port, nothing else, since it
# is written into the Content-Security-Policy header of the embed.
EMBED_ORIGIN_RE = r"^https?://(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:[0-9]{1,5})?$"
embed_origin_validator = RegexValidator(
    EMBED_ORIGIN_RE,
    _("Indiquez une origine de site comme https://www.mon-reseau.org (sans chemin)."),
)


class Network(models.Model):
    class Level(models.TextChoices):
        NATIONAL = "national", _("national")
        REGIONAL = "regional", _("régional")
        DEPARTMENTAL = "departmental", _("départemental")
        LOCAL = "local", _("local")

    class Status(models.TextChoices):
        ESTABLISHED = "established", _("constitué")
        EMERGING = "emerging", _("émergent")

    name = models.CharField(_("nom"), max_length=200)
    slug = models.SlugField(_("identifiant"), max_length=100, unique=True)
    level = models.CharField(_("échelon"), max_length=20, choices=Level.choices)
    status = models.CharField(_("statut"), max_length=20, choices=Status.choices, default=Status.ESTABLISHED)
    regions = models.ManyToManyField("geo.Region", verbose_name=_("régions"), blank=True, related_name="networks")
    departments = models.ManyToManyField(
        "geo.Department", verbose_name=_("départements"), blank=True, related_name="networks"
    )
    # An emerging network may draw its own territory instead of listing départements.
    custom_territory = models.MultiPolygonField(
        _("territoire dessiné"),
        srid=4326,
        null=True,
        blank=True,  # WGS84
    )
    description = models.TextField(_("présentation"), blank=True)
    website = models.URLField(_("site web"), blank=True)
    contact_email = models.EmailField(_("e-mail de contact"), blank=True)
    phone = models.CharField(_("téléphone"), max_length=30, blank=True)
    admins = models.ManyToManyField(
        settings.AUTH_USER_MODEL, verbose_name=_("administrateurs"), blank=True, related_name="administered_networks"
    )
    embed_origins = ArrayField(
        models.CharField(max_length=200, validators=[embed_origin_validator]),
        verbose_name=_("sites autorisés à intégrer la carte"),
        help_text=_("Origines (https://…) des sites qui peuvent intégrer la carte du réseau ; vide : tous."),
        default=list,
        blank=True,
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords(excluded_fields=["updated_at"])

    class Meta:
        verbose_name = _("réseau")
        verbose_name_plural = _("réseaux")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(custom_territory__isvalid=True), name="network_territory_valid"),
        ]

    def __str__(self) -> str:
        return self.name

    def embed_frame_ancestors(self) -> list[str]:
        """The CSP `frame-ancestors` sources of this network's embed: its declared sites, or any."""
        origins = [o.lower() for o in self.embed_origins if re.match(EMBED_ORIGIN_RE, o.lower())]
        return origins or ["*"]


class DirectoryEntryQuerySet(models.QuerySet):
    def in_department(self, code: str):
        return self.filter(commune__department_id=code)

    def offering(self, product_slugs: list[str]):
        return self.filter(products__slug__in=product_slugs).distinct()


class DirectoryEntry(models.Model):
    """What AMAPs and farms share: a name, and where the entry came from.

    `source` and `external_id` name the entry in the list it was imported from, so that a
    re-import updates it instead of adding a twin (unique together when the id is known).
    """

    name = models.CharField(_("nom"), max_length=200)
    source = models.CharField(_("source"), max_length=60, default="manual")
    external_id = models.CharField(_("identifiant dans la source"), max_length=100, blank=True)
    is_demo = models.BooleanField(_("donnée de démonstration"), default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Freshness: when someone who runs the entry (or a coordinator) last confirmed it, and when
    # the yearly reminder last asked them to (directory.freshness).
    verified_at = models.DateTimeField(_("fiche vérifiée le"), null=True, blank=True)
    verification_asked_at = models.DateTimeField(_("vérification demandée le"), null=True, blank=True)

    class Meta:
        abstract = True
        ordering = ["name", "pk"]
        # The maps' data version (directory.map_data.data_version) reads the latest change.
        indexes = [models.Index(fields=["updated_at"], name="%(class)s_updated_at_idx")]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "external_id"],
                condition=~Q(external_id=""),
                name="%(class)s_unique_source_external_id",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class AmapQuerySet(DirectoryEntryQuerySet):
    def active(self):
        return self.filter(status=Amap.Status.ACTIVE)

    def accepting_members(self):
        return self.filter(accepting_members=Amap.Accepting.OPEN)

    def delivering_on(self, weekday: int):
        return self.filter(delivery_weekdays__contains=[weekday])


class Amap(DirectoryEntry):
    class Status(models.TextChoices):
        ACTIVE = "active", _("active")
        CREATING = "creating", _("en création")
        DORMANT = "dormant", _("en sommeil")
        CLOSED = "closed", _("fermée")

    class Kind(models.TextChoices):
        CLASSIC = "classic", _("AMAP")
        STUDENT = "student", _("AMAP étudiante")
        WORKPLACE = "workplace", _("AMAP d'entreprise")
        OTHER = "other", _("autre")

    class Accepting(models.TextChoices):
        OPEN = "open", _("accepte de nouveaux membres")
        WAITING_LIST = "waiting_list", _("liste d'attente")
        FULL = "full", _("complet")
        UNKNOWN = "unknown", _("non précisé")

    class Frequency(models.TextChoices):
        WEEKLY = "weekly", _("chaque semaine")
        FORTNIGHTLY = "fortnightly", _("toutes les deux semaines")
        MONTHLY = "monthly", _("chaque mois")
        OTHER = "other", _("autre")

    status = models.CharField(_("statut"), max_length=20, choices=Status.choices, default=Status.ACTIVE)
    kind = models.CharField(_("type"), max_length=20, choices=Kind.choices, default=Kind.CLASSIC)
    description = models.TextField(_("présentation"), blank=True)

    location = models.PointField(_("lieu de livraison"), geography=True, srid=4326)  # WGS84, metres in lookups
    location_precision = models.CharField(
        _("précision du lieu"), max_length=20, choices=LocationPrecision.choices, default=LocationPrecision.EXACT
    )
    address = models.CharField(_("adresse"), max_length=300, blank=True)
    postal_code = models.CharField(_("code postal"), max_length=5, blank=True)
    commune = models.ForeignKey(
        "geo.Commune", verbose_name=_("commune"), on_delete=models.PROTECT, related_name="amaps"
    )

    delivery_weekdays = ArrayField(
        models.PositiveSmallIntegerField(choices=Weekday.choices),
        verbose_name=_("jours de livraison"),
        default=list,
        blank=True,
    )
    delivery_start = models.TimeField(_("début de distribution"), null=True, blank=True)
    delivery_end = models.TimeField(_("fin de distribution"), null=True, blank=True)
    delivery_frequency = models.CharField(
        _("fréquence"), max_length=20, choices=Frequency.choices, default=Frequency.WEEKLY
    )
    delivery_notes = models.CharField(_("précisions sur la distribution"), max_length=300, blank=True)

    products = models.ManyToManyField(ProductCategory, verbose_name=_("produits"), blank=True, related_name="amaps")
    accepting_members = models.CharField(
        _("nouveaux membres"), max_length=20, choices=Accepting.choices, default=Accepting.UNKNOWN
    )
    member_count = models.PositiveIntegerField(_("nombre de foyers adhérents"), null=True, blank=True)

    contact_email = models.EmailField(_("e-mail de contact public"), blank=True)
    # Never shown (pages, API, exports, tiles): « Contacter » relays messages to it.
    private_email = models.EmailField(
        _("e-mail de contact privé"),
        blank=True,
        help_text=_("Jamais affiché : les messages envoyés par la plateforme y sont relayés."),
    )
    phone = models.CharField(_("téléphone"), max_length=30, blank=True)
    website = models.URLField(_("site web"), max_length=500, blank=True)
    platform = models.CharField(_("outil de gestion"), max_length=60, blank=True, help_text=_("AmapJ, CAMAP, Cagette…"))
    networks = models.ManyToManyField(Network, verbose_name=_("réseaux"), blank=True, related_name="amaps")
    managers = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("gestionnaires"),
        blank=True,
        related_name="managed_amaps",
        through="AmapManager",
    )

    founded_on = models.DateField(_("date de création"), null=True, blank=True)
    closed_on = models.DateField(_("date de fermeture"), null=True, blank=True)
    rna_id = models.CharField(_("numéro RNA"), max_length=10, blank=True)

    objects = AmapQuerySet.as_manager()
    history = HistoricalRecords(excluded_fields=["updated_at"])

    class Meta(DirectoryEntry.Meta):
        verbose_name = _("AMAP")
        verbose_name_plural = _("AMAP")
        indexes = [
            *DirectoryEntry.Meta.indexes,
            models.Index(fields=["status", "accepting_members"], name="amap_status_accepting_idx"),
            GinIndex(fields=["delivery_weekdays"], name="amap_weekdays_gin"),
        ]
        constraints = [
            *DirectoryEntry.Meta.constraints,
            models.CheckConstraint(
                condition=Q(delivery_end__isnull=True)
                | Q(delivery_start__isnull=True)
                | Q(delivery_end__gt=F("delivery_start")),
                name="amap_delivery_hours_ordered",
            ),
            models.CheckConstraint(
                condition=Q(closed_on__isnull=True) | Q(founded_on__isnull=True) | Q(closed_on__gte=F("founded_on")),
                name="amap_closed_after_founded",
            ),
        ]


class AmapManager(models.Model):
    """A person who runs an AMAP: its admins edit the AMAP; its référents run contracts and annonces."""

    class Role(models.TextChoices):
        ADMIN = "admin", _("administrateur·rice")
        REFERENT = "referent", _("référent·e")

    amap = models.ForeignKey(Amap, verbose_name=_("AMAP"), on_delete=models.CASCADE, related_name="manager_roles")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("personne"), on_delete=models.CASCADE, related_name="amap_roles"
    )
    role = models.CharField(_("rôle"), max_length=20, choices=Role.choices, default=Role.ADMIN)

    class Meta:
        # The table Django made for the former plain many-to-many, kept as is.
        db_table = "directory_amap_managers"
        unique_together = [("amap", "user")]
        verbose_name = _("gestionnaire d'AMAP")
        verbose_name_plural = _("gestionnaires d'AMAP")

    def __str__(self) -> str:
        return f"{self.user} ({self.get_role_display()}, {self.amap})"


class FarmQuerySet(DirectoryEntryQuerySet):
    def active(self):
        return self.filter(is_active=True)


def farm_mask_seed(*, source: str, external_id: str, name: str, commune_id: str | None) -> str:
    """What a farm's mask is drawn from: public on purpose, the secret is the key (LOCATION_MASK_KEY)."""
    return f"{source}:{external_id}" if external_id else f"{name}:{commune_id}"


COARSE_PRECISIONS = frozenset({LocationPrecision.COMMUNE, LocationPrecision.POSTAL_CODE})


class Farm(DirectoryEntry):
    class Label(models.TextChoices):
        ORGANIC = "ab", _("Agriculture biologique")
        NATURE_PROGRES = "nature_progres", _("Nature & Progrès")
        DEMETER = "demeter", _("Demeter")
        BIO_COHERENCE = "bio_coherence", _("Bio Cohérence")
        CONVERSION = "conversion", _("en conversion bio")
        PEASANT = "paysan", _("agriculture paysanne")

    description = models.TextField(_("présentation"), blank=True)
    is_active = models.BooleanField(_("en activité"), default=True)

    # Farmers often live on their farm: the exact point is private. Only `public_location`
    # (masked once, stored) ever leaves the database in pages, API, tiles or maps.
    location = models.PointField(
        _("emplacement exact (privé)"),
        geography=True,
        srid=4326,
        null=True,
        blank=True,  # WGS84
    )
    public_location = models.PointField(
        _("emplacement public (approximatif)"), geography=True, srid=4326, null=True, blank=True, editable=False
    )
    location_precision = models.CharField(
        _("précision du lieu"), max_length=20, choices=LocationPrecision.choices, default=LocationPrecision.EXACT
    )
    address = models.CharField(_("adresse"), max_length=300, blank=True)
    postal_code = models.CharField(_("code postal"), max_length=5, blank=True)
    commune = models.ForeignKey(
        "geo.Commune", verbose_name=_("commune"), on_delete=models.PROTECT, null=True, blank=True, related_name="farms"
    )

    products = models.ManyToManyField(ProductCategory, verbose_name=_("produits"), blank=True, related_name="farms")
    product_details = models.CharField(_("produits (texte libre)"), max_length=300, blank=True)
    labels = ArrayField(
        models.CharField(max_length=20, choices=Label.choices), verbose_name=_("labels"), default=list, blank=True
    )
    # Null when the farm never said (imported lists rarely do): matching then ranks by distance
    # instead of cutting at a radius nobody stated.
    delivery_radius_km = models.PositiveSmallIntegerField(
        _("rayon de livraison (km)"),
        null=True,
        blank=True,
        help_text=_("Vide : non renseigné."),
        validators=[MinValueValidator(1), MaxValueValidator(500)],
    )
    capacity_shares = models.PositiveIntegerField(_("parts disponibles"), null=True, blank=True)
    managers = models.ManyToManyField(
        settings.AUTH_USER_MODEL, verbose_name=_("gestionnaires"), blank=True, related_name="managed_farms"
    )
    networks = models.ManyToManyField(Network, verbose_name=_("réseaux"), blank=True, related_name="farms")

    contact_email = models.EmailField(_("e-mail de contact"), blank=True)
    # Never shown (pages, API, exports, tiles): « Contacter » relays messages to it.
    private_email = models.EmailField(
        _("e-mail de contact privé"),
        blank=True,
        help_text=_("Jamais affiché : les messages envoyés par la plateforme y sont relayés."),
    )
    phone = models.CharField(_("téléphone"), max_length=30, blank=True)
    website = models.URLField(_("site web"), max_length=500, blank=True)

    objects = FarmQuerySet.as_manager()
    history = HistoricalRecords(excluded_fields=["updated_at"])

    class Meta(DirectoryEntry.Meta):
        verbose_name = _("ferme")
        verbose_name_plural = _("fermes")
        constraints = [
            *DirectoryEntry.Meta.constraints,
            # Either both points are known, or neither.
            models.CheckConstraint(
                condition=Q(location__isnull=True, public_location__isnull=True)
                | Q(location__isnull=False, public_location__isnull=False),
                name="farm_public_location_with_location",
            ),
        ]

    def save(self, *args, **kwargs):
        self.public_location = self.compute_public_location()
        super().save(*args, **kwargs)

    def compute_public_location(self, *, land: LandOutlines | None = None):
        """The stored public point: the commune's point for coarse locations, else a stable keyed mask.

        `land`: département outlines loaded once for a batch (default: this process's).
        """
        if self.location is None:
            return None
        if self.location_precision in COARSE_PRECISIONS:
            # Already no closer than the commune: nothing personal to hide.
            return self.location
        return mask_point(self.location, seed=self.mask_seed(), commune_code=self.commune_id, land=land)

    def mask_seed(self) -> str:
        return farm_mask_seed(
            source=self.source, external_id=self.external_id, name=self.name, commune_id=self.commune_id
        )


class PartnershipQuerySet(models.QuerySet):
    def active(self):
        return self.filter(is_active=True)


class Partnership(models.Model):
    amap = models.ForeignKey(Amap, verbose_name=_("AMAP"), on_delete=models.CASCADE, related_name="partnerships")
    farm = models.ForeignKey(Farm, verbose_name=_("ferme"), on_delete=models.CASCADE, related_name="partnerships")
    product = models.ForeignKey(
        ProductCategory, verbose_name=_("produit"), on_delete=models.PROTECT, related_name="partnerships"
    )
    since = models.DateField(_("depuis"), null=True, blank=True)
    until = models.DateField(_("jusqu'au"), null=True, blank=True)
    is_active = models.BooleanField(_("en cours"), default=True)
    source = models.CharField(_("source"), max_length=60, default="manual")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = PartnershipQuerySet.as_manager()
    history = HistoricalRecords(excluded_fields=["updated_at"])

    class Meta:
        verbose_name = _("partenariat")
        verbose_name_plural = _("partenariats")
        ordering = ["amap", "farm", "product"]
        constraints = [
            models.UniqueConstraint(fields=["amap", "farm", "product"], name="partnership_unique_amap_farm_product"),
            models.CheckConstraint(
                condition=Q(until__isnull=True) | Q(since__isnull=True) | Q(until__gte=F("since")),
                name="partnership_until_after_since",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.amap} ↔ {self.farm} ({self.product})"


class ChangeRequestQuerySet(models.QuerySet):
    def pending(self):
        return self.filter(status=ChangeRequest.Status.PENDING)


class ChangeRequest(models.Model):
    """What waits for a coordinator: a declared AMAP, an edit by someone who does not run the entry,
    or a claim (« C'est mon AMAP ») without a code.

    `data` keeps the submitted form (field → list of strings), so that approving replays the same
    form and correcting shows it again, filled in. `commune` and `location` say where it is, to find
    the networks whose territory holds it.
    """

    class Kind(models.TextChoices):
        CREATE = "create", _("nouvelle fiche")
        EDIT = "edit", _("modification")
        CLAIM = "claim", _("revendication")

    class Status(models.TextChoices):
        PENDING = "pending", _("en attente")
        APPROVED = "approved", _("acceptée")
        REFUSED = "refused", _("refusée")

    kind = models.CharField(_("type"), max_length=10, choices=Kind.choices)
    status = models.CharField(_("état"), max_length=10, choices=Status.choices, default=Status.PENDING)
    entry_type = models.CharField(_("fiche"), max_length=10, choices=[("amap", _("AMAP")), ("farm", _("ferme"))])
    amap = models.ForeignKey(Amap, on_delete=models.CASCADE, null=True, blank=True, related_name="change_requests")
    farm = models.ForeignKey(Farm, on_delete=models.CASCADE, null=True, blank=True, related_name="change_requests")
    name = models.CharField(_("nom"), max_length=200)
    data = models.JSONField(_("données proposées"), default=dict, blank=True)
    message = models.TextField(_("message"), max_length=2000, blank=True)
    commune = models.ForeignKey("geo.Commune", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    location = models.PointField(_("lieu"), geography=True, srid=4326, null=True, blank=True)  # WGS84, metres
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="directory_change_requests"
    )
    reason = models.TextField(_("motif"), max_length=2000, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ChangeRequestQuerySet.as_manager()

    class Meta:
        verbose_name = _("demande en attente de modération")
        verbose_name_plural = _("demandes en attente de modération")
        ordering = ["created_at", "pk"]
        indexes = [models.Index(fields=["status", "created_at"], name="changerequest_status_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} : {self.name}"

    @property
    def entry(self):
        return self.amap or self.farm

    @property
    def networks(self):
        """Networks the entry belongs to (duck typing for accounts.permissions)."""
        entry = self.entry
        return entry.networks if entry is not None else Network.objects.none()

    @property
    def public_location(self):
        return self.location


class ClaimChallenge(models.Model):
    """« C'est mon AMAP » proven by a one-time code e-mailed to the listed address; only its hash is kept."""

    amap = models.ForeignKey(Amap, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    farm = models.ForeignKey(Farm, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    code_hash = models.CharField(max_length=128)
    expires_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)
    used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("code de revendication")
        verbose_name_plural = _("codes de revendication")
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.user} → {self.amap or self.farm}"


# The network space's own records (web imports, announcements): kept in their own module.
from .models_network import Announcement, AnnouncementDelivery, AnnouncementOptOut, ImportRun  # noqa: E402, F401
