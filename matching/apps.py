from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MatchingConfig(AppConfig):
    name = "matching"
    verbose_name = _("Mise en relation")

    def ready(self):
        from . import privacy, services

        privacy.register()
        services.connect_signals()

        from . import dashboard

        dashboard.register()  # annonces, messages, alerts in accounts' dashboard
