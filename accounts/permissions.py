"""Object-level permission checks, used by pages, API and services alike.

Roles come from the directory's own relations, so there is one place to grant them:
- a farm's managers (`Farm.managers`) manage the farm and post its annonces;
- an AMAP's managers (`Amap.managers`, each with a role): its admins edit the AMAP's entry
  and see all its contracts; its référents post annonces and run the contracts they are
  référent of; both contact farms;
- a network's admins (`Network.admins`) are its coordinators: they moderate annonces and
  directory entries in the network's territory (its départements and régions, its drawn
  territory, or an organisation that belongs to it), and receive messages for entries nobody
  else can receive (whether someone coordinates a given network, which the floors above accounts
  need too: `directory.selectors.network.is_coordinator`);
- staff (`is_staff`) may do all of it.

Functions take duck-typed objects (anything with `.managers`, `.networks`…): `accounts`
imports no other app.
"""

from __future__ import annotations


def _is_authenticated(user) -> bool:
    return bool(user is not None and getattr(user, "is_authenticated", False) and user.is_active)


def is_platform_staff(user) -> bool:
    return _is_authenticated(user) and bool(user.is_staff)


def user_manages(user, organisation) -> bool:
    """True when `user` manages this farm or AMAP (or is staff)."""
    if organisation is None or not _is_authenticated(user):
        return False
    if user.is_staff:
        return True
    if organisation.pk is None:
        return False
    return organisation.managers.filter(pk=user.pk).exists()


AMAP_ADMIN = "admin"
AMAP_REFERENT = "referent"


def amap_role(user, amap) -> str | None:
    """The user's role in this AMAP ("admin" or "referent"), or None."""
    if amap is None or amap.pk is None or not _is_authenticated(user):
        return None
    return amap.manager_roles.filter(user_id=user.pk).values_list("role", flat=True).first()


def can_manage_farm(user, farm) -> bool:
    return user_manages(user, farm)


def can_manage_amap(user, amap) -> bool:
    """Edit the AMAP's directory entry and its team: the AMAP's admins (or staff)."""
    if is_platform_staff(user):
        return True
    return amap_role(user, amap) == AMAP_ADMIN


def can_act_for_amap(user, amap) -> bool:
    """Post annonces and contracts in the AMAP's name: its admins and référents (or staff)."""
    return user_manages(user, amap)


def can_edit_annonce(user, annonce) -> bool:
    """Edit, pause, close, mark a partnership: the managers of the publishing farm or AMAP."""
    return user_manages(user, annonce.farm if annonce.farm_id else annonce.amap)


def network_holds(network, *, commune, point, owner=None) -> bool:
    """True when the place lies in the network's territory (its départements, régions or drawn
    polygon) or its `owner` (a farm or AMAP) belongs to the network."""
    if owner is not None and getattr(owner, "pk", None) is not None and owner.networks.filter(pk=network.pk).exists():
        return True
    if commune is not None:
        if network.departments.filter(code=commune.department_id).exists():
            return True
        if network.regions.filter(code=commune.region_id).exists():
            return True
    territory = network.custom_territory
    if territory is not None and point is not None:
        return territory.contains(point)
    return False


def network_covers_annonce(network, annonce) -> bool:
    """True when the annonce lies in the network's territory or its publisher belongs to the network."""
    owner = annonce.farm if annonce.farm_id else annonce.amap
    return network_holds(network, commune=annonce.commune, point=annonce.public_location, owner=owner)


def entry_point(entry):
    """Where an entry is for territory checks: a farm's public (masked) point, an AMAP's place."""
    point = getattr(entry, "public_location", None)
    return point if point is not None else getattr(entry, "location", None)


def network_covers_entry(network, entry) -> bool:
    """A farm, an AMAP or a pending request (anything with .commune, a point and .networks)."""
    owner = getattr(entry, "entry", entry)  # a change request speaks for its entry, if any
    return network_holds(network, commune=entry.commune, point=entry_point(entry), owner=owner)


def coordinates_entry(user, entry) -> bool:
    """Coordinators (admins) of a network whose territory holds the entry; staff everywhere."""
    if not _is_authenticated(user):
        return False
    if user.is_staff:
        return True
    return any(network_covers_entry(network, entry) for network in user.administered_networks.all())


def manages_entry(user, entry) -> bool:
    """The entry's admins: an AMAP's admins, a farm's managers (or staff)."""
    if hasattr(entry, "manager_roles"):
        return can_manage_amap(user, entry)
    return can_manage_farm(user, entry)


def can_edit_entry(user, entry) -> bool:
    """Change an entry directly, without moderation: its admins and the territory's coordinators."""
    return manages_entry(user, entry) or coordinates_entry(user, entry)


def can_see_entry_history(user, entry) -> bool:
    return can_edit_entry(user, entry)


def can_moderate_annonce(user, annonce) -> bool:
    """Network admins moderate annonces in their territory; staff everywhere."""
    if not _is_authenticated(user):
        return False
    if user.is_staff:
        return True
    return any(network_covers_annonce(network, annonce) for network in user.administered_networks.all())


def can_see_matches(user, annonce) -> bool:
    """Matches reveal distances from a farm's private point: publishers and moderators only."""
    return can_edit_annonce(user, annonce) or can_moderate_annonce(user, annonce)


def can_read_thread(user, thread) -> bool:
    """The person who started it, and the managers of either side."""
    if not _is_authenticated(user):
        return False
    if user.is_staff or thread.started_by_id == user.pk:
        return True
    if any(user_manages(user, org) for org in (thread.recipient, thread.sender) if org is not None):
        return True
    # Coordinators of a network the message was relayed to (the entry had nobody to receive it).
    return thread.relayed_to.filter(admins=user).exists()


# Contracts. `contract` has .amap, .farm, .referent_id; `subscription` has .contract, .member_id.


def can_manage_contract(user, contract) -> bool:
    """Set up, publish, run deliveries, see every subscriber: the référent, the AMAP's admins, staff."""
    if not _is_authenticated(user):
        return False
    if user.is_staff or contract.referent_id == user.pk:
        return True
    return amap_role(user, contract.amap) == AMAP_ADMIN


def can_farm_contract(user, contract) -> bool:
    """The farm's managers: see their contracts, deliveries and subscribers, sign as the farmer."""
    return _is_authenticated(user) and contract.farm.managers.filter(pk=user.pk).exists()


def can_view_contract(user, contract) -> bool:
    """Managers and the farmer always; its subscribers; anyone logged in while it is open for subscription."""
    if not _is_authenticated(user):
        return False
    if can_manage_contract(user, contract) or can_farm_contract(user, contract):
        return True
    if contract.status == "open":
        return True
    return contract.subscriptions.filter(member_id=user.pk).exists()


def can_view_subscription(user, subscription) -> bool:
    """The member, the contract's managers and the farmer."""
    if not _is_authenticated(user):
        return False
    if subscription.member_id is not None and subscription.member_id == user.pk:
        return True
    contract = subscription.contract
    return can_manage_contract(user, contract) or can_farm_contract(user, contract)


def can_sign_as_farmer(user, subscription) -> bool:
    return can_farm_contract(user, subscription.contract)


def can_see_contract_subscribers(user, contract) -> bool:
    """Subscribers, deliveries, distribution sheets and summaries: the contract's managers and the farmer."""
    return can_manage_contract(user, contract) or can_farm_contract(user, contract)


def can_mark_delivery(user, contract) -> bool:
    """Mark a delivery done, postponed or cancelled (aléa): the contract's managers and the farmer."""
    return can_manage_contract(user, contract) or can_farm_contract(user, contract)
