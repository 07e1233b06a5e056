"""Reads of single entries and their lists: detail pages, networks with their counts and members."""

from django.db.models import Count, OuterRef, Prefetch, QuerySet, Subquery
from django.db.models.functions import Coalesce

from ..models import Amap, Farm, Network, Partnership


def networks_with_counts() -> QuerySet[Network]:
    """Networks with `amap_count` (active AMAPs) and `farm_count` (active farms), by name.

    Each count is its own correlated subquery: joining both relations at once would multiply
    a network's AMAPs by its farms before counting.
    """
    amap_links = (
        Amap.networks.through.objects.filter(network_id=OuterRef("pk"), amap__status=Amap.Status.ACTIVE)
        .order_by()
        .values("network_id")
        .annotate(n=Count("*"))
        .values("n")
    )
    farm_links = (
        Farm.networks.through.objects.filter(network_id=OuterRef("pk"), farm__is_active=True)
        .order_by()
        .values("network_id")
        .annotate(n=Count("*"))
        .values("n")
    )
    return (
        Network.objects.defer("custom_territory")
        .annotate(
            amap_count=Coalesce(Subquery(amap_links), 0),
            farm_count=Coalesce(Subquery(farm_links), 0),
        )
        .prefetch_related("regions", "departments")
        .order_by("name", "pk")  # stable pages
    )


# --- Detail pages (public pages helper) ------------------------------------------------------


def amap_detail(*, pk: int) -> Amap | None:
    """One AMAP (closed ones too: the page says so) with its products, networks and active partners."""
    active_partnerships = Prefetch(
        "partnerships",
        # One join rather than a prefetch of the farms: one query less per page. The exact location
        # stays unread (private).
        queryset=Partnership.objects.active()
        .select_related("product", "farm")
        .defer("farm__location")
        .order_by("farm__name", "product__position", "pk"),
        to_attr="active_partnerships",
    )
    return (
        Amap.objects.select_related("commune__department")
        .defer("commune__geom")
        .prefetch_related("products", _network_refs(), active_partnerships)
        .filter(pk=pk)
        .first()
    )


def _network_refs() -> Prefetch:
    # The pages and the API show a network's name and link only: its territory (a polygon) stays unread.
    return Prefetch("networks", queryset=Network.objects.only("name", "slug"))


def farm_detail(*, pk: int) -> Farm | None:
    """One farm without its exact location (deferred: private), with the AMAPs it supplies."""
    active_partnerships = Prefetch(
        "partnerships",
        queryset=Partnership.objects.active()
        .select_related("amap__commune", "product")
        .defer("amap__commune__geom")
        .order_by("amap__name", "amap__pk", "product__position"),
        to_attr="active_partnerships",
    )
    return (
        Farm.objects.defer("location", "commune__geom")
        .select_related("commune__department")
        .prefetch_related("products", _network_refs(), active_partnerships)
        .filter(pk=pk)
        .first()
    )


def network_detail(*, slug: str):
    """One network with its départements and régions."""
    return (
        Network.objects.prefetch_related("regions", "departments").defer("custom_territory").filter(slug=slug).first()
    )


def network_amaps(*, network) -> QuerySet[Amap]:
    """A network's AMAPs, closed ones included (shown as closed), by name."""
    return (
        network.amaps.select_related("commune")
        .defer("commune__geom")
        .prefetch_related("products")
        .order_by("name", "pk")  # stable pages
    )


def network_farms(*, network) -> QuerySet[Farm]:
    """A network's farms without their exact location (private), by name."""
    return (
        network.farms.defer("location", "commune__geom")
        .select_related("commune")
        .prefetch_related("products")
        .order_by("name", "pk")  # stable pages
    )
