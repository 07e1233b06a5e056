"""Reads on contracts: a subscription's totals and instalments, distribution sheets,
preparation lists, summaries, and what each person may see.

Every figure is a sum of `SubscriptionItem` rows (quantity × the unit price stored on the
item), so totals, sheets and summaries always agree. Cancelled deliveries (aléa) count
neither as delivered nor as paid; postponed ones count on their new `date`.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from django.db.models import Count, DecimalField, ExpressionWrapper, F, Min, Sum

from .models import ContractProduct, Delivery, Subscription, SubscriptionItem

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


def line_amount(prefix: str = "") -> ExpressionWrapper:
    """quantity × unit_price of an item, in SQL, as an exact decimal (never a float)."""
    return ExpressionWrapper(
        F(f"{prefix}quantity") * F(f"{prefix}unit_price"), output_field=DecimalField(max_digits=14, decimal_places=2)
    )


def money(value) -> Decimal:
    """A Decimal rounded to the cent (None → 0.00)."""
    return Decimal(value or 0).quantize(CENT)


# --------------------------------------------------------------------------------------------
# One subscription: totals and payment schedule


@dataclass(frozen=True)
class ProductTotal:
    product: ContractProduct
    quantity: int
    amount: Decimal

    # Unpacks as (product, quantity, amount), the shape the shared plan names.
    def __iter__(self):
        return iter((self.product, self.quantity, self.amount))


@dataclass(frozen=True)
class Instalment:
    due_date: dt.date | None
    amount: Decimal

    def __iter__(self):
        return iter((self.due_date, self.amount))


@dataclass(frozen=True)
class Totals:
    """What a subscription costs: `total` == sum of `per_product` amounts == sum of `instalments`."""

    total: Decimal
    deliveries: int  # counted (not cancelled) deliveries on which the subscription takes something
    per_product: list[ProductTotal]
    instalments: list[Instalment]
    first_delivery: dt.date | None = None
    last_delivery: dt.date | None = None


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day `months` later, clamped to the month's last day (31 Jan + 1 → 28/29 Feb)."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def split_instalments(*, total: Decimal, count: int, first_due: dt.date | None) -> list[Instalment]:
    """`count` equal amounts to the cent, the leftover cents on the first; they sum to `total` exactly.

    Due dates: the first on `first_due` (the first counted delivery), then the same day of
    each following month (clamped to the month's end). None when there is no delivery.
    """
    if count < 1:
        raise ValueError("count must be at least 1")
    total = money(total)
    base = (total / count).quantize(CENT, rounding=ROUND_DOWN)
    remainder = total - base * count  # 0 ≤ remainder < count cents
    return [
        Instalment(
            due_date=add_months(first_due, k) if first_due is not None else None,
            amount=base + remainder if k == 0 else base,
        )
        for k in range(count)
    ]


def counted_items(queryset=None):
    """Items on deliveries that count (not cancelled)."""
    queryset = SubscriptionItem.objects.all() if queryset is None else queryset
    return queryset.exclude(delivery__status=Delivery.Status.CANCELLED)


def subscription_totals(*, subscription: Subscription) -> Totals:
    """Total, per-product figures and instalments of one subscription (whatever its status).

    Only its items on counted deliveries are summed, at the unit price stored on each item.
    """
    items = counted_items(SubscriptionItem.objects.filter(subscription=subscription))
    per_product_rows = list(
        items.order_by().values("product_id").annotate(qty=Sum("quantity"), amount=Sum(line_amount())).order_by()
    )
    span = items.aggregate(first=Min("delivery__date"), deliveries=Count("delivery_id", distinct=True))
    last = items.order_by("-delivery__date").values_list("delivery__date", flat=True).first()
    products = {p.pk: p for p in ContractProduct.objects.filter(pk__in=[r["product_id"] for r in per_product_rows])}
    per_product = sorted(
        (
            ProductTotal(product=products[row["product_id"]], quantity=row["qty"], amount=money(row["amount"]))
            for row in per_product_rows
        ),
        key=lambda line: (line.product.position, line.product.pk),
    )
    total = money(sum((line.amount for line in per_product), ZERO))
    return Totals(
        total=total,
        deliveries=span["deliveries"],
        per_product=per_product,
        instalments=split_instalments(total=total, count=max(1, subscription.instalments), first_due=span["first"]),
        first_delivery=span["first"],
        last_delivery=last,
    )
