"""The match engine's rules and score, as pure functions over arrays.

Both paths feed the same functions: the request path (`matching.selectors`, one annonce,
candidates fetched from PostGIS with `ST_DWithin` on geography) and the bulk path
(`matching.bulk`, every open annonce, candidates from an in-memory KD-tree). A *candidate
table* holds one row per candidate point: an AMAP (or farm) of the directory, or one of its
own open annonces (the "reciprocal annonce", which may name another delivery place).

Score = Σ WEIGHTS[name] × component, every component in [0, 1], so the score is in [0, 1].
Each component comes with a sentence in French that states the fact it is made of.

Reach: the annonce's radius and the counterpart's own (a farm's delivery radius, the radius of
the counterpart's annonce) are hard limits. A farm that never stated its radius (imported lists
rarely do) is not cut at a radius nobody gave: it is ranked by distance like any other, and its
reasons say "rayon de livraison non renseigné".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop, ngettext

# The only place the weights live. Chosen a priori (not fitted to the Gironde data): distance
# matters most, then whether the product is really missing, an existing delivery tour
# nearby, and the counterpart's own annonce; weekday and size refine.
# The distance component decays with a fixed half distance (DISTANCE_HALF_KM), not relative
# to the annonce's radius: the radius says what is acceptable, not how much nearer is better.
# (Relative decay made a 5 km and a 15 km farm almost equal under a generous 300 km radius.)
WEIGHTS: dict[str, float] = {
    "distance": 0.30,
    "product_gap": 0.20,
    "tour_synergy": 0.15,
    "reciprocal": 0.15,
    "weekday": 0.10,
    "size_openness": 0.10,
}
assert math.isclose(sum(WEIGHTS.values()), 1.0)

COMPONENT_LABELS = {
    "distance": "distance",
    "product_gap": "produits manquants",
    "tour_synergy": "tournée existante",
    "reciprocal": "annonce réciproque",
    "weekday": "jour de livraison",
    "size_openness": "taille et ouverture",
}

FARM_SEEKS_AMAP = "paysan_cherche_amap"
AMAP_SEEKS_FARM = "amap_cherche_paysan"

ALL_DAYS = 0b1111111  # ISO weekdays 1..7 as bits 0..6
# 20 km: about 25 minutes' drive by the estimate (1.3 circuity, 60 km/h), the scale of a weekly
# delivery trip. Set a priori; the leave-one-out recall@10 is the same from 10 to 40 km.
DISTANCE_HALF_KM = 20.0
DEFAULT_SHARES = 20  # size reference when the annonce does not say how many shares

# Openness of an AMAP for a new farmer, from `Amap.accepting_members`.
OPENNESS = {"open": 1.0, "waiting_list": 0.75, "unknown": 0.5, "full": 0.25}

WEEKDAY_NAMES = {1: "lundi", 2: "mardi", 3: "mercredi", 4: "jeudi", 5: "vendredi", 6: "samedi", 7: "dimanche"}


def weekdays_to_mask(days) -> int:
    mask = 0
    for day in days or ():
        if 1 <= int(day) <= 7:
            mask |= 1 << (int(day) - 1)
    return mask


def mask_to_weekdays(mask: int) -> list[int]:
    return [day for day in range(1, 8) if mask & (1 << (day - 1))]


def popcount(values: np.ndarray) -> np.ndarray:
    return np.bitwise_count(values.astype(np.uint64)).astype(np.float64)


def distance_score(distance_m):
    """1 at the door, halved every DISTANCE_HALF_KM (the same scale whatever the annonce's radius)."""
    return np.exp2(-np.asarray(distance_m, dtype=np.float64) / (DISTANCE_HALF_KM * 1000.0))


def distance_for_score(value):
    """The distance in metres at which `distance_score` equals `value` (inverse; inf for value <= 0)."""
    value = np.asarray(value, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        metres = -np.log2(value) * DISTANCE_HALF_KM * 1000.0
    return np.where(value > 0, metres, math.inf)


def synergy_radius_m() -> float:
    return float(getattr(settings, "MATCH_SYNERGY_RADIUS_KM", 15)) * 1000.0


@dataclass(frozen=True)
class Need:
    """What an annonce asks for, reduced to numbers."""

    kind: str  # FARM_SEEKS_AMAP or AMAP_SEEKS_FARM
    products_mask: int
    weekdays_mask: int  # ALL_DAYS when any day suits
    radius_m: float
    shares: int | None = None

    @property
    def any_day(self) -> bool:
        return self.weekdays_mask == ALL_DAYS


@dataclass
class CandidateTable:
    """Struct of arrays, one row per candidate point (see the module docstring)."""

    org_id: np.ndarray  # AMAP id (farm annonce) or farm id (AMAP annonce)
    annonce_id: np.ndarray  # the counterpart's own annonce at this point, 0 for the directory entry
    distance_m: np.ndarray  # true geodesic metres from the annonce's point
    reach_m: np.ndarray  # how far the counterpart itself accepts (inf: no limit of its own; nan: not stated)
    weekdays: np.ndarray  # bit mask; 0 = not known, ALL_DAYS = any day
    product_mask: np.ndarray  # AMAP: products it lists; farm: products it produces / offers
    # AMAP: products with an active partner; farm: products it already brings to the annonce's AMAP
    partnered_mask: np.ndarray
    declared_mask: np.ndarray  # products named in the counterpart's own annonce (0 for the directory entry)
    size: np.ndarray  # AMAP: households (members or interested); farm: shares it can supply; nan = unknown
    openness: np.ndarray  # AMAP openness in [0, 1]; nan for farms
    synergy_m: np.ndarray  # distance between the candidate and the farm's nearest existing delivery point (inf: none)
    synergy_amap: np.ndarray  # id of that delivery point's AMAP (0: none)

    def __len__(self) -> int:
        return len(self.org_id)

    @classmethod
    def from_rows(cls, rows: list[dict]) -> CandidateTable:
        columns = {
            "org_id": np.int64,
            "annonce_id": np.int64,
            "distance_m": np.float64,
            "reach_m": np.float64,
            "weekdays": np.int64,
            "product_mask": np.int64,
            "partnered_mask": np.int64,
            "declared_mask": np.int64,
            "size": np.float64,
            "openness": np.float64,
            "synergy_m": np.float64,
            "synergy_amap": np.int64,
        }
        defaults = {
            "annonce_id": 0,
            "reach_m": math.inf,
            "weekdays": 0,
            "product_mask": 0,
            "partnered_mask": 0,
            "declared_mask": 0,
            "size": math.nan,
            "openness": math.nan,
            "synergy_m": math.inf,
            "synergy_amap": 0,
        }
        data = {
            name: np.array([row.get(name, defaults.get(name)) for row in rows], dtype=dtype)
            for name, dtype in columns.items()
        }
        return cls(**data)

    def take(self, index: np.ndarray) -> CandidateTable:
        return CandidateTable(**{name: getattr(self, name)[index] for name in self.__dataclass_fields__})


@dataclass
class Scored:
    eligible: np.ndarray  # bool per row
    components: dict[str, np.ndarray]
    score: np.ndarray


def _reference_shares(shares) -> np.ndarray | float:
    """The annonce's shares, DEFAULT_SHARES when not given (scalar None or nan in arrays)."""
    if shares is None:
        return float(DEFAULT_SHARES)
    values = np.asarray(shares, dtype=np.float64)
    values = np.where(np.isnan(values) | (values <= 0), float(DEFAULT_SHARES), values)
    return values if values.ndim else float(values)


def score_table(need: Need, table: CandidateTable) -> Scored:
    """Apply the rules (which rows may be proposed) and compute every component and the score.

    The Need's numbers may be scalars (one annonce) or arrays aligned with the table's rows
    (the bulk path scores many annonces' candidates at once).
    """
    products = np.asarray(need.products_mask, dtype=np.int64)
    wanted = np.maximum(1.0, popcount(products))
    radius_m = np.asarray(need.radius_m, dtype=np.float64)
    need_days = np.asarray(need.weekdays_mask, dtype=np.int64)
    shares = _reference_shares(need.shares)

    # Reach: the annonce's own radius, and the counterpart's (a farm's delivery radius, the
    # radius in the counterpart's annonce) unless it never stated one (nan).
    in_reach = (table.distance_m <= radius_m) & (np.isnan(table.reach_m) | (table.distance_m <= table.reach_m))

    # Weekday: an unknown day is possible but not a fit; a known day must be shared.
    known_day = table.weekdays != 0
    day_fit = (table.weekdays & need_days) != 0
    weekday_ok = ~known_day | day_fit
    weekday = np.where(known_day, 1.0, 0.5)

    if need.kind == FARM_SEEKS_AMAP:
        # Per offered product: missing at the AMAP (no active partner, not even listed) = 1,
        # listed without a partner on record = 0.5, already supplied = 0; the AMAP's own annonce
        # saying it wants the product counts as missing.
        declared = table.declared_mask & products
        free = products & ~table.partnered_mask
        missing = (free & ~table.product_mask) | declared
        half = free & table.product_mask & ~declared
        product_gap = (popcount(missing) + 0.5 * popcount(half)) / wanted
        product_ok = (missing | half) != 0
        size = np.where(np.isnan(table.size), 0.5, np.minimum(1.0, table.size / shares))
        openness = np.where(np.isnan(table.openness), 0.5, table.openness)
        size_openness = (size + openness) / 2.0
        capacity_ok = np.ones(len(table), dtype=bool)
    else:
        # Wanted products the farm produces and does not already bring to this AMAP.
        offered = products & table.product_mask & ~table.partnered_mask
        product_gap = popcount(offered) / wanted
        product_ok = offered != 0
        capacity_ok = ~(table.size <= 0)  # nan (unknown) passes
        size_openness = np.where(np.isnan(table.size), 0.5, np.minimum(1.0, table.size / shares))

    distance = distance_score(table.distance_m)  # true metres; no cut beyond the rules above
    synergy = np.clip(1.0 - table.synergy_m / synergy_radius_m(), 0.0, 1.0)
    synergy = np.where(np.isfinite(table.synergy_m), synergy, 0.0)
    reciprocal = (table.annonce_id != 0).astype(np.float64)

    components = {
        "distance": distance,
        "product_gap": product_gap,
        "tour_synergy": synergy,
        "reciprocal": reciprocal,
        "weekday": weekday,
        "size_openness": size_openness,
    }
    score = sum(WEIGHTS[name] * values for name, values in components.items())
    # A counterpart's own annonce only counts when it is about one of these products.
    annonce_ok = (table.annonce_id == 0) | ((table.declared_mask & products) != 0)
    eligible = in_reach & weekday_ok & product_ok & capacity_ok & annonce_ok
    return Scored(eligible=eligible, components=components, score=np.asarray(score, dtype=np.float64))


def bound_without_distance(
    kind: str, *, is_annonce: np.ndarray, weekdays: np.ndarray, size: np.ndarray, openness: np.ndarray, synergy
) -> np.ndarray:
    """Per candidate point, the most its score can be without the distance part, whatever the annonce.

    Mirrors `score_table` with each annonce-dependent component at its maximum (product gap 1,
    size 1 when known, tour synergy 1 where `synergy` may be non-zero). The bulk path uses it
    to prove that the points it did not examine cannot enter an annonce's top k.
    """
    weekday = np.where(weekdays != 0, 1.0, 0.5)
    size_bound = np.where(np.isnan(size), 0.5, 1.0)
    if kind == FARM_SEEKS_AMAP:
        size_openness = (size_bound + np.where(np.isnan(openness), 0.5, openness)) / 2.0
    else:
        size_openness = size_bound
    return (
        WEIGHTS["product_gap"]
        + WEIGHTS["tour_synergy"] * np.asarray(synergy, dtype=np.float64)
        + WEIGHTS["reciprocal"] * np.asarray(is_annonce, dtype=np.float64)
        + WEIGHTS["weekday"] * weekday
        + WEIGHTS["size_openness"] * size_openness
    )


def rank(table: CandidateTable, scored: Scored, *, limit: int | None = None) -> np.ndarray:
    """Row indexes of the eligible rows, best first, one per counterpart (its best point).

    Order: score descending, then distance, then id (stable and reproducible).
    """
    index = np.flatnonzero(scored.eligible)
    if index.size == 0:
        return index
    order = np.lexsort((table.annonce_id[index], table.org_id[index], table.distance_m[index], -scored.score[index]))
    index = index[order]
    _unique, first = np.unique(table.org_id[index], return_index=True)
    index = index[np.sort(first)]
    return index if limit is None else index[:limit]


# --------------------------------------------------------------------------- reasons


def _fr_number(value: float, decimals: int) -> str:
    text = f"{value:.{decimals}f}"
    return text.replace(".", ",")


# Sentences stated for every row: translated once per run through `translated()` (gettext
# costs ~20 µs a call; the bulk path states about a million reasons).
AT_KM = gettext_noop("à %(km)s km")
UNDER_100_M = gettext_noop("à moins de 100 m")
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
    """'à 12 km', 'à 4,3 km', 'à moins de 100 m'."""
    return format_km_code(km_code(distance_m), cache)


# A distance as it is shown, as an integer: -1 under 100 m, tenths of a km under 10 km
# (0–100: 9.96 km shows as "10,0"), 1000 + whole km beyond. Equal codes, equal text.
def km_code(distance_m: float) -> int:
    if distance_m < 100:
        return -1
    km = distance_m / 1000.0
    if km < 10:
        return round(float(f"{km:.1f}") * 10)  # Python's correctly rounded formatting decides
    return 1000 + int(f"{km:.0f}")


def km_codes(distance_m: np.ndarray) -> np.ndarray:
    """`km_code` of many distances (numpy, the same codes; near a rounding tie, `km_code` itself)."""
    distance_m = np.asarray(distance_m, dtype=np.float64)
    km = distance_m / 1000.0
    tenths = km * 10.0
    codes = np.where(km < 10, np.rint(tenths), 1000 + np.rint(km))  # rint: half to even, like format()
    codes = np.where(distance_m < 100, -1, codes)
    fraction = tenths - np.floor(tenths)
    doubtful = np.flatnonzero((km < 10) & (distance_m >= 100) & (np.abs(fraction - 0.5) < 1e-6))
    codes = codes.astype(np.int64)
    for i in doubtful.tolist():
        codes[i] = km_code(float(distance_m[i]))
    return codes


def format_km_code(code: int, cache: dict | None = None) -> str:
    if code < 0:
        return translated(UNDER_100_M, cache)
    number = f"{code / 10:.1f}" if code < 1000 else str(code - 1000)
    return translated(AT_KM, cache) % {"km": number.replace(".", ",")}


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


def _product_phrases(kind: str, products: int, partnered: int, listed: int, declared: int, ctx) -> tuple[str, ...]:
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


def _weekday_phrase(days: int, need_days: int, ctx) -> str:
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
        _product_phrases(kind, products, partnered, listed, declared, ctx),
        (_weekday_phrase(weekdays, need_days, ctx),),
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
    return reasons_from_values(
        kind=need.kind,
        products=int(need.products_mask),
        need_days=int(need.weekdays_mask),
        distance_m=float(table.distance_m[row]),
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


def components_for(scored: Scored, row: int) -> dict[str, float]:
    return {name: round(float(values[row]), 4) for name, values in scored.components.items()}
