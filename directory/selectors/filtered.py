"""Reads on the directory through the ORM: AMAPs and farms by filter, and pages of them by name.

The maps and the API's pages without a point use these; a search around a point is `nearest`.
"""

import functools
from dataclasses import dataclass

from django.contrib.gis.db.models import GeometryField
from django.contrib.gis.geos import Point, Polygon
from django.contrib.gis.measure import D
from django.contrib.postgres.aggregates import JSONBAgg
from django.db.models import Exists, OuterRef, QuerySet, Subquery
from django.db.models.functions import Cast, JSONObject

from ..models import Amap, Farm, Network, ProductCategory

# Filters on related rows are EXISTS on the link table against the related id (a one-row
# subquery on the slug): rows stay unique and, unlike a join on the slug, the planner then
# keeps walking the location index in KNN order and checks each row as it comes.


def _with_products(queryset: QuerySet, products: list[str]) -> QuerySet:
    """Rows offering every listed product."""
    through = queryset.model.products.through
    owner = "amap_id" if queryset.model is Amap else "farm_id"
    for slug in products:
        category_id = Subquery(ProductCategory.objects.filter(slug=slug).order_by().values("id")[:1])
        queryset = queryset.filter(
            Exists(through.objects.filter(**{owner: OuterRef("pk"), "productcategory_id": category_id}))
        )
    return queryset


def _with_network(queryset: QuerySet, network: str) -> QuerySet:
    through = queryset.model.networks.through
    owner = "amap_id" if queryset.model is Amap else "farm_id"
    network_id = Subquery(Network.objects.filter(slug=network).order_by().values("id")[:1])
    return queryset.filter(Exists(through.objects.filter(**{owner: OuterRef("pk"), "network_id": network_id})))


def _in_bbox(queryset: QuerySet, field: str, bbox: tuple[float, float, float, float]) -> QuerySet:
    # A viewport is a lon/lat rectangle; a geography polygon would have great-circle edges
    # that bulge north of the lines of latitude, so compare as planar lon/lat geometry.
    return queryset.annotate(_bbox_point=Cast(field, GeometryField(srid=4326))).filter(
        _bbox_point__coveredby=Polygon.from_bbox(bbox)
    )


def _filtered(
    entries: QuerySet,
    *,
    location: str,
    point: Point | None,
    radius_km: float | None,
    products: list[str] | None,
    network: str | None,
    bbox: tuple[float, float, float, float] | None,
) -> QuerySet:
    """The filters AMAPs and farms share, tested on `location`, the point each is searched at."""
    if radius_km is not None:
        if point is None:
            raise ValueError("radius_km needs a point")
        entries = entries.filter(**{f"{location}__dwithin": (point, D(km=radius_km))})  # geography: true metres
    if products:
        entries = _with_products(entries, products)
    if network:
        entries = _with_network(entries, network)
    if bbox is not None:
        entries = _in_bbox(entries, location, bbox)
    return entries


def amaps_filtered(
    *,
    point: Point | None = None,
    radius_km: float | None = None,
    products: list[str] | None = None,
    weekday: int | None = None,
    accepting: bool | None = None,
    network: str | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    include_inactive: bool = False,
) -> QuerySet[Amap]:
    """AMAPs matching the filters, unordered. `radius_km` needs `point`; products must all be offered."""
    amaps = Amap.objects.all() if include_inactive else Amap.objects.active()
    if weekday is not None:
        amaps = amaps.delivering_on(weekday)
    if accepting is True:
        amaps = amaps.accepting_members()
    elif accepting is False:
        amaps = amaps.exclude(accepting_members=Amap.Accepting.OPEN)
    return _filtered(
        amaps, location="location", point=point, radius_km=radius_km, products=products, network=network, bbox=bbox
    )


def farms_filtered(
    *,
    point: Point | None = None,
    radius_km: float | None = None,
    products: list[str] | None = None,
    network: str | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    include_inactive: bool = False,
) -> QuerySet[Farm]:
    """Farms matching the filters, unordered; every spatial test uses the masked public point.

    The exact `location` is deferred: it is private and never needed for a public answer.
    """
    farms = (Farm.objects.all() if include_inactive else Farm.objects.active()).defer("location")
    if point is not None or bbox is not None:
        farms = farms.exclude(public_location=None)
    return _filtered(
        farms,
        location="public_location",
        point=point,
        radius_km=radius_km,
        products=products,
        network=network,
        bbox=bbox,
    )


def _with_commune(queryset: QuerySet) -> QuerySet:
    # Joined in the search query itself (one row each, by primary key); the outline is large
    # and never shown in a result list.
    return queryset.select_related("commune").defer("commune__geom", "commune__point", "commune__search_name")


@dataclass(frozen=True, slots=True)
class ProductRef:
    """A product as a result list shows it (`str()` is its name)."""

    slug: str
    name: str
    family: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class NetworkRef:
    """A network as a result list shows it (`str()` is its name)."""

    slug: str
    name: str

    def __str__(self) -> str:
        return self.name


@functools.cache
def _related_lists(model) -> JSONObject:
    """Each row's products and networks as one JSON document, for `model` (Amap or Farm).

    Built once per model: annotate() resolves a copy each time, and building these querysets
    costs a search as much as running it.
    """
    owner_field = "amap_id" if model is Amap else "farm_id"
    products = (
        model.products.through.objects.filter(**{owner_field: OuterRef("pk")})
        .order_by()
        .values(owner_field)
        .annotate(
            rows=JSONBAgg(
                JSONObject(
                    slug="productcategory__slug", name="productcategory__name", family="productcategory__family"
                ),
                order_by=("productcategory__position", "productcategory__name"),
            )
        )
        .values("rows")
    )
    networks = (
        model.networks.through.objects.filter(**{owner_field: OuterRef("pk")})
        .order_by()
        .values(owner_field)
        .annotate(rows=JSONBAgg(JSONObject(slug="network__slug", name="network__name"), order_by=("network__name",)))
        .values("rows")
    )
    return JSONObject(products=Subquery(products), networks=Subquery(networks))


def _with_related_lists(queryset: QuerySet) -> QuerySet:
    """The products and networks of each row computed in the search query itself.

    Postgres evaluates these subqueries only for the rows the LIMIT lets through, and the
    results need no second and third round trip nor Django's per-object prefetch machinery
    (which cost more than the nearest search itself).
    """
    return queryset.annotate(related_lists=_related_lists(queryset.model))


def _attach_related_lists(rows: list) -> None:
    """`product_list` and `network_list` on each row: what a result list shows."""
    for row in rows:
        related = row.related_lists
        row.product_list = [ProductRef(**product) for product in related["products"] or ()]
        row.network_list = [NetworkRef(**network) for network in related["networks"] or ()]


def _page(entries: QuerySet, *, limit: int, offset: int) -> list:
    """A page of `entries` by name, each with its commune, product and network lists (`distance_m` is None)."""
    ordered = _with_related_lists(_with_commune(entries)).order_by("name", "pk")  # stable pages
    rows = list(ordered[offset : offset + limit])
    for row in rows:
        row.distance_m = None
    _attach_related_lists(rows)
    return rows


def amaps_page(*, limit: int = 10, offset: int = 0, **filters) -> list[Amap]:
    """AMAPs matching the filters (`amaps_filtered`) without a point, by name."""
    return _page(amaps_filtered(**filters), limit=limit, offset=offset)


def farms_page(*, limit: int = 10, offset: int = 0, **filters) -> list[Farm]:
    """Farms matching the filters (`farms_filtered`) without a point, by name."""
    return _page(farms_filtered(**filters), limit=limit, offset=offset)
