from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CoverageConfig(AppConfig):
    name = "coverage"
    verbose_name = _("Couverture des réseaux")

    def ready(self):
        # Any change to AMAPs, farms, partnerships or networks invalidates cached coverage: coverage
        # listens to the directory's model signals (the directory does not know coverage exists).
        from .cache import connect_signals

        connect_signals()
