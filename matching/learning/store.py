"""Storing a fitted ranking as a new version (the `train_matching` command and its scheduled job)."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Max

from geo.progress import Progress

from ..models import MatchingModel
from .features import load_snapshot
from .training import MIN_LINKS, cross_validate, fit, model_card


@transaction.atomic
def matching_model_train(*, min_links: int = MIN_LINKS, progress: Progress | None = None) -> MatchingModel | None:
    """Refit on every active partnership, cross-validate, store as the next version (the active one).

    Under `min_links` links nothing is stored and every earlier model is switched off: the fixed weights rank.
    """
    snapshot = load_snapshot()
    ranker = fit(snapshot, min_links=min_links)
    if ranker is None:
        MatchingModel.objects.filter(is_active=True).update(is_active=False)
        return None
    cv = cross_validate(snapshot, min_links=0, progress=progress)
    version = (MatchingModel.objects.aggregate(v=Max("version"))["v"] or 0) + 1
    MatchingModel.objects.filter(is_active=True).update(is_active=False)
    return MatchingModel.objects.create(
        version=version,
        parameters=ranker.to_json(),
        card=model_card(snapshot, ranker, cv),
        links=len(snapshot.link_id),
        is_active=True,
    )
