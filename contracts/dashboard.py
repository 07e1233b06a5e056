"""The contracts' section of « Mon espace »: links to the person's contracts, deliveries and data."""

from accounts.dashboard import register_section


def register() -> None:
    register_section(name="contracts.links", position=30, template_name="contracts/dashboard/contracts.html")
