"""The adhésion receipt as a PDF (WeasyPrint, fonts embedded, same data → same bytes)."""

from __future__ import annotations

import datetime as dt
import hashlib

from django.template.loader import render_to_string
from django.utils import translation

from .models import Adhesion

RECEIPT_TEMPLATE = "members/pdf/receipt.html"


def _long_date(day: dt.date) -> str:
    months = (
        "janvier",
        "février",
        "mars",
        "avril",
        "mai",
        "juin",
        "juillet",
        "août",
        "septembre",
        "octobre",
        "novembre",
        "décembre",
    )
    return f"{day.day} {months[day.month - 1]} {day.year}"


def adhesion_receipt_pdf(*, adhesion: Adhesion) -> bytes:
    """The receipt of a paid adhésion; its dates come from the payment, never from the clock."""
    from weasyprint import HTML

    membership, season = adhesion.membership, adhesion.season
    paid_at = adhesion.paid_at.astimezone(dt.UTC)
    context = {
        "adhesion": adhesion,
        "membership": membership,
        "amap": membership.amap,
        "season": season,
        "name": membership.full_name or membership.email,
        "amount": f"{adhesion.amount:.2f}".replace(".", ",") + " €",
        "paid_label": _long_date(paid_at.date()),
        "paid_iso": paid_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    with translation.override("fr"):
        html = render_to_string(RECEIPT_TEMPLATE, context)
    identifier = hashlib.sha256(f"amap-atlas:adhesion:{adhesion.receipt_number}".encode()).hexdigest()[:32]
    return HTML(string=html).write_pdf(pdf_identifier=identifier.encode("ascii"))
