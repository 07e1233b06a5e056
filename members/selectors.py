"""Reads on members: who is in the team, who is a member, the member list, the current season."""

from __future__ import annotations

import datetime as dt

from django.contrib.postgres.expressions import ArraySubquery
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import permissions
from contracts.models import Contract, Subscription
from directory.models import Amap, AmapManager

from .models import Adhesion, AdhesionSeason, Membership

# A subscription that takes part in the season (waiting or cancelled ones do not).
LIVE_SUBSCRIPTION = (Subscription.Status.PENDING, Subscription.Status.MEMBER_SIGNED, Subscription.Status.SIGNED)


def _authenticated(user) -> bool:
    return bool(user is not None and getattr(user, "is_authenticated", False) and user.is_active)


def is_team(user, amap: Amap) -> bool:
    """The AMAP's admins and référents (and staff): they see members' details and write to them."""
    if permissions.is_platform_staff(user):
        return True
    return permissions.amap_role(user, amap) is not None


def is_admin(user, amap: Amap) -> bool:
    return permissions.can_manage_amap(user, amap)


def membership_of(*, user, amap: Amap) -> Membership | None:
    if not _authenticated(user):
        return None
    return Membership.objects.filter(amap=amap, user=user).first()


def season_current(*, amap: Amap, today: dt.date | None = None) -> AdhesionSeason | None:
    """The season running today, else the next one to start."""
    today = today or timezone.localdate()
    seasons = AdhesionSeason.objects.filter(amap=amap, ends_on__gte=today).prefetch_related("tiers")
    return seasons.filter(starts_on__lte=today).order_by("-starts_on").first() or seasons.order_by("starts_on").first()


def open_contracts(*, amap: Amap) -> QuerySet[Contract]:
    return Contract.objects.open_for_subscription().of_amap(amap.pk).select_related("farm").order_by("title", "pk")


def membership_refusal(*, user, contract: Contract) -> str | None:
    """The gate contracts asks (contracts.gates): a paid adhésion of the season running on the contract's start."""
    if not _authenticated(user):
        return _("Connectez-vous pour souscrire.")
    paid = Adhesion.objects.filter(
        membership__amap_id=contract.amap_id,
        membership__user=user,
        membership__status=Membership.Status.ACTIVE,
        status=Adhesion.Status.PAID,
        season__ends_on__gte=max(contract.season_start, timezone.localdate()),
        season__starts_on__lte=contract.season_end,
    )
    if paid.exists():
        return None
    return _("Ce contrat est réservé aux membres de l'AMAP dont l'adhésion de la saison est réglée.")


ROLE_MEMBER = "member"
ROLE_CHOICES = (
    (AmapManager.Role.ADMIN, _("administrateur·rice")),
    (AmapManager.Role.REFERENT, _("référent·e")),
    (ROLE_MEMBER, _("membre")),
)
ADHESION_FILTERS = ("paid", "unpaid", "none")


def member_list(
    *,
    amap: Amap,
    query: str = "",
    contract_id: int | None = None,
    adhesion: str = "",
    role: str = "",
    status: str = "",
    season: AdhesionSeason | None = None,
) -> QuerySet[Membership]:
    """The AMAP's members for its team, in a fixed number of queries whatever their number.

    Annotated: `team_role` (admin / référent / None) and `adhesion_status` for `season`;
    `contract_titles` (this AMAP's contracts the member takes part in).
    """
    role_sq = AmapManager.objects.filter(amap_id=amap.pk, user_id=OuterRef("user_id")).values("role")[:1]
    # The titles of this AMAP's contracts the member takes part in, as one array per row: measured
    # at 300 members, a prefetch of the subscriptions cost ~100 ms of model building, this ~5 ms.
    titles_sq = (
        Subscription.objects.filter(
            member_id=OuterRef("user_id"), contract__amap_id=amap.pk, status__in=LIVE_SUBSCRIPTION
        )
        .order_by("contract__title")
        .values("contract__title")
    )
    members = (
        Membership.objects.filter(amap=amap)
        .select_related("user")
        .annotate(team_role=Subquery(role_sq), contract_titles=ArraySubquery(titles_sq))
    )
    if season is not None:
        adhesion_sq = Adhesion.objects.filter(membership_id=OuterRef("pk"), season_id=season.pk)
        members = members.annotate(
            adhesion_status=Subquery(adhesion_sq.values("status")[:1]),
            adhesion_id=Subquery(adhesion_sq.values("pk")[:1]),
        )
        if adhesion in ("paid", "unpaid"):
            members = members.filter(adhesion_status=adhesion)
        elif adhesion == "none":
            members = members.filter(adhesion_status__isnull=True)
    if status in Membership.Status.values:
        members = members.filter(status=status)
    else:
        members = members.exclude(status=Membership.Status.LEFT)
    if query:
        words = query.split()[:5]
        for word in words:
            members = members.filter(
                Q(first_name__icontains=word)
                | Q(last_name__icontains=word)
                | Q(email__icontains=word)
                | Q(user__display_name__icontains=word)
            )
    if contract_id:
        members = members.filter(
            Exists(
                Subscription.objects.filter(
                    member_id=OuterRef("user_id"), contract_id=contract_id, status__in=LIVE_SUBSCRIPTION
                )
            )
        )
    if role in (AmapManager.Role.ADMIN, AmapManager.Role.REFERENT):
        members = members.filter(team_role=role)
    elif role == ROLE_MEMBER:
        members = members.filter(team_role__isnull=True)
    return members.order_by("last_name", "first_name", "pk")  # stable for export and pages


def memberships_of_user(*, user) -> QuerySet[Membership]:
    return Membership.objects.filter(user=user).exclude(status=Membership.Status.LEFT).select_related("amap")


def adhesions_of_user(*, user) -> QuerySet[Adhesion]:
    return Adhesion.objects.filter(membership__user=user).select_related("season", "membership__amap")


def require_team(user, amap) -> None:
    """PermissionDenied unless `user` is on the AMAP's team (its admins and référents)."""
    if not is_team(user, amap):
        raise PermissionDenied(_("Réservé à l'équipe de l'AMAP (administrateur·rices et référent·es)."))
