"""Fitting the ranking on the installation's own partnerships, and measuring it honestly.

Objective: pairwise. For each question (an AMAP, a product it really gets), every real partner
should score above each other farm producing that product within the radius: a logistic
regression on feature differences (partner − other), scikit-learn's `LogisticRegression`,
without intercept. Negatives: the other producing farms, at most MAX_NEGATIVES per question,
drawn with a fixed seed. Coefficients whose sign contradicts `LEARNED_SIGNS` are not believed:
the feature is dropped and the rest refitted (sane constraints generalise to unseen networks).

Cross-validation leaves AMAPs out: their links are hidden from every feature and every training
row (`questions_for_amap(hidden=...)`), and they are then asked their own questions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from geo.progress import Progress

from .features import FEATURES, INDEX, LEARNED_SIGNS, PRIOR_COEFFICIENTS, Snapshot, questions_for_amap
from .ranker import LinearRanker

MIN_LINKS = 200  # fewer real links than this: no model, the engine's fixed weights rank
MAX_NEGATIVES = 50
TRAINING_RADIUS_KM = 300.0  # the widest radius an annonce may state
EVALUATION_RADIUS_KM = 100.0
SEED = 20260
CV_FOLDS = 10
LEARNED = tuple(LEARNED_SIGNS)


def _training_questions(snapshot: Snapshot, held_out: set[int]):
    hidden = snapshot.links_of(held_out)
    questions = []
    for amap in sorted(set(snapshot.link_amap.tolist()) - held_out):
        questions.extend(questions_for_amap(snapshot, amap, hidden=hidden, radius_km=TRAINING_RADIUS_KM))
    return questions


def training_pairs(snapshot: Snapshot, held_out: set[int], *, seed: int = SEED):
    """(differences, questions): one row per (real partner, other farm) of the training questions."""
    rng = np.random.default_rng(seed)
    questions = _training_questions(snapshot, held_out)
    diffs = []
    for question in questions:
        is_partner = np.isin(question.farms, np.array(sorted(question.partners), dtype=np.int64))
        pos, neg = np.flatnonzero(is_partner), np.flatnonzero(~is_partner)
        if pos.size == 0 or neg.size == 0:
            continue
        if neg.size > MAX_NEGATIVES:
            neg = np.sort(rng.choice(neg, MAX_NEGATIVES, replace=False))
        diffs.append((question.x[pos][:, None, :] - question.x[neg][None, :, :]).reshape(-1, len(FEATURES)))
    if not diffs:
        return np.zeros((0, len(FEATURES))), questions
    return np.concatenate(diffs), questions


def visible_links(snapshot: Snapshot, held_out: set[int]) -> int:
    return int(len(snapshot.link_id) - len(snapshot.links_of(held_out)))


def fit(
    snapshot: Snapshot, *, held_out: set[int] | frozenset = frozenset(), min_links: int = MIN_LINKS, seed: int = SEED
) -> LinearRanker | None:
    """The ranker fitted on every link but those of the `held_out` AMAP indexes; None under `min_links`."""
    from sklearn.linear_model import LogisticRegression

    held_out = set(held_out)
    if visible_links(snapshot, held_out) < min_links:
        return None
    diffs, questions = training_pairs(snapshot, held_out, seed=seed)
    if len(diffs) == 0:
        return None
    kept = list(LEARNED)
    coefficients: dict[str, float] = {}
    while kept:
        cols = [INDEX[name] for name in kept]
        d = diffs[:, cols]
        scale = d.std(axis=0)
        scale[scale == 0] = 1.0
        # Both orders of each pair: labels balanced, the boundary goes through 0 (no intercept).
        data = np.concatenate((d / scale, -d / scale))
        labels = np.r_[np.ones(len(d)), np.zeros(len(d))]
        model = LogisticRegression(fit_intercept=False, C=1.0, max_iter=1000)
        model.fit(data, labels)
        beta = model.coef_[0] / scale
        wrong = [i for i, name in enumerate(kept) if beta[i] * LEARNED_SIGNS[name] < 0]
        if not wrong:
            coefficients = {name: float(b) for name, b in zip(kept, beta, strict=True)}
            break
        # Drop the most contradicted feature, refit the others.
        worst = max(wrong, key=lambda i: abs(beta[i] * scale[i]))
        kept.pop(worst)
    coefficients.update(PRIOR_COEFFICIENTS)
    x_all = np.concatenate([q.x for q in questions])
    reference = dict(zip(FEATURES, np.median(x_all, axis=0).tolist(), strict=True))
    ranker = LinearRanker(coefficients=coefficients, reference=reference)
    # Intercept: the median candidate scores one half.
    intercept = -float(np.median(ranker.logit(x_all)))
    return LinearRanker(coefficients=coefficients, intercept=intercept, reference=reference)


@dataclass
class CrossValidation:
    k: int
    links: int = 0
    questions: int = 0
    ranks: dict[str, list] = field(default_factory=lambda: {"learned": [], "nearest": []})

    def recall(self, method: str, at: int) -> float:
        ranks = self.ranks[method]
        return sum(1 for r in ranks if r is not None and r <= at) / len(ranks) if ranks else 0.0

    def card(self) -> dict:
        return {
            f"recall_at_{at}": {m: round(self.recall(m, at), 4) for m in ("learned", "nearest")} for at in (1, 3, 10)
        } | {"links_asked": self.links}


def _rank_of(order_ids: np.ndarray, farm: int, k: int):
    where = np.flatnonzero(order_ids[:k] == farm)
    return int(where[0]) + 1 if where.size else None


def cross_validate(
    snapshot: Snapshot,
    *,
    folds: int | None = CV_FOLDS,
    k: int = 10,
    radius_km: float = EVALUATION_RADIUS_KM,
    min_links: int = 0,
    seed: int = SEED,
    progress: Progress | None = None,
) -> CrossValidation:
    """Recall@k of the fitted ranking against nearest-first, AMAPs left out by fold (None: one by one).

    `progress`, if given, counts the AMAPs left out.
    """
    amaps = sorted(set(snapshot.link_amap.tolist()))
    if progress is not None:
        progress.total = len(amaps)
    groups = [[a] for a in amaps] if folds is None else [amaps[i::folds] for i in range(min(folds, len(amaps)))]
    report = CrossValidation(k=k)
    for group in groups:
        held_out = set(group)
        ranker = fit(snapshot, held_out=held_out, min_links=min_links, seed=seed)
        hidden = snapshot.links_of(held_out)
        for amap in group:
            for question in questions_for_amap(snapshot, amap, hidden=hidden, radius_km=radius_km):
                report.questions += 1
                ids = snapshot.farm_id[question.farms]
                nearest = ids[np.lexsort((ids, question.distance_m))]
                if ranker is None:
                    learned = nearest
                else:
                    learned = ids[np.lexsort((ids, question.distance_m, -ranker.logit(question.x)))]
                own = np.flatnonzero(snapshot.link_amap == amap)
                real = set(snapshot.link_farm[own[snapshot.link_product[own] == question.product]].tolist())
                for farm in sorted(real):
                    report.links += 1
                    farm_id = snapshot.farm_id[farm]
                    report.ranks["learned"].append(_rank_of(learned, farm_id, k))
                    report.ranks["nearest"].append(_rank_of(nearest, farm_id, k))
            if progress is not None:
                progress.advance()
    return report


def model_card(snapshot: Snapshot, ranker: LinearRanker | None, cv: CrossValidation) -> dict:
    return {
        "links": int(len(snapshot.link_id)),
        "amaps": int(len(set(snapshot.link_amap.tolist()))),
        "farms": int(len(snapshot.farm_id)),
        "fitted": ranker is not None,
        "min_links": MIN_LINKS,
        "cross_validation": {"folds": CV_FOLDS, "radius_km": EVALUATION_RADIUS_KM, **cv.card()},
        "coefficients": {} if ranker is None else {k: round(v, 4) for k, v in ranker.coefficients.items()},
        "finite": ranker is None or all(math.isfinite(v) for v in ranker.coefficients.values()),
    }
