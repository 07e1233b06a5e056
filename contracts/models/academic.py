"""University years for student AMAPs: their holidays and exam periods have no delivery."""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _


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
