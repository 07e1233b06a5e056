"""Who a network's announcement reaches: the admins, référents and farmers of its territory."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef, Q, QuerySet

from ..models import AmapManager, Announcement, AnnouncementOptOut, Farm
from .network import territory_amaps, territory_farms


def announcement_recipients(*, announcement: Announcement) -> QuerySet:
    """Active accounts in the announcement's audiences, once each, without those who opted out."""
    network = announcement.network
    amaps = territory_amaps(network=network)
    farms = territory_farms(network=network)
    if announcement.department_id:
        amaps = amaps.filter(commune__department_id=announcement.department_id)
        farms = farms.filter(commune__department_id=announcement.department_id)
    if announcement.product_id:
        amaps = amaps.filter(products=announcement.product_id)
        farms = farms.filter(products=announcement.product_id)
    who = Q(pk__in=[])
    roles = {
        Announcement.Audience.ADMINS: AmapManager.Role.ADMIN,
        Announcement.Audience.REFERENTS: AmapManager.Role.REFERENT,
    }
    for audience, role in roles.items():
        if audience in announcement.audiences:
            who |= Q(pk__in=AmapManager.objects.filter(amap__in=amaps.values("pk"), role=role).values("user_id"))
    if Announcement.Audience.FARMERS in announcement.audiences:
        who |= Q(pk__in=Farm.managers.through.objects.filter(farm__in=farms.values("pk")).values("user_id"))
    opted_out = AnnouncementOptOut.objects.filter(user=OuterRef("pk")).filter(
        Q(network__isnull=True) | Q(network=network)
    )
    return (
        get_user_model().objects.filter(who, is_active=True).exclude(email="").filter(~Exists(opted_out)).order_by("pk")
    )
