"""Reads for matchmaking: the board, and the ranked matches of one annonce (the request path).

The candidates of an annonce come from PostGIS (`matching.candidates`); the rules and the
score are `matching.engine`'s, shared with the bulk path.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Q, QuerySet

from directory.models import Amap, Farm, Network

from . import engine, reasons, routing
from .candidates import ProductBits, Query, candidates, need_of, product_bits  # noqa: F401 - the request path's reads
from .learning.ranker import LinearRanker
from .models import Annonce, Match, MatchingModel

MAX_MATCHES = 50


# --------------------------------------------------------------------------- board


def annonces_board(
    *,
    kind: str | None = None,
    product: str | None = None,
    department: str | None = None,
    network: str | None = None,
    include_closed: bool = False,
) -> QuerySet[Annonce]:
    """Annonces for the public board, newest first, open and unexpired unless `include_closed`."""
    annonces = Annonce.objects.all() if include_closed else Annonce.objects.live()
    if kind:
        annonces = annonces.filter(kind=kind)
    if product:
        annonces = annonces.filter(products__slug=product)
    if department:
        annonces = annonces.filter(commune__department_id=department)
    if network:
        net = Network.objects.filter(slug=network).first()
        if net is None:
            return annonces.none()
        annonces = annonces.filter(
            Q(farm__networks=net)
            | Q(amap__networks=net)
            | Q(commune__department__in=net.departments.all())
            | Q(commune__region__in=net.regions.all())
        )
    return (
        annonces.select_related("farm", "amap", "commune")
        .prefetch_related("products")
        .order_by("-created_at", "-pk")  # stable pages
        .distinct()
    )


def annonces_managed_by(*, user) -> QuerySet[Annonce]:
    return (
        Annonce.objects.filter(Q(farm__managers=user) | Q(amap__managers=user))
        .select_related("farm", "amap")
        .prefetch_related("products")
        .distinct()
        .order_by("-created_at", "-pk")
    )


def annonces_to_moderate(*, user) -> QuerySet[Annonce]:
    """Annonces in the territories of the networks `user` administers (départements, régions, members)."""
    if not getattr(user, "is_authenticated", False):
        return Annonce.objects.none()
    networks = user.administered_networks.all()
    if not networks.exists():
        return Annonce.objects.none()
    return (
        Annonce.objects.filter(
            Q(commune__department__networks__in=networks)
            | Q(commune__region__networks__in=networks)
            | Q(farm__networks__in=networks)
            | Q(amap__networks__in=networks)
        )
        .select_related("farm", "amap")
        .distinct()
        .order_by("-created_at", "-pk")
    )


def stored_matches(*, annonce: Annonce, limit: int = 10) -> QuerySet[Match]:
    return annonce.matches.select_related("amap", "farm").order_by("rank")[:limit]


# --------------------------------------------------------------------------- the request path


@dataclass
class MatchResult:
    counterpart_type: str  # "amap" or "farm"
    counterpart_id: int
    name: str
    score: float
    components: dict[str, float]
    reasons: list[str]
    distance_m: float
    drive_minutes: float
    drive_source: str
    lon: float  # public point (an AMAP's delivery place, a farm's masked point)
    lat: float
    annonce_id: int | None = None
    extras: dict = field(default_factory=dict)


ACTIVE = "active"  # matches_for(ranker=ACTIVE): the stored active model, if any


def active_ranker() -> LinearRanker | None:
    """The active learned ranking with the highest version; None: the engine's fixed weights."""
    row = MatchingModel.objects.filter(is_active=True).order_by("-version").first()
    if row is None:
        return None
    return LinearRanker.from_json(row.parameters, version=row.version)


def matches_for(
    query: Query, *, limit: int = 10, with_drive_times: bool = True, ranker: LinearRanker | str | None = ACTIVE
) -> list[MatchResult]:
    """The ranked counterparts for a query (best first), with reasons, distance and drive time.

    `ranker`: ACTIVE (the stored model, else fixed weights), a given `LinearRanker`, or None (fixed weights).
    """
    limit = max(0, min(int(limit), MAX_MATCHES))
    bits = product_bits()
    need, table, extras = candidates(query, bits)
    if len(table) == 0:
        return []
    if ranker == ACTIVE:
        ranker = active_ranker()
    scored = engine.score_table(need, table, ranker)
    top = engine.rank(table, scored, limit=limit)
    if top.size == 0:
        return []
    is_farm_annonce = query.kind == engine.FARM_SEEKS_AMAP
    ids = [int(table.org_id[i]) for i in top]
    if is_farm_annonce:
        names = dict(Amap.objects.filter(pk__in=ids).values_list("pk", "name"))
    else:
        names = dict(Farm.objects.filter(pk__in=ids).values_list("pk", "name"))
    ctx = reasons.ReasonContext(
        product_names=bits.name_of_bit,
        amap_names=extras["amap_names"],
        annonce_amap_id=query.amap.pk if query.amap is not None else None,
    )
    lons, lats = extras["lons"], extras["lats"]
    distances = [float(table.distance_m[i]) for i in top]
    if not is_farm_annonce:
        # Measured to the farm's public point, and shown to 100 m only.
        distances = [round(d, -2) for d in distances]
    if with_drive_times:
        # From and to public points only (a farm's masked point is a few hundred metres off).
        destinations = [(lons[i], lats[i]) for i in top]
        drives = routing.drive_times(
            origin=(query.origin.x, query.origin.y), destinations=destinations, distances_m=distances
        )
    else:
        drives = [routing.estimate(d) for d in distances]
    results = []
    for position, row in enumerate(top):
        drive = drives[position]
        if scored.ranker is None:
            texts = reasons.reasons_for(need, table, int(row), ctx)
            texts[0] = reasons.distance_and_drive(texts[0], routing.describe(drive))
        else:
            texts = reasons.reasons_by_contribution(
                need, table, int(row), ctx, scored.contributions_of(row), drive_text=routing.describe(drive)
            )
        results.append(
            MatchResult(
                counterpart_type="amap" if is_farm_annonce else "farm",
                counterpart_id=int(table.org_id[row]),
                name=names.get(int(table.org_id[row]), ""),
                score=round(float(scored.score[row]), 4),
                components=engine.components_for(scored, int(row)),
                reasons=texts,
                distance_m=round(distances[position], 1),
                drive_minutes=drive.minutes,
                drive_source=drive.source,
                lon=lons[row],
                lat=lats[row],
                annonce_id=int(table.annonce_id[row]) or None,
            )
        )
    return results


def matches_for_annonce(*, annonce: Annonce, limit: int = 10, with_drive_times: bool = True) -> list[MatchResult]:
    return matches_for(Query.for_annonce(annonce), limit=limit, with_drive_times=with_drive_times)
