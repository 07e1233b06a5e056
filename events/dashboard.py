"""« Mes permanences » in the account dashboard: the person's next shifts and, for each AMAP they
belong to, its shift page and its calendar (the only way a member reaches them)."""

from django.utils import timezone

from accounts.dashboard import register_section

from . import selectors


def _context(*, user) -> dict:
    today = timezone.localdate()
    return {
        "amaps": list(selectors.amaps_of_member(user=user)),
        "next_shifts": list(selectors.shifts_of_member(user=user).filter(date__gte=today)[:5]),
    }


def register() -> None:
    register_section(name="events", position=27, template_name="events/dashboard/section.html", context=_context)
