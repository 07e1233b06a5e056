"""Reasons: each stored row's sentences as a JSON array, worded by `matching.reasons` once per
distinct sentence (a million rows: words once per distinct value, not per row)."""

from __future__ import annotations

from json.encoder import encode_basestring  # C-accelerated, keeps non-ASCII as is

import numpy as np

from .. import engine, routing
from .. import reasons as sentences
from .load import Directory, need_for


def _groups(*columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first row of each group, group of each row) for rows equal on all these integer columns."""
    key = np.zeros(len(columns[0]), dtype=np.int64)
    span = 1
    for column in columns:
        column = np.asarray(column, dtype=np.int64)
        low = int(column.min(initial=0))
        width = int(column.max(initial=0)) - low + 1
        if span * width >= 1 << 62:  # would overflow: number the groups so far, then go on
            key = _groups(key)[1]
            span = int(key.max(initial=0)) + 1
            if span * width >= 1 << 62:
                column = _groups(column)[1]
                low, width = 0, int(column.max(initial=0)) + 1
        key = key * width + (column - low)
        span *= width
    order = np.argsort(key, kind="stable")
    ordered = key[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]]) if len(key) else np.zeros(0, np.int64)
    group = np.empty(len(key), dtype=np.int64)
    group[order] = np.cumsum(np.r_[True, ordered[1:] != ordered[:-1]]) - 1 if len(key) else group
    return order[starts], group


def _encoded(texts) -> str:
    return "".join(", " + encode_basestring(text) for text in texts)


def reasons_json(
    d: Directory, kind: str, q, table, drive, bits, tour_names, cache: dict, contributions=None
) -> list[str]:
    """Each row's reasons as a JSON array: the sentences of `sentences.reasons_from_values`, or with a
    learned ranking (`contributions`, rows × features) those of `sentences.reasons_by_contribution`.

    Sentence by sentence (in `sentences.reasons_after_distance`'s order), rows are grouped by what
    that sentence says; each group's sentence is worded and encoded once, then each row is
    a join of cached strings (a million rows: words once per distinct value, not per row).
    """
    need = need_for(d, kind, q)
    ctx = sentences.ReasonContext(product_names=bits.name_of_bit, amap_names=tour_names, cache=cache)
    products = need.products_mask
    is_annonce = table.annonce_id != 0
    near = table.synergy_m <= engine.synergy_radius_m()
    synergy_code = np.where(near, sentences.km_codes(np.where(near, table.synergy_m, 0.0)), -2)
    owner = d.ann_org[q] if kind == engine.AMAP_SEEKS_FARM else np.full(len(q), -1)
    size_code = np.where(np.isnan(table.size), -1, np.nan_to_num(table.size)).astype(np.int64)
    openness_code = np.where(np.isnan(table.openness), -1, np.rint(np.nan_to_num(table.openness) * 100))

    def worded(columns, word) -> tuple[list[str], np.ndarray]:
        first, group = _groups(*columns)
        return [_encoded(word(int(i))) for i in first.tolist()], group

    def synergy_worded(columns, _word) -> tuple[list[str], np.ndarray]:
        first, group = _groups(*columns)
        return synergy_texts(first), group

    def product_words(i):
        declared, listed, partnered = table.declared_mask[i], table.product_mask[i], table.partnered_mask[i]
        return sentences.product_phrases(kind, int(products[i]), int(partnered), int(listed), int(declared), ctx)

    def synergy_words(i):
        where = sentences.format_km_code(int(synergy_code[i]), cache) if near[i] else None
        amap = int(table.synergy_amap[i])
        return sentences.synergy_phrases(
            kind,
            where=where,
            synergy_amap=amap,
            is_candidate=amap == table.org_id[i],
            is_annonce_amap=amap == owner[i],
            ctx=ctx,
        )

    # The tour sentence names an AMAP and a distance: hundreds of thousands of distinct ones.
    # Worded once with markers for the name and the distance, then filled in per group.
    marked_ctx = sentences.ReasonContext(product_names={}, amap_names={-1: "\x00"}, cache=cache)
    (marked,) = sentences.synergy_phrases(
        kind, where="\x01", synergy_amap=-1, is_candidate=False, is_annonce_amap=False, ctx=marked_ctx
    )
    pieces = marked.replace("\x01", "\x00").split("\x00")
    name_first = marked.index("\x00") < marked.index("\x01")

    def synergy_texts(first: np.ndarray) -> list[str]:
        texts = []
        names, wheres = ctx.amap_names, {}
        special = near & ((table.synergy_amap == table.org_id) | (table.synergy_amap == owner))
        for i, is_near, is_special, amap, code in zip(
            first.tolist(),
            near[first].tolist(),
            special[first].tolist(),
            table.synergy_amap[first].tolist(),
            synergy_code[first].tolist(),
            strict=True,
        ):
            if not is_near or is_special:
                texts.append(_encoded(synergy_words(i)))
                continue
            where = wheres.get(code)
            if where is None:
                where = wheres[code] = sentences.format_km_code(code, cache)
            name = names.get(amap, "")
            first_part, second_part = (name, where) if name_first else (where, name)
            texts.append(", " + encode_basestring(pieces[0] + first_part + pieces[1] + second_part + pieces[2]))
        return texts

    parts = [
        worded([np.isnan(table.reach_m)], lambda i: sentences.radius_phrases(float(table.reach_m[i]), cache)),
        worded(
            [products, table.partnered_mask & products, table.product_mask & products, table.declared_mask & products],
            product_words,
        ),
        worded(
            [table.weekdays, need.weekdays_mask],
            lambda i: (sentences.weekday_phrase(int(table.weekdays[i]), int(need.weekdays_mask[i]), ctx),),
        ),
        synergy_worded(
            [
                synergy_code,
                np.where(near, table.synergy_amap, 0),
                near & (table.synergy_amap == table.org_id),
                near & (table.synergy_amap == owner),
            ],
            synergy_words,
        ),
        worded(
            [size_code, is_annonce],
            lambda i: sentences.size_phrases(
                kind, size=float(table.size[i]), is_annonce=bool(is_annonce[i]), cache=cache
            ),
        ),
        worded(
            [openness_code, is_annonce],
            lambda i: sentences.openness_phrases(
                kind, openness=float(table.openness[i]), is_annonce=bool(is_annonce[i]), cache=cache
            ),
        ),
        worded([is_annonce], lambda i: sentences.published_phrases(kind, is_annonce=bool(is_annonce[i]), cache=cache)),
    ]
    minutes = np.maximum(1, np.rint(drive)).astype(np.int64)  # as `routing.describe` rounds
    distance_code = sentences.km_codes(table.distance_m)

    def head_words(i):
        drive_text = routing.describe(routing.DriveTime(int(minutes[i]), routing.SOURCE_ESTIMATE), cache)
        return sentences.distance_and_drive(sentences.format_km_code(int(distance_code[i]), cache), drive_text)

    first, head_of = _groups(distance_code, minutes)
    if contributions is not None:
        heads = [", " + encode_basestring(head_words(int(i))) for i in first.tolist()]
        if kind == engine.AMAP_SEEKS_FARM:
            parts[3] = _partners_worded(table, owner, ctx, cache)
        return _by_contribution([(heads, head_of), *parts], contributions)
    heads = ["[" + encode_basestring(head_words(int(i))) for i in first.tolist()]
    (r, r_of), (p, p_of), (w, w_of), (s, s_of), (z, z_of), (o, o_of), (u, u_of) = parts
    return [
        heads[a] + r[b] + p[c] + w[e] + s[f] + z[g] + o[h] + u[i] + "]"
        for a, b, c, e, f, g, h, i in zip(
            head_of.tolist(),
            r_of.tolist(),
            p_of.tolist(),
            w_of.tolist(),
            s_of.tolist(),
            z_of.tolist(),
            o_of.tolist(),
            u_of.tolist(),
            strict=True,
        )
    ]


def _partners_worded(table, owner, ctx, cache) -> tuple[list[str], np.ndarray]:
    """The farm's current AMAPs, as `sentences.partners_phrases` words them, grouped by what the
    sentence says; each plural form is translated once per count (thousands of groups)."""
    from django.utils.translation import ngettext

    from ..learning.features import RINGS_KM

    partners = table.partners.astype(np.int64)
    names = ctx.amap_names
    near = (table.synergy_m <= RINGS_KM[-1] * 1000.0) & np.isin(table.synergy_amap, list(names))
    code = np.where(near, sentences.km_codes(np.where(near, table.synergy_m, 0.0)), -2)
    yours = (table.synergy_amap != 0) & (table.synergy_amap == owner)
    first, group = _groups(partners, code, np.where(near, table.synergy_amap, 0), yours)
    forms: dict = {}

    def form(which, n: int) -> str:
        key = (which, n)
        if key not in forms:
            forms[key] = ngettext(*which, n)
        return forms[key]

    texts = []
    for n, c, amap, is_yours in zip(
        partners[first].tolist(),
        code[first].tolist(),
        table.synergy_amap[first].tolist(),
        yours[first].tolist(),
        strict=True,
    ):
        if n <= 0:
            texts.append("")
        elif is_yours:
            texts.append(_encoded((sentences.translated(sentences.DELIVERS_YOURS, cache),)))
        elif c != -2:
            where = sentences.format_km_code(c, cache)
            text = form(sentences.PARTNERS_NEAR, n) % {"n": n, "name": names[amap], "where": where}
            texts.append(", " + encode_basestring(text))
        else:
            texts.append(", " + encode_basestring(form(sentences.PARTNERS, n) % {"n": n}))
    return texts, group


def _by_contribution(parts, contributions) -> list[str]:
    """Join each row's parts (head, then `reasons_after_distance`'s) ordered as `reasons_by_contribution`
    orders them: by the feature's contribution, highest first, the usual order among equals.

    Rows sharing an order (a few dozen orders for a million rows) are joined together, part by
    part, as numpy object arrays."""
    from ..learning.features import INDEX

    c = np.asarray(contributions, dtype=np.float64)
    tour = np.zeros(len(c))
    for name in sentences.TOUR_FEATURES:  # summed in the same order as the request path
        tour = tour + c[:, INDEX[name]]
    features = ("log_distance", *sentences.PART_FEATURES)
    weights = np.column_stack([tour if name == "tour" else c[:, INDEX[name]] for name in features])
    order = np.argsort(-weights, axis=1, kind="stable")  # stable: ties keep the usual order
    texts = [np.array(t, dtype=object) for t, _of in parts]
    groups = np.column_stack([of for _t, of in parts])
    code = (order * (8 ** np.arange(order.shape[1]))).sum(axis=1)
    rows = np.empty(len(c), dtype=object)
    # Rows grouped by their order (sorted once: distinct orders may be many at a million rows).
    by_code = np.argsort(code, kind="stable")
    sorted_code = code[by_code]
    starts = np.flatnonzero(np.r_[True, sorted_code[1:] != sorted_code[:-1]])
    for idx in np.split(by_code, starts[1:]):
        joined = np.full(len(idx), "", dtype=object)
        for j in order[idx[0]].tolist():
            joined = joined + texts[j][groups[idx, j]]
        rows[idx] = joined
    return ["[" + text[2:] + "]" for text in rows.tolist()]
