"""The directory's sections of « Mon espace »: the farms and AMAPs the person manages."""

from accounts.dashboard import register_section


def _farms(*, user) -> dict:
    return {"farms": user.managed_farms.order_by("name")}


def _amaps(*, user) -> dict:
    return {"amap_roles": user.amap_roles.select_related("amap").order_by("amap__name", "amap_id")}


def _networks(*, user) -> dict:
    from .selectors.network import coordinated_networks

    return {"networks": coordinated_networks(user=user)[:50]}


def register() -> None:
    register_section(
        name="directory.farms", position=10, template_name="directory/dashboard/farms.html", context=_farms
    )
    register_section(
        name="directory.amaps", position=20, template_name="directory/dashboard/amaps.html", context=_amaps
    )
    # Coordinators (and staff) reach their network's space, and staff network creation, from here.
    register_section(
        name="directory.networks",
        position=5,
        template_name="directory/dashboard/networks.html",
        context=_networks,
    )
