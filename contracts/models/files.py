"""Files a job prepares for one person (a big summary PDF), kept a short while for them to download."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class PreparedFileQuerySet(models.QuerySet):
    def expired(self):
        return self.filter(expires_at__lte=timezone.now())


class PreparedFile(models.Model):
    """The bytes of a file built off the request path; only its owner may see it, until it expires."""

    class Status(models.TextChoices):
        PENDING = "pending", _("en préparation")
        READY = "ready", _("prêt")
        FAILED = "failed", _("échec")

    # The page's address: not guessable, and checked against the owner anyway.
    token = models.UUIDField(_("jeton"), default=uuid.uuid4, unique=True, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("demandé par"), on_delete=models.CASCADE, related_name="prepared_files"
    )
    title = models.CharField(_("titre"), max_length=300)
    filename = models.CharField(_("nom du fichier"), max_length=200)
    content_type = models.CharField(_("type"), max_length=100)
    # What to build, for the job: e.g. {"scope": "amap", "pk": 3, "by": "member", "start": None, "end": None}.
    params = models.JSONField(_("paramètres"), default=dict)
    status = models.CharField(_("état"), max_length=10, choices=Status.choices, default=Status.PENDING)
    content = models.BinaryField(_("contenu"), null=True, editable=False)
    created_at = models.DateTimeField(_("demandé le"), auto_now_add=True)
    expires_at = models.DateTimeField(_("expire le"))

    objects = PreparedFileQuerySet.as_manager()

    class Meta:
        verbose_name = _("fichier préparé")
        verbose_name_plural = _("fichiers préparés")
        indexes = [models.Index(fields=["expires_at"], name="preparedfile_expires_idx")]

    def __str__(self) -> str:
        return self.filename
