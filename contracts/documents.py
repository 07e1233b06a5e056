"""The contract PDF both parties sign: rendering, freezing, verification.

`contract_pdf` renders a normalised French contract with WeasyPrint. The same data always
gives the same bytes (no clock, no random identifier: the PDF's dates come from the
subscription), so the SHA-256 recorded with the signatures can be checked against any copy.
`document_freeze` stores those bytes once; after that, the stored PDF is the contract.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import formats, translation
from django.utils.translation import gettext as _

from . import charter as default_charter
from .models import Charter, ContractDocument, Delivery, Subscription, SubscriptionItem

PDF_TEMPLATE = "contracts/pdf/contract.html"
UNFREEZABLE_STATUSES = (Subscription.Status.WAITING, Subscription.Status.CANCELLED)


def charter_current() -> Charter:
    """The charter version offered for signature.

    If the table is empty (a fresh database flushed by a test, say), the default summary
    (`contracts.charter`, the text migration 0002 loaded) is put back, so there is always a charter to accept.
    """
    charter = Charter.objects.filter(is_current=True).first()
    if charter is not None:
        return charter
    if Charter.objects.exists():
        raise ValidationError(
            {
                "charter": [
                    _("Aucune version de la charte n'est en vigueur : un·e administrateur·rice doit en choisir une.")
                ]
            }
        )
    charter, _created = Charter.objects.get_or_create(
        version=default_charter.VERSION,
        defaults={
            "title": default_charter.TITLE,
            "text": default_charter.TEXT,
            "published_on": default_charter.PUBLISHED_ON,
            "is_current": True,
        },
    )
    return charter


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------------------------
# Rendering


def _money(value: Decimal) -> str:
    with translation.override("fr"):
        return f"{formats.number_format(value, decimal_pos=2, use_l10n=True, force_grouping=True)} €"


def _long_date(day: dt.date | None) -> str:
    if day is None:
        return "—"
    with translation.override("fr"):
        # « 1er juin », as French writes the first of the month.
        return formats.date_format(day, "l j\\e\\r F Y" if day.day == 1 else "l j F Y")


def _short_date(day: dt.date | None) -> str:
    return "—" if day is None else day.strftime("%d/%m/%Y")


def _time(value: dt.time | None) -> str:
    return "" if value is None else value.strftime("%Hh%M")


@dataclass(frozen=True)
class _CalendarRow:
    date: str
    note: str
    quantities: list[str]


def _calendar(subscription: Subscription, products: list) -> list[_CalendarRow]:
    """Every delivery of the contract with this subscription's quantity of each product."""
    quantities: dict[tuple[int, int], int] = {}
    for delivery_id, product_id, quantity in SubscriptionItem.objects.filter(subscription=subscription).values_list(
        "delivery_id", "product_id", "quantity"
    ):
        quantities[(delivery_id, product_id)] = quantity
    rows = []
    for delivery in Delivery.objects.filter(contract_id=subscription.contract_id).order_by(
        "date", "scheduled_date", "pk"
    ):
        note = ""
        if delivery.status == Delivery.Status.CANCELLED:
            note = _("annulée (aléa)")
        elif delivery.date != delivery.scheduled_date:
            note = _("reportée (prévue le %(date)s)") % {"date": _short_date(delivery.scheduled_date)}
        rows.append(
            _CalendarRow(
                date=_long_date(delivery.date),
                note=note,
                quantities=[str(quantities.get((delivery.pk, product.pk), "")) for product in products],
            )
        )
    return rows


def _context(subscription: Subscription) -> dict:
    from .selectors import subscription_totals

    subscription = Subscription.objects.select_related(
        "contract__amap__commune", "contract__farm__commune", "contract__referent", "previous"
    ).get(pk=subscription.pk)
    contract = subscription.contract
    totals = subscription_totals(subscription=subscription)
    products = list(contract.products.order_by("position", "pk"))
    charter = charter_current()
    amap, farm = contract.amap, contract.farm
    hours = ""
    if contract.delivery_start and contract.delivery_end:
        hours = _("de %(start)s à %(end)s") % {
            "start": _time(contract.delivery_start),
            "end": _time(contract.delivery_end),
        }
    return {
        "subscription": subscription,
        "contract": contract,
        "reference": f"{subscription.pk}-v{subscription.version}",
        "amap": amap,
        "amap_place": ", ".join(
            p for p in [amap.address, amap.postal_code, amap.commune.name if amap.commune else ""] if p
        ),
        "farm": farm,
        "farm_place": " ".join(p for p in [farm.postal_code, farm.commune.name if farm.commune else ""] if p),
        "referent_name": str(contract.referent),
        "member_name": subscription.member_name,
        "season_start": _long_date(contract.season_start),
        "season_end": _long_date(contract.season_end),
        "weekday": contract.get_weekday_display(),
        "frequency": contract.get_frequency_display(),
        "hours": hours,
        "delivery_place": contract.delivery_place,
        "pattern": subscription.get_pattern_display(),
        "shares": subscription.shares,
        "products": [
            {
                "name": line.product.name,
                "unit_price": _money(line.product.unit_price),
                "quantity": line.quantity,
                "amount": _money(line.amount),
            }
            for line in totals.per_product
        ],
        "catalogue": [{"name": p.name, "unit_price": _money(p.unit_price)} for p in products],
        "calendar_products": [p.name for p in products],
        "calendar": _calendar(subscription, products),
        "deliveries_count": totals.deliveries,
        "first_delivery": _long_date(totals.first_delivery),
        "last_delivery": _long_date(totals.last_delivery),
        "total": _money(totals.total),
        "instalments": [
            {"due": _short_date(instalment.due_date), "amount": _money(instalment.amount)}
            for instalment in totals.instalments
        ],
        "payment_method": subscription.get_payment_method_display(),
        "payee": contract.payment_payee or farm.name,
        "charter": charter,
        "commitments": contract.commitments,
        # The PDF's own dates: when the subscription was made, never "now".
        "created_iso": subscription.created_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "created_label": _long_date(subscription.created_at.date()),
    }


def contract_pdf(*, subscription: Subscription) -> bytes:
    """The contract of this subscription as a PDF; the same data always gives the same bytes."""
    from weasyprint import HTML

    context = _context(subscription)
    with translation.override("fr"):
        html = render_to_string(PDF_TEMPLATE, context)
    identifier = sha256_hex(f"amap-atlas:subscription:{context['reference']}".encode())[:32].encode("ascii")
    return HTML(string=html).write_pdf(pdf_identifier=identifier)


# --------------------------------------------------------------------------------------------
# Freezing and verifying


def document_freeze(*, subscription: Subscription, pdf: bytes | None = None) -> ContractDocument:
    """Store the PDF of this subscription once; afterwards return the stored one unchanged.

    `pdf`: bytes already rendered by `contract_pdf` (so that what was shown is what is kept).
    Raises `ValidationError` if a different PDF is offered for a subscription already frozen.
    """
    with transaction.atomic():
        subscription = Subscription.objects.select_for_update().get(pk=subscription.pk)
        existing = ContractDocument.objects.filter(subscription=subscription).first()
        if existing is not None:
            if pdf is not None and sha256_hex(pdf) != existing.sha256:
                raise ValidationError(
                    {
                        "document": [
                            _("Le contrat de cette souscription est déjà figé : son PDF ne peut plus être remplacé.")
                        ]
                    }
                )
            return existing
        if subscription.status in UNFREEZABLE_STATUSES:
            raise ValidationError(
                {"subscription": [_("Une souscription en liste d'attente ou annulée n'a pas de contrat à figer.")]}
            )
        if pdf is None:
            pdf = contract_pdf(subscription=subscription)
        if not pdf.startswith(b"%PDF-"):
            raise ValidationError({"document": [_("Ce fichier n'est pas un PDF.")]})
        document = ContractDocument.objects.create(subscription=subscription, pdf=pdf, sha256=sha256_hex(pdf))
    return document


def document_verify(*, pdf: bytes) -> ContractDocument | None:
    """The stored contract this exact PDF is, or None (one changed byte is enough to fail)."""
    if not pdf:
        return None
    digest = sha256_hex(pdf)
    for document in ContractDocument.objects.filter(sha256=digest).select_related("subscription__contract"):
        # The digest finds it; the bytes prove it.
        if bytes(document.pdf) == pdf:
            return document
    return None
