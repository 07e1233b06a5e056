"""Distribution shifts (« permanences ») and events (meetings, farm visits, network gatherings).

- A *distribution* of an AMAP is a date on which at least one of its contracts delivers; it
  needs `needed` members on duty: the largest of the contracts' own numbers delivering that
  day (`ShiftQuota` with a contract) or else the AMAP's number (`ShiftQuota` without one),
  else `DEFAULT_NEEDED`. One `Shift` row per member on duty: shifts follow the AMAP's date,
  not one contract, so two contracts delivering on the same evening share their volunteers.
- An `Event` belongs to an AMAP or to a network; `Rsvp` is one person's answer (yes, no, or
  waiting when the event is full). Its organisers edit it or cancel it with a reason (a cancelled
  event stays, shown « Annulé »); django-simple-history keeps every version.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

DEFAULT_NEEDED = 2
MAX_NEEDED = 20


class ShiftQuota(models.Model):
    """How many members a distribution needs: for the whole AMAP (`contract` empty) or one contract."""

    amap = models.ForeignKey("directory.Amap", on_delete=models.CASCADE, related_name="shift_quotas")
    contract = models.OneToOneField(
        "contracts.Contract", on_delete=models.CASCADE, related_name="shift_quota", null=True, blank=True
    )
    needed = models.PositiveSmallIntegerField(
        _("membres de permanence par distribution"),
        default=DEFAULT_NEEDED,
        validators=[MinValueValidator(0), MaxValueValidator(MAX_NEEDED)],
    )

    class Meta:
        verbose_name = _("besoin de permanence")
        verbose_name_plural = _("besoins de permanence")
        constraints = [
            models.UniqueConstraint(
                fields=["amap"], condition=Q(contract__isnull=True), name="shift_quota_one_per_amap"
            ),
            models.CheckConstraint(condition=Q(needed__lte=MAX_NEEDED), name="shift_quota_needed_bounded"),
        ]

    def __str__(self) -> str:
        return f"{self.needed} ({self.contract or self.amap})"


class Shift(models.Model):
    """One member on duty at one distribution of an AMAP."""

    amap = models.ForeignKey("directory.Amap", on_delete=models.CASCADE, related_name="shifts")
    date = models.DateField(_("date de distribution"))
    member = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="shifts")
    # Offered for a swap: still the member's until someone takes it.
    offered_at = models.DateTimeField(_("proposée à l'échange le"), null=True, blank=True)
    reminded_at = models.DateTimeField(_("rappel envoyé le"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("permanence")
        verbose_name_plural = _("permanences")
        ordering = ["date", "pk"]
        indexes = [models.Index(fields=["amap", "date"], name="shift_amap_date_idx")]
        constraints = [
            models.UniqueConstraint(fields=["amap", "date", "member"], name="shift_once_per_member_and_date"),
        ]

    def __str__(self) -> str:
        return f"{self.member} le {self.date:%d/%m/%Y} ({self.amap})"


class EventQuerySet(models.QuerySet):
    def public(self):
        return self.filter(is_public=True)

    def active(self):
        """Not cancelled."""
        return self.filter(cancelled=False)

    def upcoming(self, *, now):
        """Not over yet and not cancelled: what a person may still go to."""
        return self.active().filter(ends_at__gte=now)


class Event(models.Model):
    """A general meeting, a farm visit, a network gathering: place, time, capacity, answers."""

    class Kind(models.TextChoices):
        GENERAL_MEETING = "general_meeting", _("assemblée générale")
        FARM_VISIT = "farm_visit", _("visite de ferme")
        NETWORK_GATHERING = "network_gathering", _("rencontre du réseau")
        OTHER = "other", _("autre")

    kind = models.CharField(_("type"), max_length=30, choices=Kind.choices, default=Kind.GENERAL_MEETING)
    title = models.CharField(_("intitulé"), max_length=200)
    description = models.TextField(_("présentation"), blank=True, max_length=5000)
    amap = models.ForeignKey("directory.Amap", on_delete=models.CASCADE, related_name="events", null=True, blank=True)
    network = models.ForeignKey(
        "directory.Network", on_delete=models.CASCADE, related_name="events", null=True, blank=True
    )
    place = models.CharField(_("lieu"), max_length=300)
    starts_at = models.DateTimeField(_("début"))
    ends_at = models.DateTimeField(_("fin"))
    capacity = models.PositiveIntegerField(
        _("nombre de places"), null=True, blank=True, help_text=_("Vide : sans limite. Au-delà, liste d'attente.")
    )
    is_public = models.BooleanField(
        _("public"), default=False, help_text=_("Visible de tous et dans l'agenda public (ICS) de l'AMAP ou du réseau.")
    )
    cancelled = models.BooleanField(_("annulé"), default=False)
    cancel_reason = models.TextField(_("motif de l'annulation"), blank=True, max_length=1000)
    cancelled_at = models.DateTimeField(_("annulé le"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, related_name="+", null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = EventQuerySet.as_manager()
    history = HistoricalRecords(excluded_fields=["updated_at"])

    class Meta:
        verbose_name = _("évènement")
        verbose_name_plural = _("évènements")
        ordering = ["starts_at", "pk"]
        indexes = [
            models.Index(fields=["amap", "starts_at"], name="event_amap_starts_idx"),
            models.Index(fields=["network", "starts_at"], name="event_network_starts_idx"),
        ]
        constraints = [
            # An AMAP's event or a network's, never both nor neither.
            models.CheckConstraint(
                condition=Q(amap__isnull=True, network__isnull=False) | Q(amap__isnull=False, network__isnull=True),
                name="event_one_organiser",
            ),
            models.CheckConstraint(condition=Q(ends_at__gt=F("starts_at")), name="event_ends_after_start"),
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.starts_at:%d/%m/%Y})"

    @property
    def organiser(self):
        return self.amap if self.amap_id else self.network


class Rsvp(models.Model):
    """One person's answer to an event."""

    class Answer(models.TextChoices):
        YES = "yes", _("je viens")
        NO = "no", _("je ne viens pas")
        WAITING = "waiting", _("liste d'attente")

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="rsvps")
    person = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="rsvps")
    answer = models.CharField(_("réponse"), max_length=20, choices=Answer.choices)
    answered_at = models.DateTimeField(_("répondu le"))

    class Meta:
        verbose_name = _("réponse")
        verbose_name_plural = _("réponses")
        ordering = ["answered_at", "pk"]
        constraints = [models.UniqueConstraint(fields=["event", "person"], name="rsvp_once_per_person")]

    def __str__(self) -> str:
        return f"{self.person} : {self.get_answer_display()} ({self.event})"
