"""Reads of a network's space: the entries of its territory, its counts, its coordinators' view.

Two things are counted, and every page says which one it shows:
- **members**: the AMAPs and farms attached to the network (`Network.amaps`, `Network.farms`),
  whatever their place or status;
- **territory**: the *active* AMAPs and farms of its départements, régions or drawn territory,
  plus its active members outside it — the set the coverage dashboard computes on
  (coverage.selectors.network_amap_rows / network_farm_rows select the same rows).
`network_counts()` is the one selector behind the network page, its coverage page and its space.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.contrib.gis.db.models import PointField
from django.db.models import BooleanField, Count, Exists, ExpressionWrapper, F, OuterRef, Q, QuerySet
from django.db.models.functions import Cast
from django.utils import timezone

from ..models import Amap, AmapManager, ChangeRequest, Farm, Network

# An entry not confirmed for this long is stale: the yearly reminder asks its admins again.
STALE_AFTER = dt.timedelta(days=365)


def _territory_q(network: Network, *, commune: str, point: str) -> Q | None:
    """Rows whose commune or point lies in the network's territory; None for all of France."""
    departments = list(network.departments.values_list("code", flat=True))
    regions = list(network.regions.values_list("code", flat=True))
    polygon = network.custom_territory
    if not departments and not regions and polygon is None:
        return None if network.level == Network.Level.NATIONAL else Q(pk__in=[])
    q = Q(pk__in=[])
    if departments:
        q |= Q(**{f"{commune}__department_id__in": departments})
    if regions:
        q |= Q(**{f"{commune}__region_id__in": regions})
    if polygon is not None:
        q |= Q(**{f"{point}__intersects": polygon})
    return q


def territory_amaps(*, network: Network, active_only: bool = True) -> QuerySet[Amap]:
    """The AMAPs of the network's territory and its member AMAPs (active ones unless told)."""
    where = _territory_q(network, commune="commune", point="location")
    qs = Amap.objects.all() if where is None else Amap.objects.filter(where | Q(pk__in=network.amaps.values("pk")))
    if active_only:
        qs = qs.filter(status=Amap.Status.ACTIVE)
    return qs


def territory_farms(*, network: Network, active_only: bool = True) -> QuerySet[Farm]:
    """The farms of the network's territory (at their public point) and its member farms."""
    where = _territory_q(network, commune="commune", point="public_location")
    qs = Farm.objects.filter(public_location__isnull=False)
    if where is not None:
        qs = qs.filter(where | Q(pk__in=network.farms.values("pk")))
    if active_only:
        qs = qs.filter(is_active=True)
    return qs


@dataclass(frozen=True)
class NetworkCounts:
    member_amaps: int  # attached to the network, any status
    member_farms: int
    territory_amaps: int  # active, in the territory or members
    territory_farms: int


def network_counts(*, network: Network) -> NetworkCounts:
    """Members of the network vs active entries of its territory: the same figures on every page."""
    return NetworkCounts(
        member_amaps=network.amaps.count(),
        member_farms=network.farms.count(),
        territory_amaps=territory_amaps(network=network).count(),
        territory_farms=territory_farms(network=network).count(),
    )


def is_coordinator(user, network: Network) -> bool:
    """A coordinator of the network (one of `Network.admins`) or staff: its space, moderation queue,
    history and events. The one network-level check (territory checks: accounts.permissions)."""
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    return bool(user.is_staff) or network.admins.filter(pk=user.pk).exists()


def pending_requests(*, network: Network) -> QuerySet[ChangeRequest]:
    """The network's moderation queue: pending requests placed in its départements, régions or drawn
    territory, or about an entry that belongs to it — `accounts.permissions.network_covers_entry`'s
    rule, in one query (that rule checks each request in Python: a few queries each)."""
    where = (
        Q(amap_id__in=network.amaps.values("pk"))
        | Q(farm_id__in=network.farms.values("pk"))
        | Q(commune__department_id__in=network.departments.values("code"))
        | Q(commune__region_id__in=network.regions.values("code"))
    )
    pending = ChangeRequest.objects.pending()
    if network.custom_territory is not None:
        # Planar, as GEOS's contains() in the rule: the stored geography point cast to geometry.
        pending = pending.annotate(planar_location=Cast("location", PointField(srid=4326)))
        where |= Q(planar_location__within=network.custom_territory)
    return pending.filter(where)


def pending_request_counts(*, network: Network) -> dict[str, int]:
    """How many requests wait in the network's queue, by kind (`ChangeRequest.Kind`) and in all."""
    counts = dict.fromkeys(ChangeRequest.Kind.values, 0)
    rows = pending_requests(network=network).order_by().values_list("kind").annotate(n=Count("pk"))
    counts.update(rows)
    counts["total"] = sum(counts.values())
    return counts


def coordinated_networks(*, user) -> QuerySet[Network]:
    """The networks whose space this person may open (all of them for staff)."""
    if user.is_staff:
        return Network.objects.defer("custom_territory").order_by("name", "pk")
    return user.administered_networks.defer("custom_territory").order_by("name", "pk")


SORTS = {
    # Never verified first (NULLs first), then the oldest confirmations.
    "fraicheur": (F("verified_at").asc(nulls_first=True), "created_at", "name", "pk"),
    "nom": ("name", "pk"),
    "commune": ("commune__name", "name", "pk"),
    "modifie": ("-updated_at", "pk"),
}


def _with_space_columns(qs: QuerySet, *, stale_before: dt.datetime) -> QuerySet:
    stale = Q(verified_at__isnull=True, created_at__lt=stale_before) | Q(verified_at__lt=stale_before)
    return qs.annotate(is_stale=ExpressionWrapper(stale, output_field=BooleanField()))


def space_amaps(
    *, network: Network, query: str = "", department: str = "", missing_contact: bool = False, sort: str = "fraicheur"
) -> QuerySet[Amap]:
    """The table of AMAPs in a coordinator's space: all statuses, stale entries first by default."""
    stale_before = timezone.now() - STALE_AFTER
    admins = AmapManager.objects.filter(amap=OuterRef("pk"), role=AmapManager.Role.ADMIN)
    qs = (
        territory_amaps(network=network, active_only=False)
        .select_related("commune")
        .defer("commune__geom")
        .annotate(has_admin=Exists(admins))
    )
    qs = _with_space_columns(qs, stale_before=stale_before)
    if query:
        qs = qs.filter(Q(name__icontains=query) | Q(commune__name__icontains=query))
    if department:
        qs = qs.filter(commune__department_id=department)
    if missing_contact:
        qs = qs.filter(contact_email="", phone="", has_admin=False)
    return qs.order_by(*SORTS.get(sort, SORTS["fraicheur"]))


def space_farms(
    *, network: Network, query: str = "", department: str = "", missing_contact: bool = False, sort: str = "fraicheur"
) -> QuerySet[Farm]:
    """The table of farms in a coordinator's space (exact points never read)."""
    stale_before = timezone.now() - STALE_AFTER
    qs = (
        territory_farms(network=network, active_only=False)
        .select_related("commune")
        .defer("location", "commune__geom")
        .annotate(manager_count=Count("managers", distinct=True))
    )
    qs = _with_space_columns(qs, stale_before=stale_before)
    if query:
        qs = qs.filter(Q(name__icontains=query) | Q(commune__name__icontains=query))
    if department:
        qs = qs.filter(commune__department_id=department)
    if missing_contact:
        qs = qs.filter(contact_email="", phone="", manager_count=0)
    return qs.order_by(*SORTS.get(sort, SORTS["fraicheur"]))
