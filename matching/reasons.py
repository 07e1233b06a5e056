"""The reasons of a match: the French sentences that explain its score, each stating a fact.

Worded here once for both paths: the request path (`matching.selectors`, `reasons_for`) and
the bulk path (`matching.bulk.reasons`, which words each distinct sentence once and reuses it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop, ngettext

from geo.formatting import KM_BASE, TENTHS_BASE, UNDER_10_M, distance_code, distance_code_text

from .engine import (
    ALL_DAYS,
    AMAP_SEEKS_FARM,
    FARM_SEEKS_AMAP,
    OPENNESS,
    WEEKDAY_NAMES,
    CandidateTable,
    Need,
    mask_to_weekdays,
    synergy_radius_m,
)


def _fr_number(value: float, decimals: int) -> str:
    text = f"{value:.{decimals}f}"
    return text.replace(".", ",")


# Sentences stated for every row: translated once per run through `translated()` (gettext
# costs ~20 µs a call; the bulk path states about a million reasons).
AT_DISTANCE = gettext_noop("à %(distance)s")
FOYERS_ADHERENTS = ("%(n)s foyer adhérent", "%(n)s foyers adhérents")
FOYERS_INTERESSES = ("%(n)s foyer intéressé", "%(n)s foyers intéressés")
PARTS = ("peut fournir %(n)s part", "peut fournir %(n)s parts")


def translated(message: str, cache: dict | None = None) -> str:
    if cache is None:
        return _(message)
    key = ("t", message)
    if key not in cache:
        cache[key] = _(message)
    return cache[key]


def translated_plural(forms: tuple[str, str], count: int, cache: dict | None = None) -> str:
    key = ("n", forms[0], count)
    if cache is None or key not in cache:
        text = ngettext(forms[0], forms[1], count) % {"n": count}
        if cache is None:
            return text
        cache[key] = text
    return cache[key]


def _plural_catalogue() -> None:  # pragma: no cover - only here for makemessages
    ngettext("%(n)s foyer adhérent", "%(n)s foyers adhérents", 1)
    ngettext("%(n)s foyer intéressé", "%(n)s foyers intéressés", 1)
    ngettext("peut fournir %(n)s part", "peut fournir %(n)s parts", 1)


def format_km(distance_m: float, cache: dict | None = None) -> str:
    """'à 12 km', 'à 4,3 km', 'à 190 m': the site's one distance rule (geo.formatting)."""
    return format_km_code(km_code(distance_m), cache)


# A distance as it is shown, as an integer (geo.formatting's codes). Equal codes, equal text.
km_code = distance_code


def km_codes(distance_m: np.ndarray) -> np.ndarray:
    """`km_code` of many distances (numpy, the same half-up arithmetic: the same codes)."""
    distance_m = np.asarray(distance_m, dtype=np.float64)
    tens = np.floor(distance_m / 10 + 0.5)
    tenths = np.floor(distance_m / 100 + 0.5)
    km = np.floor(distance_m / 1000 + 0.5)
    codes = np.where(
        distance_m < 10,
        UNDER_10_M,
        np.where(tens < 100, tens, np.where(tenths < 100, TENTHS_BASE + tenths, KM_BASE + km)),
    )
    return codes.astype(np.int64)


def format_km_code(code: int, cache: dict | None = None) -> str:
    key = ("d", code)
    if cache is not None and key in cache:
        return cache[key]
    text = translated(AT_DISTANCE, cache) % {"distance": distance_code_text(code)}
    if cache is not None:
        cache[key] = text
    return text


def de(name: str) -> str:
    """French partitive after 'producteur': "d'œufs", "de légumes"."""
    word = name[:1].lower() + name[1:]
    if word[:1] in "aeiouyéèêàâîïôœh":
        return f"d'{word}"
    return f"de {word}"


def _names(mask: int, product_names: dict[int, str]) -> list[str]:
    return [product_names[bit] for bit in sorted(product_names) if mask & (1 << bit)]


def _weekday_list(mask: int) -> str:
    days = [WEEKDAY_NAMES[d] for d in mask_to_weekdays(mask)]
    return _(" ou le ").join(days)


@dataclass
class ReasonContext:
    """Names needed to state the reasons: product names by bit, AMAP names by id.

    `cache` keeps phrases that many rows share (the bulk path states a million reasons).
    """

    product_names: dict[int, str]
    amap_names: dict[int, str] = field(default_factory=dict)
    annonce_amap_id: int | None = None  # for AMAP annonces: the publishing AMAP
    cache: dict = field(default_factory=dict)
    synergy_radius_m: float = field(default_factory=synergy_radius_m)


def product_phrases(kind: str, products: int, partnered: int, listed: int, declared: int, ctx) -> tuple[str, ...]:
    key = ("products", kind, products, partnered & products, listed & products, declared & products)
    cached = ctx.cache.get(key)
    if cached is not None:
        return cached
    phrases = []
    if kind == FARM_SEEKS_AMAP:
        for bit in sorted(ctx.product_names):
            if not products & (1 << bit):
                continue
            name = ctx.product_names[bit]
            if declared & (1 << bit):
                phrases.append(_("cherche un producteur %(de)s (annonce publiée)") % {"de": de(name)})
            elif partnered & (1 << bit):
                phrases.append(_("a déjà un producteur %(de)s") % {"de": de(name)})
            elif listed & (1 << bit):
                phrases.append(
                    _("%(name)s parmi ses produits, mais aucun producteur partenaire enregistré") % {"name": name}
                )
            else:
                phrases.append(_("aucun producteur %(de)s actuellement") % {"de": de(name)})
    else:
        names = _names(products & listed & ~partnered, ctx.product_names)
        if names:
            phrases.append(_("produit : %(names)s") % {"names": ", ".join(n.lower() for n in names)})
        for name in _names(products & listed & partnered, ctx.product_names):
            phrases.append(_("vous livre déjà : %(name)s") % {"name": name.lower()})
    result = tuple(phrases)
    ctx.cache[key] = result
    return result


def weekday_phrase(days: int, need_days: int, ctx) -> str:
    key = ("days", days, need_days)
    cached = ctx.cache.get(key)
    if cached is None:
        if days == 0:
            cached = _("jour de livraison non renseigné")
        elif days & need_days == ALL_DAYS:
            cached = _("jour de livraison à convenir")
        else:
            cached = _("livraison le %(days)s compatible") % {"days": _weekday_list(days & need_days)}
        ctx.cache[key] = cached
    return cached


DELIVERS_YOU = gettext_noop("vous livrez déjà « %(name)s » %(where)s")
DELIVERS = gettext_noop("livre déjà « %(name)s » %(where)s")
DELIVERS_THIS = gettext_noop("vous livrez déjà cette AMAP")
DELIVERS_YOURS = gettext_noop("livre déjà votre AMAP")
RADIUS_UNKNOWN = gettext_noop("rayon de livraison non renseigné")
PUBLISHED_AMAP = gettext_noop("a publié une annonce « AMAP cherche paysan »")
PUBLISHED_FARM = gettext_noop("a publié une annonce « Paysan cherche AMAP »")
OPENNESS_PHRASES = {
    OPENNESS["open"]: gettext_noop("accepte de nouveaux membres"),
    OPENNESS["waiting_list"]: gettext_noop("a une liste d'attente"),
    OPENNESS["full"]: gettext_noop("complète"),
}


def reasons_from_values(
    *,
    kind: str,
    products: int,
    need_days: int,
    distance_m: float,
    org_id: int,
    annonce_id: int,
    weekdays: int,
    listed: int,
    partnered: int,
    declared: int,
    size: float,
    openness: float,
    synergy_m: float,
    synergy_amap: int,
    ctx: ReasonContext,
    reach_m: float = math.inf,
) -> list[str]:
    """The French sentences that explain one candidate's score; each states a fact."""
    _key, tail = reasons_after_distance(
        kind=kind,
        products=products,
        need_days=need_days,
        org_id=org_id,
        annonce_id=annonce_id,
        weekdays=weekdays,
        listed=listed,
        partnered=partnered,
        declared=declared,
        size=size,
        openness=openness,
        synergy_m=synergy_m,
        synergy_amap=synergy_amap,
        ctx=ctx,
        reach_m=reach_m,
    )
    return [format_km(distance_m, ctx.cache), *tail]


def reasons_after_distance(
    *,
    kind: str,
    products: int,
    need_days: int,
    org_id: int,
    annonce_id: int,
    weekdays: int,
    listed: int,
    partnered: int,
    declared: int,
    size: float,
    openness: float,
    synergy_m: float,
    synergy_amap: int,
    ctx: ReasonContext,
    reach_m: float = math.inf,
) -> tuple[tuple, tuple[str, ...]]:
    """(key, sentences): every reason but the distance, in this order (the bulk path keeps it too):
    radius unknown, products, weekday, tour, size, openness, reciprocal annonce."""
    cache = ctx.cache
    where = format_km(synergy_m, cache) if synergy_m <= ctx.synergy_radius_m else None  # inf: no tour
    parts = (
        radius_phrases(reach_m, cache),
        product_phrases(kind, products, partnered, listed, declared, ctx),
        (weekday_phrase(weekdays, need_days, ctx),),
        synergy_phrases(
            kind,
            where=where,
            synergy_amap=synergy_amap,
            is_candidate=synergy_amap == org_id,
            is_annonce_amap=synergy_amap == ctx.annonce_amap_id,
            ctx=ctx,
        ),
        size_phrases(kind, size=size, is_annonce=bool(annonce_id), cache=cache),
        openness_phrases(kind, openness=openness, is_annonce=bool(annonce_id), cache=cache),
        published_phrases(kind, is_annonce=bool(annonce_id), cache=cache),
    )
    sentences = tuple(text for part in parts for text in part)
    return parts, sentences


def radius_phrases(reach_m: float, cache: dict | None = None) -> tuple[str, ...]:
    # A farm that never stated how far it delivers: no cut, ranked by distance.
    return (translated(RADIUS_UNKNOWN, cache),) if math.isnan(reach_m) else ()


def synergy_phrases(
    kind: str, *, where: str | None, synergy_amap: int, is_candidate: bool, is_annonce_amap: bool, ctx
) -> tuple[str, ...]:
    """The tour sentence; `where` is the delivery point's distance as shown (None: beyond the synergy radius)."""
    if where is None:
        return ()
    cache = ctx.cache
    if kind == FARM_SEEKS_AMAP and is_candidate:
        return (translated(DELIVERS_THIS, cache),)
    if kind == AMAP_SEEKS_FARM and is_annonce_amap:
        return (translated(DELIVERS_YOURS, cache),)
    name = ctx.amap_names.get(synergy_amap, "")
    template = translated(DELIVERS_YOU if kind == FARM_SEEKS_AMAP else DELIVERS, cache)
    return (template % {"name": name, "where": where},)


def size_phrases(kind: str, *, size: float, is_annonce: bool, cache: dict | None = None) -> tuple[str, ...]:
    if math.isnan(size):
        return ()
    households = FOYERS_INTERESSES if is_annonce else FOYERS_ADHERENTS
    forms = households if kind == FARM_SEEKS_AMAP else PARTS
    return (translated_plural(forms, int(size), cache),)


def openness_phrases(kind: str, *, openness: float, is_annonce: bool, cache: dict | None = None) -> tuple[str, ...]:
    phrase = OPENNESS_PHRASES.get(openness) if kind == FARM_SEEKS_AMAP and not is_annonce else None
    return (translated(phrase, cache),) if phrase else ()


def published_phrases(kind: str, *, is_annonce: bool, cache: dict | None = None) -> tuple[str, ...]:
    if not is_annonce:
        return ()
    return (translated(PUBLISHED_AMAP if kind == FARM_SEEKS_AMAP else PUBLISHED_FARM, cache),)


def reasons_for(need: Need, table: CandidateTable, row: int, ctx: ReasonContext) -> list[str]:
    """`reasons_from_values` for one row of a candidate table (the annonce's Need is scalar)."""
    return reasons_from_values(distance_m=float(table.distance_m[row]), **_row_values(need, table, row, ctx))


def _row_values(need: Need, table: CandidateTable, row: int, ctx: ReasonContext) -> dict:
    """One candidate row's arguments to `reasons_after_distance` (the distance apart)."""
    return dict(
        kind=need.kind,
        products=int(need.products_mask),
        need_days=int(need.weekdays_mask),
        org_id=int(table.org_id[row]),
        annonce_id=int(table.annonce_id[row]),
        weekdays=int(table.weekdays[row]),
        listed=int(table.product_mask[row]),
        partnered=int(table.partnered_mask[row]),
        declared=int(table.declared_mask[row]),
        size=float(table.size[row]),
        openness=float(table.openness[row]),
        synergy_m=float(table.synergy_m[row]),
        synergy_amap=int(table.synergy_amap[row]),
        ctx=ctx,
        reach_m=float(table.reach_m[row]),
    )


def distance_and_drive(distance_text: str, drive_text: str) -> str:
    """The first reason: the distance as shown, then the drive time ("à 12 km, 18 min de route (estimation)")."""
    return f"{distance_text}, {drive_text}"


# --------------------------------------------------------------------------- learned ranking

# Which feature of `matching.learning.features` each part of `reasons_after_distance` states.
PART_FEATURES = ("log_distance", "product_fit", "weekday", "tour", "size_openness", "size_openness", "reciprocal")
TOUR_FEATURES = ("partners", "nearest_delivery", "within_15", "within_30", "within_50", "marginal_detour")
PARTNERS_NEAR = (
    "déjà %(n)s AMAP livrée, « %(name)s » %(where)s",
    "déjà %(n)s AMAP livrées dont « %(name)s » %(where)s",
)
PARTNERS = ("déjà %(n)s AMAP livrée", "déjà %(n)s AMAP livrées")


def _partners_catalogue() -> None:  # pragma: no cover - only here for makemessages
    ngettext("déjà %(n)s AMAP livrée, « %(name)s » %(where)s", "déjà %(n)s AMAP livrées dont « %(name)s » %(where)s", 1)
    ngettext("déjà %(n)s AMAP livrée", "déjà %(n)s AMAP livrées", 1)


def partners_phrases(*, partners: int, nearest_m: float, nearest_amap: int, ctx: ReasonContext) -> tuple[str, ...]:
    """A farm's current AMAPs, the nearest named when within the widest ring (« déjà 6 AMAP livrées dont … à 4 km »)."""
    from .learning.features import RINGS_KM

    if partners <= 0:
        return ()
    if nearest_amap and nearest_amap == ctx.annonce_amap_id:
        return (translated(DELIVERS_YOURS, ctx.cache),)
    if nearest_m <= RINGS_KM[-1] * 1000.0 and nearest_amap in ctx.amap_names:
        text = ngettext(*PARTNERS_NEAR, partners)
        return (text % {"n": partners, "name": ctx.amap_names[nearest_amap], "where": format_km(nearest_m, ctx.cache)},)
    return (ngettext(*PARTNERS, partners) % {"n": partners},)


def reasons_by_contribution(
    need: Need, table: CandidateTable, row: int, ctx: ReasonContext, contributions, *, drive_text: str
) -> list[str]:
    """The sentences of one row, the facts that raised its learned score most first.

    `contributions`: the row's part of the score per feature (`LinearRanker.contributions`).
    """
    from .learning.features import INDEX

    distance_m = float(table.distance_m[row])
    parts, _sentences = reasons_after_distance(**_row_values(need, table, row, ctx))
    parts = list(parts)
    if need.kind == AMAP_SEEKS_FARM:
        parts[PART_FEATURES.index("tour")] = partners_phrases(
            partners=int(table.partners[row]),
            nearest_m=float(table.synergy_m[row]),
            nearest_amap=int(table.synergy_amap[row]),
            ctx=ctx,
        )

    def weight(feature: str) -> float:
        if feature == "tour":
            return float(sum(contributions[INDEX[name]] for name in TOUR_FEATURES))
        return float(contributions[INDEX[feature]])

    distance_text = distance_and_drive(format_km(distance_m, ctx.cache), drive_text)
    tagged = [(weight("log_distance"), 0, distance_text)]
    for position, (feature, part) in enumerate(zip(PART_FEATURES, parts, strict=True), start=1):
        tagged.extend((weight(feature), position, text) for text in part)
    tagged.sort(key=lambda item: (-item[0], item[1]))  # stable: the usual order among equals
    return [text for _weight, _position, text in tagged]
