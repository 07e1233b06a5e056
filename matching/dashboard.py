"""Matchmaking's sections of « Mon espace »: annonces, messages, alerts and annonces to moderate."""

from accounts.dashboard import register_section

from .models import MatchingModel
from .selectors import annonces_managed_by, annonces_to_moderate
from .threads import thread_title_for, threads_for


def _annonces(*, user) -> dict:
    return {"annonces": annonces_managed_by(user=user)[:50]}


def _threads(*, user) -> dict:
    threads = list(threads_for(user=user).select_related("sender_amap", "sender_farm", "started_by")[:20])
    for thread in threads:
        thread.title_for_reader = thread_title_for(thread=thread, user=user)
    return {"threads": threads}


def _alerts(*, user) -> dict:
    return {"alerts": user.saved_searches.all()}


def _to_moderate(*, user) -> dict:
    return {"to_moderate": annonces_to_moderate(user=user)[:50]}


def _model_card(*, user) -> dict:
    """The learned ranking's card (data size, date, cross-validated recall against nearest-first): staff only."""
    if not (user.is_authenticated and user.is_staff):
        return {"show": False}
    model = MatchingModel.objects.filter(is_active=True).order_by("-version").first()
    rows = []
    if model is not None:
        cv = model.card.get("cross_validation", {})
        for at in (1, 3, 10):
            recall = cv.get(f"recall_at_{at}", {})
            rows.append((at, recall.get("learned"), recall.get("nearest")))
    return {"show": True, "model": model, "recall_rows": rows}


def register() -> None:
    for name, position, context in (
        ("annonces", 40, _annonces),
        ("threads", 50, _threads),
        ("alerts", 60, _alerts),
        ("moderation", 70, _to_moderate),
        ("model", 80, _model_card),
    ):
        register_section(
            name=f"matching.{name}",
            position=position,
            template_name=f"matching/dashboard/{name}.html",
            context=context,
        )
