from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OpsConfig(AppConfig):
    """Running the platform: backups and restores of the whole database (no models of its own)."""

    name = "ops"
    verbose_name = _("Exploitation")
