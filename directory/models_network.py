"""What a network's coordinators do in their space: imports run from the web, announcements sent."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class ImportRun(models.Model):
    """One spreadsheet uploaded by a coordinator: checked by a job (dry run), then committed by another.

    The file is kept in the row (not on a disk) so that a worker on another machine can read it;
    progress is written here by the job and polled by the page.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", _("en attente")
        CHECKING = "checking", _("vérification en cours")
        CHECKED = "checked", _("vérifié")
        COMMITTING = "committing", _("enregistrement en cours")
        DONE = "done", _("enregistré")
        FAILED = "failed", _("échec")

    network = models.ForeignKey(
        "directory.Network", verbose_name=_("réseau"), on_delete=models.CASCADE, related_name="import_runs"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("par"), on_delete=models.SET_NULL, null=True, related_name="+"
    )
    kind = models.CharField(_("contenu"), max_length=20)
    source = models.CharField(_("source"), max_length=60)
    filename = models.CharField(_("fichier"), max_length=200)
    content = models.BinaryField(_("contenu du fichier"))
    status = models.CharField(_("état"), max_length=20, choices=Status.choices, default=Status.QUEUED)
    phase = models.CharField(_("étape"), max_length=20, blank=True)  # "read", "check", "write"
    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    report_text = models.TextField(_("rapport"), blank=True)
    report = models.JSONField(_("rapport (données)"), default=dict, blank=True)
    ok = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("import depuis le web")
        verbose_name_plural = _("imports depuis le web")
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.filename} ({self.get_status_display()})"

    @property
    def percent(self) -> int:
        if self.status in {self.Status.CHECKED, self.Status.DONE, self.Status.FAILED}:
            return 100
        return min(99, int(100 * self.done / self.total)) if self.total else 0


class Announcement(models.Model):
    """A message from a network's coordinators to the people who run the entries of its territory."""

    class Audience(models.TextChoices):
        ADMINS = "admins", _("administrateur·rices d'AMAP")
        REFERENTS = "referents", _("référent·es d'AMAP")
        FARMERS = "farmers", _("paysan·nes")

    network = models.ForeignKey(
        "directory.Network", verbose_name=_("réseau"), on_delete=models.CASCADE, related_name="announcements"
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("auteur·rice"), on_delete=models.SET_NULL, null=True, related_name="+"
    )
    subject = models.CharField(_("objet"), max_length=200)
    body = models.TextField(_("message"))
    audiences = models.JSONField(_("destinataires"), default=list)  # Audience values
    department = models.ForeignKey(
        "geo.Department", verbose_name=_("département"), on_delete=models.PROTECT, null=True, blank=True
    )
    product = models.ForeignKey(
        "directory.ProductCategory", verbose_name=_("produit"), on_delete=models.PROTECT, null=True, blank=True
    )
    recipient_count = models.PositiveIntegerField(_("destinataires"), default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(_("envoyé le"), null=True, blank=True)

    class Meta:
        verbose_name = _("annonce du réseau")
        verbose_name_plural = _("annonces du réseau")
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return self.subject


class AnnouncementDelivery(models.Model):
    """One recipient of one announcement: the unique pair is what makes a retried job send nothing twice."""

    announcement = models.ForeignKey(Announcement, on_delete=models.CASCADE, related_name="deliveries")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    sent_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["announcement", "user"], name="announcement_delivery_once"),
        ]

    def __str__(self) -> str:
        return f"{self.announcement_id} → {self.user_id}"


class AnnouncementOptOut(models.Model):
    """Someone who asked for no more announcements: from one network (`network` set) or from all (null)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    network = models.ForeignKey("directory.Network", on_delete=models.CASCADE, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "network"], name="announcement_optout_once"),
            models.UniqueConstraint(
                fields=["user"], condition=Q(network__isnull=True), name="announcement_optout_all_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} ✕ {self.network_id or 'tous'}"
