"""France's territories: régions, départements, communes (COG 2025), overseas included."""

from django.contrib.gis.db import models
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Region(models.Model):
    code = models.CharField(_("code INSEE"), max_length=3, primary_key=True)
    name = models.CharField(_("nom"), max_length=100)
    population = models.PositiveIntegerField(_("population 2023"), default=0)
    geom = models.MultiPolygonField(_("contour"), srid=4326, null=True)  # WGS84

    class Meta:
        verbose_name = _("région")
        verbose_name_plural = _("régions")
        ordering = ["name"]
        indexes = [models.Index(fields=["name"], name="region_name_idx")]
        constraints = [
            models.CheckConstraint(condition=Q(geom__isvalid=True), name="region_geom_valid"),
        ]

    def __str__(self) -> str:
        return self.name


class Department(models.Model):
    code = models.CharField(_("code INSEE"), max_length=3, primary_key=True)
    name = models.CharField(_("nom"), max_length=100)
    region = models.ForeignKey(Region, on_delete=models.PROTECT, related_name="departments")
    population = models.PositiveIntegerField(_("population 2023"), default=0)
    geom = models.MultiPolygonField(_("contour"), srid=4326, null=True)  # WGS84

    class Meta:
        verbose_name = _("département")
        verbose_name_plural = _("départements")
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(condition=Q(geom__isvalid=True), name="department_geom_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class CommuneQuerySet(models.QuerySet):
    def municipalities(self):
        """Communes proper, without the arrondissements of Paris, Lyon and Marseille."""
        return self.filter(kind=Commune.Kind.COMMUNE)

    def in_department(self, code: str):
        return self.filter(department_id=code)


class Commune(models.Model):
    class Kind(models.TextChoices):
        COMMUNE = "COM", _("commune")
        ARRONDISSEMENT = "ARM", _("arrondissement municipal")

    code = models.CharField(_("code INSEE"), max_length=5, primary_key=True)  # "2A004" is not a number
    name = models.CharField(_("nom"), max_length=150)
    search_name = models.CharField(_("nom normalisé"), max_length=150, db_index=True)
    kind = models.CharField(_("type"), max_length=3, choices=Kind.choices, default=Kind.COMMUNE)
    parent = models.ForeignKey(
        "self",
        verbose_name=_("commune parente"),
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="arrondissements",
    )
    department = models.ForeignKey(Department, on_delete=models.PROTECT, related_name="communes")
    region = models.ForeignKey(Region, on_delete=models.PROTECT, related_name="communes")
    postal_codes = ArrayField(models.CharField(max_length=5), verbose_name=_("codes postaux"), default=list)
    population = models.PositiveIntegerField(_("population 2023"), default=0)
    # Town hall (or a point inside the commune): the commune's reference point.
    point = models.PointField(_("point de référence"), geography=True, srid=4326, null=True)  # WGS84, metres in lookups
    geom = models.MultiPolygonField(_("contour simplifié"), srid=4326, null=True)  # WGS84

    objects = CommuneQuerySet.as_manager()

    class Meta:
        verbose_name = _("commune")
        verbose_name_plural = _("communes")
        ordering = ["name", "code"]
        indexes = [
            models.Index(fields=["department", "kind"], name="commune_dept_kind_idx"),
            GinIndex(fields=["postal_codes"], name="commune_postal_codes_gin"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(geom__isvalid=True), name="commune_geom_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.department_id})"

    @property
    def label(self) -> str:
        postal = self.postal_codes[0] if self.postal_codes else self.department_id
        return f"{self.name} ({postal})"
