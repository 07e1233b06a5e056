"""The contracts' sections of « Mon espace »: links to the person's contracts, deliveries and data,
and the farmer's « À contresigner » with its count."""

from accounts.dashboard import register_section


def _countersign_context(*, user) -> dict:
    from .selectors import subscriptions_awaiting_countersignature  # models load after the app registry

    farms = user.managed_farms.exists() if getattr(user, "is_authenticated", False) else False
    count = subscriptions_awaiting_countersignature(user=user).count() if farms else 0
    return {"is_farmer": farms, "countersign_count": count}


def register() -> None:
    register_section(
        name="contracts.links",
        position=30,
        template_name="contracts/dashboard/contracts.html",
        context=_countersign_context,
    )
