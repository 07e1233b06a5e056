"""What matching holds about a person, declared to « Mes données » (`accounts.privacy`).

Alerts (saved searches) are exported and erased with the account: they only served to warn
the person. Messages stay in their threads for the other side, without the author's name
(the account is anonymised), so erasure only counts them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils.translation import gettext as _

from accounts.privacy import ErasureNote, PersonalDataCsv, register_personal_data

from .models import Message, SavedSearch


def _json(value: Any) -> Any:
    return value.isoformat() if isinstance(value, (dt.datetime, dt.date)) else value


def alerts_export(user) -> list[dict[str, Any]]:
    searches = SavedSearch.objects.filter(user=user).prefetch_related("products")
    return [
        {
            "target": search.target,
            "place": search.place,
            "radius_km": search.radius_km,
            "products": sorted(product.name for product in search.products.all()),
            "created_at": _json(search.created_at),
        }
        for search in searches.order_by("created_at", "pk")
    ]


def alerts_count(user) -> int:
    return SavedSearch.objects.filter(user=user).count()


def alerts_erase(user) -> None:
    SavedSearch.objects.filter(user=user).delete()


def messages_count(user) -> int:
    return Message.objects.filter(author=user).count()


def register() -> None:
    """Called from `MatchingConfig.ready()`."""
    register_personal_data(
        "alerts",
        export=alerts_export,
        csv=PersonalDataCsv(
            "alertes.csv",
            ["type", "lieu", "rayon_km", "produits", "creee_le"],
            lambda a: [a["target"], a["place"], a["radius_km"], ", ".join(a["products"]), a["created_at"]],
        ),
        count=alerts_count,
        erasure_note=lambda count: ErasureNote(
            _("%(count)d alerte(s) e-mail") % {"count": count},
            _("Supprimées : elles ne servaient qu'à vous prévenir."),
        ),
        erase=alerts_erase,
    )
    register_personal_data(
        "messages",
        count=messages_count,
        erasure_note=lambda count: ErasureNote(
            _("%(count)d message(s) dans des conversations") % {"count": count},
            _("Conservés pour vos correspondants, sans votre nom ni votre adresse e-mail."),
            kept=True,
        ),
    )
