"""Summaries, distribution sheets and preparation lists as CSV and PDF files.

CSV is written for French spreadsheets (LibreOffice, Excel set to French): UTF-8 with a
byte-order mark (so that Excel reads the accents), `;` between fields, a decimal comma
(`12,50`), dates as `dd/mm/yyyy`, no thousands separator; the last line is the total.
Cells that a spreadsheet would take for a formula (`=`, `+`, `-`, `@`…) are prefixed with `'`.

PDF is rendered by WeasyPrint from the templates in `contracts/templates/contracts/exports/`
(A4, DejaVu fonts). Every figure comes from `contracts.selectors`, so files, pages and API agree.
"""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

from django.template.loader import render_to_string
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _

from directory.csv_export import csv_safe_cell, csv_writer

from . import selectors
from .models import Delivery
from .selectors import Summary

BOM = "\ufeff"
DELIMITER = ";"


# --------------------------------------------------------------------------------------------
# Formatting


def decimal_comma(value: Decimal | int | None) -> str:
    """`12,50` (cents always shown), as French spreadsheets read numbers."""
    return f"{Decimal(value or 0):.2f}".replace(".", ",")


def safe_text(value) -> str:
    """Text cell that no spreadsheet will run as a formula (names are typed by members)."""
    return csv_safe_cell("" if value is None else str(value))


def money_label(value: Decimal) -> str:
    """`1 234,50 €` for the PDFs."""
    with translation.override("fr"):
        return f"{formats.number_format(value, decimal_pos=2, use_l10n=True, force_grouping=True)} €"


def long_date(day: dt.date) -> str:
    """`mardi 6 avril 2027`, `jeudi 1er juillet 2027`."""
    with translation.override("fr"):
        return formats.date_format(day, "l j\\e\\r F Y" if day.day == 1 else "l j F Y")


def _csv_bytes(rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv_writer(buffer, delimiter=DELIMITER, lineterminator="\r\n")
    writer.writerows(rows)
    return (BOM + buffer.getvalue()).encode("utf-8")


def _pdf(template: str, context: dict, *, title: str) -> bytes:
    from weasyprint import HTML

    with translation.override("fr"):
        html = render_to_string(template, {**context, "document_title": title})
    return HTML(string=html).write_pdf()


# --------------------------------------------------------------------------------------------
# Summaries

BY_HEADER = {
    "date": "Date",
    "product": "Produit",
    "member": "Adhérent·e",
    "farmer": "Ferme",
}


def _summary(summary: Summary | None, **scope) -> Summary:
    if summary is not None:
        return summary
    return selectors.summary(**scope)


def summary_scope_label(*, contract=None, farm=None, amap=None, start=None, end=None) -> str:
    """What a summary covers, in French: « Contrat Légumes 2027 — du 01/05/2027 au 30/06/2027 »."""
    parts = []
    if contract is not None:
        parts.append(f"Contrat « {contract.title} » ({contract.amap.name} / {contract.farm.name})")
    if amap is not None:
        parts.append(f"AMAP {amap.name}")
    if farm is not None:
        parts.append(f"Ferme {farm.name}")
    if start is not None and end is not None:
        parts.append(f"du {start:%d/%m/%Y} au {end:%d/%m/%Y}")
    elif start is not None:
        parts.append(f"à partir du {start:%d/%m/%Y}")
    elif end is not None:
        parts.append(f"jusqu'au {end:%d/%m/%Y}")
    return " — ".join(parts) or "Toutes les distributions"


def summary_table(summary: Summary) -> tuple[list[str], list[list[str]]]:
    """Header and rows (totals last) of a summary, as text cells for CSV."""
    per_product = summary.by != "product"
    header = [BY_HEADER[summary.by]]
    if summary.by == "product":
        header.append("Contrat")
    if per_product:
        header += [f"{column.label} (quantité)" for column in summary.columns]
    header += ["Quantité totale", "Montant (€)", "Distributions", "Souscriptions"]
    columns_by_id = {column.product_id: column for column in summary.columns}
    rows = []
    for row in [*summary.rows, summary.totals]:
        cells = [safe_text(row.label)]
        if summary.by == "product":
            column = columns_by_id.get(row.key)
            cells.append(safe_text(column.contract_title) if column else "")
        if per_product:
            cells += [str(qty) for qty in row.cells(summary.columns)]
        cells += [str(row.quantity), decimal_comma(row.amount), str(row.deliveries), str(row.subscriptions)]
        rows.append(cells)
    return header, rows


def summary_csv(
    *,
    by: str = "date",
    contract=None,
    farm=None,
    amap=None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    summary: Summary | None = None,
) -> bytes:
    """A summary as CSV (see the module's docstring for the format); `summary` if already computed."""
    summary = _summary(summary, by=by, contract=contract, farm=farm, amap=amap, start=start, end=end)
    header, rows = summary_table(summary)
    return _csv_bytes([header, *rows])


def summary_pdf(
    *,
    by: str = "date",
    contract=None,
    farm=None,
    amap=None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    summary: Summary | None = None,
    title: str | None = None,
) -> bytes:
    """A summary as an A4 PDF: one column per product, quantity and amount totals, grand total."""
    summary = _summary(summary, by=by, contract=contract, farm=farm, amap=amap, start=start, end=end)
    scope = summary_scope_label(contract=contract, farm=farm, amap=amap, start=start, end=end)
    per_product = summary.by != "product"
    context = {
        "summary": summary,
        "scope": scope,
        "by_header": BY_HEADER[summary.by],
        "per_product": per_product,
        "columns": summary.columns if per_product else [],
        "rows": [
            {
                "label": row.label,
                "cells": row.cells(summary.columns) if per_product else [],
                "quantity": row.quantity,
                "amount": money_label(row.amount),
                "deliveries": row.deliveries,
                "subscriptions": row.subscriptions,
            }
            for row in [*summary.rows, summary.totals]
        ],
        "printed_on": timezone.localdate().strftime("%d/%m/%Y"),
        # Many product columns: landscape pages.
        "landscape": per_product and len(summary.columns) > 4,
    }
    return _pdf("contracts/exports/summary.html", context, title=title or f"{summary.title} — {scope}")


# --------------------------------------------------------------------------------------------
# One delivery: distribution sheet and preparation list


def _delivery_context(delivery: Delivery) -> dict:
    contract = delivery.contract
    hours = ""
    if contract.delivery_start and contract.delivery_end:
        hours = f"{contract.delivery_start:%Hh%M} – {contract.delivery_end:%Hh%M}"
    elif contract.delivery_start:
        hours = f"à partir de {contract.delivery_start:%Hh%M}"
    status_note = ""
    if delivery.status == Delivery.Status.CANCELLED:
        status_note = "Distribution annulée (aléa de production)"
    elif delivery.date != delivery.scheduled_date:
        status_note = f"Distribution reportée : prévue le {long_date(delivery.scheduled_date)}"
    if status_note and delivery.note:
        status_note += f" — {delivery.note}"
    return {
        "delivery": delivery,
        "contract": contract,
        "date_label": long_date(delivery.date),
        "hours": hours,
        "place": contract.delivery_place or contract.amap.address or contract.amap.name,
        "status_note": status_note,
    }


def distribution_sheet_pdf(*, delivery: Delivery) -> bytes:
    """The sheet to tick off at the distribution: a box per member, their quantities, absences
    and substitutes, the totals of the preparation list at the bottom."""
    rows = selectors.distribution_sheet(delivery=delivery)
    preparation = selectors.preparation_list(delivery=delivery)
    context = {
        **_delivery_context(delivery),
        "products": [line.product for line in preparation],
        "rows": rows,
        "preparation": preparation,
    }
    title = f"Feuille de distribution — {delivery.contract.title} — {delivery.date:%d/%m/%Y}"
    return _pdf("contracts/exports/distribution_sheet.html", context, title=title)


def distribution_sheet_csv(*, delivery: Delivery) -> bytes:
    """The distribution sheet as CSV: member, quantities per product, absence, substitute."""
    rows = selectors.distribution_sheet(delivery=delivery)
    preparation = selectors.preparation_list(delivery=delivery)
    header = ["Adhérent·e", *[f"{line.product.name} (quantité)" for line in preparation], "Absent·e", "Remplaçant·e"]
    table = [header]
    for row in rows:
        table.append(
            [
                safe_text(row.member_name),
                *[str(qty) for _product, qty in row.lines],
                "oui" if row.absent else "",
                safe_text(row.substitute_name),
            ]
        )
    table.append([_("Total"), *[str(line.quantity) for line in preparation], "", ""])
    return _csv_bytes(table)


def preparation_list_pdf(*, delivery: Delivery) -> bytes:
    """The farmer's list for one delivery: quantity per product, members taking it, value."""
    preparation = selectors.preparation_list(delivery=delivery)
    context = {
        **_delivery_context(delivery),
        "lines": [
            {
                "name": line.product.name,
                "quantity": line.quantity,
                "members": line.members,
                "amount": money_label(line.amount),
            }
            for line in preparation
        ],
        "total_quantity": sum(line.quantity for line in preparation),
        "total_amount": money_label(sum((line.amount for line in preparation), Decimal("0"))),
    }
    title = f"Liste de préparation — {delivery.contract.title} — {delivery.date:%d/%m/%Y}"
    return _pdf("contracts/exports/preparation_list.html", context, title=title)


def preparation_list_csv(*, delivery: Delivery) -> bytes:
    preparation = selectors.preparation_list(delivery=delivery)
    table = [["Produit", "Quantité", "Adhérent·es", "Montant (€)"]]
    for line in preparation:
        table.append([safe_text(line.product.name), str(line.quantity), str(line.members), decimal_comma(line.amount)])
    table.append(
        [
            _("Total"),
            str(sum(line.quantity for line in preparation)),
            "",
            decimal_comma(sum((line.amount for line in preparation), Decimal("0"))),
        ]
    )
    return _csv_bytes(table)
