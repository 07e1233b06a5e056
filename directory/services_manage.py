"""Writes behind "Ma ferme" and "Mon AMAP": create or edit what the directory shows, managers only."""

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from accounts import permissions

from .models import Amap, AmapManager, Farm

_FARM_FIELDS = (
    "name",
    "product_details",
    "labels",
    "delivery_radius_km",
    "capacity_shares",
    "description",
    "website",
    "contact_email",
    "private_email",
    "phone",
)
_AMAP_FIELDS = (
    "name",
    "delivery_weekdays",
    "delivery_start",
    "delivery_end",
    "delivery_frequency",
    "delivery_notes",
    "accepting_members",
    "member_count",
    "description",
    "website",
    "contact_email",
    "private_email",
    "phone",
)


def _place(obj, *, address: str, candidate) -> None:
    obj.address = address
    obj.location = candidate.point
    obj.location_precision = candidate.precision
    if candidate.commune is not None:
        obj.commune = candidate.commune
        if candidate.commune.postal_codes and not obj.postal_code:
            obj.postal_code = candidate.commune.postal_codes[0]


@transaction.atomic
def farm_save(*, user, data: dict, farm: Farm | None = None, candidate=None) -> Farm:
    """Create a farm managed by `user`, or update one they run or coordinate; a new address moves its point."""
    if farm is None:
        if not getattr(user, "is_authenticated", False):
            raise PermissionDenied(_("Connectez-vous pour déclarer une ferme."))
    elif not permissions.can_edit_entry(user, farm):
        raise PermissionDenied(_("Vous ne gérez pas cette ferme."))
    created = farm is None
    farm = farm_write(farm=farm, data=data, candidate=candidate)
    if created:
        farm.managers.add(user)
    return farm


def farm_write(*, farm: Farm | None, data: dict, candidate=None) -> Farm:
    """Write the form's values on a farm (a new one when None); callers check who may."""
    if farm is None:
        farm = Farm(source="manual")
    for name in _FARM_FIELDS:
        if name in data:
            setattr(farm, name, data[name])
    if candidate is not None:
        farm.postal_code = ""
        _place(farm, address=data.get("address", ""), candidate=candidate)
    farm.public_location = farm.compute_public_location()  # checked by a constraint in full_clean
    farm.full_clean(exclude=["products", "managers", "networks", "commune"])
    farm.save()  # recomputes the public (masked) point
    if "products" in data:
        farm.products.set(data["products"])
    return farm


@transaction.atomic
def amap_save(*, user, data: dict, amap: Amap | None = None, candidate=None) -> Amap:
    """Create an AMAP administered by `user`, or update one they administer or coordinate."""
    if amap is None:
        if not getattr(user, "is_authenticated", False):
            raise PermissionDenied(_("Connectez-vous pour déclarer une AMAP."))
        if candidate is None:
            raise ValueError("a new AMAP needs its delivery place")
    elif not permissions.can_edit_entry(user, amap):
        raise PermissionDenied(_("Vous ne gérez pas cette AMAP."))
    created = amap is None
    amap = amap_write(amap=amap, data=data, candidate=candidate)
    if created:
        AmapManager.objects.get_or_create(amap=amap, user=user, defaults={"role": AmapManager.Role.ADMIN})
    return amap


def amap_write(*, amap: Amap | None, data: dict, candidate=None) -> Amap:
    """Write the form's values on an AMAP (a new, active one when None); callers check who may."""
    if amap is None:
        if candidate is None:
            raise ValueError("a new AMAP needs its delivery place")
        amap = Amap(source="manual", status=Amap.Status.ACTIVE)
    for name in _AMAP_FIELDS:
        if name in data:
            setattr(amap, name, data[name])
    if candidate is not None:
        amap.postal_code = ""
        _place(amap, address=data.get("address", ""), candidate=candidate)
    amap.delivery_weekdays = sorted(set(amap.delivery_weekdays or []))
    amap.full_clean(exclude=["products", "managers", "networks"])
    amap.save()
    if "products" in data:
        amap.products.set(data["products"])
    return amap


@transaction.atomic
def amap_team_set(*, user, amap: Amap, email: str, role: str) -> None:
    """Give an existing account a role in the AMAP (admin or référent); AMAP admins only."""
    if not permissions.can_manage_amap(user, amap):
        raise PermissionDenied(_("Seuls les administrateur·rices de l'AMAP gèrent son équipe."))
    if role not in AmapManager.Role.values:
        raise ValidationError({"role": [_("Rôle inconnu.")]})
    person = get_user_model().objects.filter(email__iexact=(email or "").strip(), is_active=True).first()
    if person is None:
        raise ValidationError(
            {"email": [_("Aucun compte n'utilise cette adresse : la personne doit d'abord s'inscrire.")]}
        )
    if role != AmapManager.Role.ADMIN and _is_last_admin(amap=amap, person=person):
        raise ValidationError({"role": [_("L'AMAP doit garder au moins un·e administrateur·rice.")]})
    AmapManager.objects.update_or_create(amap=amap, user=person, defaults={"role": role})


@transaction.atomic
def amap_team_remove(*, user, amap: Amap, person_id: int) -> None:
    """Take someone off the AMAP's team; the last admin stays."""
    if not permissions.can_manage_amap(user, amap):
        raise PermissionDenied(_("Seuls les administrateur·rices de l'AMAP gèrent son équipe."))
    membership = AmapManager.objects.filter(amap=amap, user_id=person_id).select_related("user").first()
    if membership is None:
        return
    if _is_last_admin(amap=amap, person=membership.user):
        raise ValidationError({"role": [_("L'AMAP doit garder au moins un·e administrateur·rice.")]})
    membership.delete()


def _is_last_admin(*, amap: Amap, person) -> bool:
    admins = AmapManager.objects.select_for_update().filter(amap=amap, role=AmapManager.Role.ADMIN)
    return list(admins.values_list("user_id", flat=True)) == [person.pk]
