"""Reads on the directory: the one search that serves the pages and the API.

Nearest-N walks the GiST index with the KNN operator (`<->`, sphere distances) to shortlist,
then ranks and displays by exact geodesic distance (WGS84 ellipsoid). `order_by(Distance())`
computes the spheroid distance of every row and is never used here.
"""

import functools
from dataclasses import dataclass

import numpy as np
from django.contrib.gis.db.models import GeometryField
from django.contrib.gis.db.models.functions import GeometryDistance
from django.contrib.gis.geos import Point, Polygon
from django.contrib.gis.measure import D
from django.contrib.postgres.aggregates import JSONBAgg
from django.db.models import Count, Exists, OuterRef, Prefetch, QuerySet, Subquery
from django.db.models.functions import Cast, Coalesce, JSONObject
from pyproj import Geod

from .models import Amap, Farm, Network, ProductCategory

# PostGIS's `<->` on geography measures on a sphere of mean radius; the exact distance is on
# the WGS84 ellipsoid. Between two points the two differ by less than 0.6 % (flattening
# 1/298 ≈ 0.34 % plus the mean-radius choice); we allow 1 % to stay clear of that bound.
SPHERE_ERROR = 0.01
SPHERE_RADIUS_M = 6_371_008.7714  # PostGIS's sphere for geography: the WGS84 mean radius (2a + b) / 3
MAX_SHORTLIST_ROUNDS = 6
_GEOD = Geod(ellps="WGS84")


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
    if radius_km is not None:
        if point is None:
            raise ValueError("radius_km needs a point")
        amaps = amaps.filter(location__dwithin=(point, D(km=radius_km)))  # geography: true metres
    if products:
        amaps = _with_products(amaps, products)
    if weekday is not None:
        amaps = amaps.delivering_on(weekday)
    if accepting is True:
        amaps = amaps.accepting_members()
    elif accepting is False:
        amaps = amaps.exclude(accepting_members=Amap.Accepting.OPEN)
    if network:
        amaps = _with_network(amaps, network)
    if bbox is not None:
        amaps = _in_bbox(amaps, "location", bbox)
    return amaps


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
    if radius_km is not None:
        if point is None:
            raise ValueError("radius_km needs a point")
        farms = farms.filter(public_location__dwithin=(point, D(km=radius_km)))
    if products:
        farms = _with_products(farms, products)
    if network:
        farms = _with_network(farms, network)
    if bbox is not None:
        farms = _in_bbox(farms, "public_location", bbox)
    return farms


def knn_shortlist(queryset: QuerySet, *, field: str, point: Point) -> QuerySet:
    """`queryset` nearest first on the sphere: `<->` walks the GiST index."""
    return queryset.order_by(GeometryDistance(field, point))


def _sphere_m(point: Point, lons: np.ndarray, lats: np.ndarray) -> np.ndarray:
    """Great-circle metres on PostGIS's sphere (haversine), as `<->` measures on geography."""
    lon0, lat0, lons, lats = np.radians(point.x), np.radians(point.y), np.radians(lons), np.radians(lats)
    h = np.sin((lats - lat0) / 2) ** 2 + np.cos(lat0) * np.cos(lats) * np.sin((lons - lon0) / 2) ** 2
    return 2 * SPHERE_RADIUS_M * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))


def _nearest(queryset: QuerySet, *, field: str, point: Point, limit: int, offset: int) -> list:
    """Rows `offset`…`offset+limit` by exact geodesic distance, each with `distance_m` (metres).

    The shortlist comes from the GiST index in sphere-distance order. It is long enough once
    the sphere distance of its last row, shrunk by SPHERE_ERROR, exceeds the exact distance of
    the Nth best row in it: any row not fetched is at least that far on the sphere, so at least
    that far minus SPHERE_ERROR on the ellipsoid, hence strictly behind the Nth. Otherwise the
    shortlist doubles and is fetched again (rarely needed: 1.5 N + 5 rows almost always suffice).
    Both distances of the few shortlisted rows are computed here (pyproj's geodesic on WGS84,
    accurate to the nanometre), which keeps the query itself down to the index walk.
    """
    needed = offset + limit
    if limit <= 0:
        return []
    size = needed + needed // 2 + 5
    for _round in range(MAX_SHORTLIST_ROUNDS):
        rows = list(knn_shortlist(queryset, field=field, point=point)[:size])
        if not rows:
            return []
        lons = np.array([getattr(row, field).x for row in rows])
        lats = np.array([getattr(row, field).y for row in rows])
        exact = _GEOD.inv(np.full(len(rows), point.x), np.full(len(rows), point.y), lons, lats)[2]
        for row, distance in zip(rows, exact.tolist(), strict=True):
            row.distance_m = distance
        ranked = sorted(rows, key=lambda row: (row.distance_m, row.pk))
        if len(rows) < size:
            break  # every matching row is in hand
        nth_exact = ranked[needed - 1].distance_m
        last_sphere = float(_sphere_m(point, lons[-1:], lats[-1:])[0])
        if last_sphere * (1 - SPHERE_ERROR) > nth_exact:
            break
        size *= 2
    else:  # pragma: no cover - would need a pathological cluster of equidistant points
        raise RuntimeError("nearest shortlist did not converge")
    return ranked[offset:needed]


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


def amaps_near(
    *,
    point: Point,
    limit: int = 10,
    offset: int = 0,
    radius_km: float | None = None,
    products: list[str] | None = None,
    weekday: int | None = None,
    accepting: bool | None = None,
    network: str | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    include_inactive: bool = False,
) -> list[Amap]:
    """The AMAPs nearest `point` by true geodesic distance, each with `distance_m` (metres).

    One query whatever `limit` is: commune joined, products and networks in `product_list` and
    `network_list` (use these in result lists: `products.all()` would query once per AMAP).
    """
    amaps = amaps_filtered(
        point=point,
        radius_km=radius_km,
        products=products,
        weekday=weekday,
        accepting=accepting,
        network=network,
        bbox=bbox,
        include_inactive=include_inactive,
    )
    searched = _with_related_lists(_with_commune(amaps))
    result = _nearest(searched, field="location", point=point, limit=limit, offset=offset)
    _attach_related_lists(result)
    return result


def farms_near(
    *,
    point: Point,
    limit: int = 10,
    offset: int = 0,
    radius_km: float | None = None,
    products: list[str] | None = None,
    network: str | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    include_inactive: bool = False,
) -> list[Farm]:
    """The farms whose PUBLIC (masked) point is nearest `point`, each with `distance_m` to that point."""
    farms = farms_filtered(
        point=point,
        radius_km=radius_km,
        products=products,
        network=network,
        bbox=bbox,
        include_inactive=include_inactive,
    )
    searched = _with_related_lists(_with_commune(farms))
    result = _nearest(searched, field="public_location", point=point, limit=limit, offset=offset)
    _attach_related_lists(result)
    return result


def amaps_page(*, limit: int = 10, offset: int = 0, **filters) -> list[Amap]:
    """AMAPs matching the filters without a point, by name (`distance_m` is None)."""
    ordered = _with_related_lists(_with_commune(amaps_filtered(**filters))).order_by("name", "pk")  # stable pages
    amaps = list(ordered[offset : offset + limit])
    for amap in amaps:
        amap.distance_m = None
    _attach_related_lists(amaps)
    return amaps


def farms_page(*, limit: int = 10, offset: int = 0, **filters) -> list[Farm]:
    """Farms matching the filters without a point, by name (`distance_m` is None)."""
    ordered = _with_related_lists(_with_commune(farms_filtered(**filters))).order_by("name", "pk")  # stable pages
    farms = list(ordered[offset : offset + limit])
    for farm in farms:
        farm.distance_m = None
    _attach_related_lists(farms)
    return farms


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
    from .models import Partnership

    active_partnerships = Prefetch(
        "partnerships",
        queryset=Partnership.objects.active()
        .select_related("product")
        .prefetch_related(Prefetch("farm", queryset=Farm.objects.defer("location")))
        .order_by("farm__name", "product__position", "pk"),
        to_attr="active_partnerships",
    )
    return (
        Amap.objects.select_related("commune__department")
        .defer("commune__geom")
        .prefetch_related("products", "networks", active_partnerships)
        .filter(pk=pk)
        .first()
    )


def farm_detail(*, pk: int) -> Farm | None:
    """One farm without its exact location (deferred: private), with the AMAPs it supplies."""
    from .models import Partnership

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
        .prefetch_related("products", "networks", active_partnerships)
        .filter(pk=pk)
        .first()
    )


def network_detail(*, slug: str):
    """One network with its départements and régions."""
    from .models import Network

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
