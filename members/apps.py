from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MembersConfig(AppConfig):
    name = "members"
    verbose_name = _("Adhérent·es")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from contracts.gates import register_membership_check

        from . import audiences, dashboard, privacy, selectors

        dashboard.register()  # « Mes AMAP » in accounts' dashboard
        privacy.register()  # « Mes données » and the erasure
        audiences.register_builtin()  # everyone, a contract's subscribers, the waiting list
        # A contract that requires membership asks us, through the gate contracts defines.
        register_membership_check("members.paid_adhesion", selectors.membership_refusal)
