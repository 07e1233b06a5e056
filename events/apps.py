from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class EventsConfig(AppConfig):
    name = "events"
    verbose_name = _("Permanences et évènements")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from contracts import hooks

        from . import audiences, dashboard, feeds, privacy

        # Who is on duty, on the contracts' distribution sheet; shifts and events in the member's feed.
        hooks.register_delivery_sheet_section(
            name="events.on_duty", position=10, template_name="events/_on_duty.html", context=feeds.sheet_context
        )
        hooks.register_member_feed_source(name="events.shifts_and_events", components=feeds.member_components)
        dashboard.register()  # « Mes permanences » in accounts' dashboard
        audiences.register()  # « les permanents de la semaine » for members' messages
        privacy.register()  # « Mes données » and the erasure: answers to events, shifts
