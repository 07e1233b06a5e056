from django.db import models
from django.utils.translation import gettext_lazy as _


class JobError(models.Model):
    """One failed attempt of a background job, with the error that stopped it.

    Procrastinate keeps a job's status and events but not the exception; without this
    row a job that failed for good would say « failed » and nothing about why.
    """

    # No database constraint: Procrastinate deletes jobs itself (and may delete a job
    # that failed once and then succeeded); the error row simply outlives it.
    job = models.ForeignKey(
        "procrastinate.ProcrastinateJob",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="errors",
        verbose_name=_("tâche"),
    )
    task_name = models.CharField(_("nom de la tâche"), max_length=128)
    attempt = models.PositiveIntegerField(_("tentative"), help_text=_("1 pour la première exécution"))
    error = models.TextField(_("erreur"))
    traceback = models.TextField(_("trace"), blank=True)
    at = models.DateTimeField(_("date"), auto_now_add=True)

    class Meta:
        ordering = ["-at", "-pk"]
        verbose_name = _("erreur de tâche")
        verbose_name_plural = _("erreurs de tâches")
        indexes = [models.Index(fields=["job", "-at"], name="jobs_error_job_at")]

    def __str__(self) -> str:
        return f"{self.task_name} #{self.job_id} ({self.attempt}) : {self.error[:80]}"
