from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ContractsConfig(AppConfig):
    name = "contracts"
    verbose_name = _("Contrats")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from directory.signals import demo_clearing

        from . import dashboard

        dashboard.register()  # « Mes contrats » in accounts' dashboard
        # Contracts protect their AMAP and farm: `load_demo --clear` removes the demo ones first.
        demo_clearing.connect(_demo_contracts_clear, dispatch_uid="contracts.demo_contracts_clear")


def _demo_contracts_clear(**kwargs) -> dict[str, int]:
    from .demo import demo_contracts_clear  # the demo's code (numpy, scipy) loads only when used

    return {"contracts": demo_contracts_clear()}
