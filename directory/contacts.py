"""Who receives a message written to a farm or an AMAP, said before it is sent.

In order: the entry's people on the platform (an AMAP's team, a farm's managers); else its contact
address (private first; the sender never sees it, the reply comes back through the platform); else
the coordinators of the network(s) whose territory holds it, who pass it on; else nobody, and the
page says so instead of offering to send.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Q
from django.utils.translation import gettext as _

from accounts import permissions

from .models import Amap, Network

TEAM = "team"
ADDRESS = "address"
NETWORK = "network"
NOBODY = "none"

# Most local first: a départemental network knows its AMAPs better than the national one.
_LEVEL_RANK = {
    Network.Level.LOCAL: 0,
    Network.Level.DEPARTMENTAL: 1,
    Network.Level.REGIONAL: 2,
    Network.Level.NATIONAL: 3,
}


def networks_holding(*, commune, point, member_of=()) -> list[Network]:
    """Networks whose territory (départements, régions, drawn polygon) holds the place, or that
    the entry belongs to; national networks without a territory hold everything."""
    condition = Q(pk__in=[n.pk for n in member_of])
    if commune is not None:
        condition |= Q(departments=commune.department_id) | Q(regions=commune.region_id)
    if point is not None:
        condition |= Q(custom_territory__contains=point)
    condition |= Q(
        level=Network.Level.NATIONAL, departments__isnull=True, regions__isnull=True, custom_territory__isnull=True
    )
    return list(Network.objects.filter(condition).distinct().order_by("name", "pk"))


def entry_networks(entry) -> list[Network]:
    """The networks whose territory holds this farm, AMAP or pending request."""
    owner = getattr(entry, "entry", entry)
    member_of = list(owner.networks.all()) if owner is not None and owner.pk is not None else []
    return networks_holding(commune=entry.commune, point=permissions.entry_point(entry), member_of=member_of)


def entry_coordinator_networks(entry) -> list[Network]:
    """The closest networks holding the entry that have coordinators: they moderate it and relay
    its messages (its own networks first, then the most local level)."""
    owner = getattr(entry, "entry", entry)
    own = {n.pk for n in owner.networks.all()} if owner is not None and owner.pk is not None else set()
    staffed = [n for n in entry_networks(entry) if n.admins.filter(is_active=True).exists()]
    if not staffed:
        return []

    def rank(network):
        return (0 if network.pk in own else 1, _LEVEL_RANK.get(network.level, 9))

    best = min(rank(n) for n in staffed)
    return [n for n in staffed if rank(n) == best]


def team_emails(entry, *, exclude_user=None) -> list[str]:
    users = entry.managers.filter(is_active=True) if entry.pk is not None else []
    if exclude_user is not None and users:
        users = users.exclude(pk=exclude_user.pk)
    return sorted({u.email for u in users if u.email})


def coordinator_emails(networks, *, exclude_user=None) -> list[str]:
    emails = set()
    for network in networks:
        for user in network.admins.filter(is_active=True):
            if user.email and (exclude_user is None or user.pk != exclude_user.pk):
                emails.add(user.email)
    return sorted(emails)


def entry_address(entry) -> str:
    """The address a message or a claim code goes to: the private one, else the public one."""
    return (getattr(entry, "private_email", "") or getattr(entry, "contact_email", "") or "").strip()


@dataclass(frozen=True)
class ContactRoute:
    entry: object
    kind: str
    emails: tuple[str, ...] = ()
    networks: tuple[Network, ...] = field(default_factory=tuple)

    @property
    def reachable(self) -> bool:
        return self.kind != NOBODY and bool(self.emails)

    @property
    def network_names(self) -> str:
        return ", ".join(str(n) for n in self.networks)

    def notice(self) -> str:
        """What the sender is told before sending."""
        this = _("Cette AMAP") if isinstance(self.entry, Amap) else _("Cette ferme")
        if self.kind == TEAM:
            return _("Votre message sera envoyé à l'équipe de « %(name)s » sur AMAP Atlas.") % {"name": self.entry}
        if self.kind == ADDRESS:
            return _(
                "%(this)s n'a pas encore de compte : votre message sera envoyé à son adresse de contact "
                "(que vous ne verrez pas), avec un lien pour vous répondre ici."
            ) % {"this": this}
        if self.kind == NETWORK:
            return _("%(this)s n'a pas de compte : votre message ira au réseau %(networks)s, qui fera suivre.") % {
                "this": this,
                "networks": self.network_names,
            }
        return _(
            "Personne ne peut recevoir de message pour « %(name)s » : pas de compte, pas d'adresse, "
            "et aucun réseau ne couvre son territoire. Le message ne peut pas être envoyé."
        ) % {"name": self.entry}

    def delivery_label(self) -> str:
        """What the sender sees on the message once sent."""
        if self.kind == TEAM:
            return _("envoyé à l'équipe de « %(name)s »") % {"name": self.entry}
        if self.kind == ADDRESS:
            return _("envoyé à l'adresse de « %(name)s »") % {"name": self.entry}
        if self.kind == NETWORK:
            return _("transmis au réseau %(networks)s") % {"networks": self.network_names}
        return ""


def contact_route(entry, *, exclude_user=None) -> ContactRoute:
    """Where a message to this farm or AMAP goes (see the module's docstring)."""
    emails = team_emails(entry, exclude_user=exclude_user)
    if emails:
        return ContactRoute(entry=entry, kind=TEAM, emails=tuple(emails))
    address = entry_address(entry)
    if address:
        return ContactRoute(entry=entry, kind=ADDRESS, emails=(address,))
    networks = entry_coordinator_networks(entry)
    emails = coordinator_emails(networks, exclude_user=exclude_user)
    if emails:
        return ContactRoute(entry=entry, kind=NETWORK, emails=tuple(emails), networks=tuple(networks))
    return ContactRoute(entry=entry, kind=NOBODY)
