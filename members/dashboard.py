"""« Mes AMAP » in the account dashboard: the person's memberships and adhésions."""

from accounts.dashboard import register_section

from . import selectors


def _context(*, user) -> dict:
    memberships = list(selectors.memberships_of_user(user=user))
    adhesions = list(selectors.adhesions_of_user(user=user).order_by("-season__starts_on", "pk")[:20])
    return {"memberships": memberships, "adhesions": adhesions}


def register() -> None:
    register_section(name="members", position=25, template_name="members/dashboard/section.html", context=_context)
