"""Stored coverage figures: every web worker reads the same snapshot, computed by a background job.

A snapshot is one network's `coverage_for_network` result for one set of parameters. It is computed
off the request path (coverage/tasks.py) and shown with its date; a directory change marks it stale
(signals, see coverage/cache.py) or changes the directory fingerprint it was computed for (bulk
writes), and the page then shows it as « mise à jour en cours » while a job recomputes it.
"""

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils.translation import gettext_lazy as _

from directory.models import Network


class CoverageSnapshot(models.Model):
    network = models.ForeignKey(Network, on_delete=models.CASCADE, related_name="+", verbose_name=_("réseau"))
    # "<radius_km>:<product or ->:<min_population>", see coverage.snapshots.params_key
    params_key = models.CharField(_("paramètres"), max_length=100)
    params = models.JSONField(_("paramètres (détail)"), default=dict)
    data = models.JSONField(_("chiffres"), encoder=DjangoJSONEncoder, null=True, blank=True)
    # Set instead of `data` when the network's territory has no commune (a message for the page).
    error = models.TextField(_("erreur"), blank=True)
    computed_at = models.DateTimeField(_("calculé le"))
    directory_version = models.CharField(_("version de l'annuaire"), max_length=64)
    stale = models.BooleanField(_("à recalculer"), default=False)
    # Kept up to the day: the nightly refresh recomputes what visitors still ask for.
    requested_at = models.DateTimeField(_("demandé le"), null=True, blank=True)

    class Meta:
        verbose_name = _("chiffres de couverture")
        verbose_name_plural = _("chiffres de couverture")
        constraints = [
            models.UniqueConstraint(fields=["network", "params_key"], name="coverage_snapshot_unique_params")
        ]
        indexes = [models.Index(fields=["stale"], name="coverage_snapshot_stale")]

    def __str__(self) -> str:
        return f"{self.network_id} {self.params_key} ({self.computed_at:%Y-%m-%d %H:%M})"


class CoverageZoneShape(models.Model):
    """One white zone's outline (the union of its communes, WKB in WGS84): the costly part of the
    map's white-zone layer, merged by the job rather than in a request."""

    snapshot = models.ForeignKey(CoverageSnapshot, on_delete=models.CASCADE, related_name="zone_shapes")
    zone = models.PositiveIntegerField()
    wkb = models.BinaryField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["snapshot", "zone"], name="coverage_zone_shape_unique")]

    def __str__(self) -> str:
        return f"{self.snapshot_id} #{self.zone}"
