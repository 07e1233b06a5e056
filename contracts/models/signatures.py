"""Signing a subscription: the charter both parties accept, the exact PDF they sign, the
signatures with their one-time codes, and the hash-chained evidence trail."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from .subscriptions import Subscription


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
