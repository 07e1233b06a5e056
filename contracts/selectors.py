"""Reads on contracts: a subscription's totals and instalments, distribution sheets,
preparation lists, summaries, and what each person may see.

Every figure is a sum of `SubscriptionItem` rows (quantity × the unit price stored on the
item), so totals, sheets and summaries always agree. Cancelled deliveries (aléa) count
neither as delivered nor as paid; postponed ones count on their new `date`.
"""

from __future__ import annotations

import calendar
import datetime as dt
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal

from django.db.models import Count, DecimalField, Exists, ExpressionWrapper, F, Min, OuterRef, Q, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.utils.translation import gettext_lazy as _

from directory.models import AmapManager, Farm

from .models import Absence, Contract, ContractProduct, Delivery, Subscription, SubscriptionItem

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


# --------------------------------------------------------------------------------------------
# Who sees what (the list side of accounts/permissions.py's contract checks)


def _authenticated(user) -> bool:
    return bool(user is not None and getattr(user, "is_authenticated", False) and user.is_active)


def _managed_or_farmed(user) -> Q:
    """Contracts the user runs (référent, AMAP admin) or farms (a manager of the farm)."""
    admin_of = AmapManager.objects.filter(user_id=user.pk, role=AmapManager.Role.ADMIN).values("amap_id")
    farms = Farm.managers.through.objects.filter(user_id=user.pk).values("farm_id")
    return Q(referent_id=user.pk) | Q(amap_id__in=admin_of) | Q(farm_id__in=farms)


def contracts_visible_to(*, user, include_open: bool = True) -> QuerySet[Contract]:
    """Contracts `can_view_contract` lets this user see: those they run or farm, those they
    subscribed to, and (`include_open`) every contract open for subscription; staff see all."""
    if not _authenticated(user):
        return Contract.objects.none()
    if user.is_staff:
        return Contract.objects.all()
    subscribed = Subscription.objects.filter(member_id=user.pk).values("contract_id")
    condition = _managed_or_farmed(user) | Q(pk__in=subscribed)
    if include_open:
        condition |= Q(status=Contract.Status.OPEN)
    return Contract.objects.filter(condition)


def subscriptions_of(*, user, own_only: bool = False) -> QuerySet[Subscription]:
    """Subscriptions `can_view_subscription` lets this user see: their own, and every one of the
    contracts they run or farm (`own_only`: just their own); staff see all."""
    if not _authenticated(user):
        return Subscription.objects.none()
    if own_only:
        return Subscription.objects.filter(member_id=user.pk)
    if user.is_staff:
        return Subscription.objects.all()
    managed = Contract.objects.filter(_managed_or_farmed(user)).values("pk")
    return Subscription.objects.filter(Q(member_id=user.pk) | Q(contract_id__in=managed))


def deliveries_of_member(*, user) -> QuerySet[Delivery]:
    """Deliveries on which the user's signed subscriptions take something, cancelled ones included
    (a calendar shows them as cancelled), by date; the contract, its AMAP and farm come along,
    and `amap_commune_name`.

    A subscription the member signed and the farmer has not countersigned yet counts too: its
    deliveries carry `awaiting_countersignature=True` (« en attente de contre-signature »)."""
    if not _authenticated(user):
        return Delivery.objects.none()
    mine = SubscriptionItem.objects.filter(delivery_id=OuterRef("pk"), subscription__member_id=user.pk)
    countersigned = mine.filter(subscription__status=Subscription.Status.SIGNED)
    member_signed = mine.filter(subscription__status=Subscription.Status.MEMBER_SIGNED)
    return (
        Delivery.objects.filter(Exists(countersigned) | Exists(member_signed))
        .select_related("contract__amap", "contract__farm")
        # Points are not needed for a list of dates, and parsing geometries costs more than the query.
        .defer("contract__amap__location", "contract__farm__location", "contract__farm__public_location")
        .annotate(
            amap_commune_name=F("contract__amap__commune__name"), awaiting_countersignature=~Exists(countersigned)
        )
        .order_by("date", "pk")
    )


def subscriptions_awaiting_countersignature(*, user) -> QuerySet[Subscription]:
    """Subscriptions signed by their member that wait for this farmer's countersignature (« À contresigner »),
    oldest first; staff see none here (they do not sign for farms)."""
    if not _authenticated(user):
        return Subscription.objects.none()
    farms = Farm.managers.through.objects.filter(user_id=user.pk).values("farm_id")
    return (
        Subscription.objects.filter(status=Subscription.Status.MEMBER_SIGNED, contract__farm_id__in=farms)
        .select_related("contract", "contract__amap", "contract__farm")
        .order_by("updated_at", "pk")
    )


# --------------------------------------------------------------------------------------------
# One delivery: who takes what, what the farmer prepares


def sort_key(text: str) -> str:
    """Alphabetical order as a French reader expects it: Élodie between Eden and Emma."""
    decomposed = unicodedata.normalize("NFKD", text or "")
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def contract_products(contract: Contract) -> list[ContractProduct]:
    """The contract's products in their display order (the columns of its sheets)."""
    return list(ContractProduct.objects.filter(contract_id=contract.pk).order_by("position", "pk"))


@dataclass
class DistributionRow:
    """One member on one delivery's sheet: quantities per product, absence and substitute."""

    subscription_id: int
    member_name: str
    lines: list[tuple[ContractProduct, int]]  # every contract product in order, 0 when not taken
    absent: bool = False
    substitute_name: str = ""
    absence_note: str = ""

    @property
    def quantities(self) -> dict[int, int]:
        """product id → quantity, only for the products taken."""
        return {product.pk: qty for product, qty in self.lines if qty}

    @property
    def collector(self) -> str:
        """Who collects the share: the substitute when the member is away."""
        return self.substitute_name if self.absent and self.substitute_name else self.member_name


def signed_items(queryset=None):
    """Items of signed subscriptions: the only ones delivered, prepared and summed."""
    queryset = SubscriptionItem.objects.all() if queryset is None else queryset
    return queryset.filter(subscription__status=Subscription.Status.SIGNED)


def distribution_sheet(*, delivery: Delivery) -> list[DistributionRow]:
    """Signed subscriptions taking something on this delivery, one row per member, by name.

    The rows are the delivery's content whatever its status: for a cancelled delivery the
    page says it is cancelled (and summaries leave it out).
    """
    products = contract_products(delivery.contract)
    quantities: dict[int, dict[int, int]] = defaultdict(dict)
    names: dict[int, str] = {}
    for subscription_id, name, product_id, qty in signed_items(
        SubscriptionItem.objects.filter(delivery_id=delivery.pk)
    ).values_list("subscription_id", "subscription__member_name", "product_id", "quantity"):
        quantities[subscription_id][product_id] = quantities[subscription_id].get(product_id, 0) + qty
        names[subscription_id] = name
    absences = {
        a.subscription_id: a for a in Absence.objects.filter(delivery_id=delivery.pk, subscription_id__in=names)
    }
    rows = []
    for subscription_id, name in names.items():
        absence = absences.get(subscription_id)
        rows.append(
            DistributionRow(
                subscription_id=subscription_id,
                member_name=name,
                lines=[(product, quantities[subscription_id].get(product.pk, 0)) for product in products],
                absent=absence is not None,
                substitute_name=absence.substitute_name if absence else "",
                absence_note=absence.note if absence else "",
            )
        )
    rows.sort(key=lambda row: (sort_key(row.member_name), row.subscription_id))
    return rows


@dataclass(frozen=True)
class PreparationLine:
    """What the farmer brings of one product: total quantity, its value, how many members take it."""

    product: ContractProduct
    quantity: int
    amount: Decimal
    members: int

    # Unpacks as (product, quantity), the shape the shared plan names.
    def __iter__(self):
        return iter((self.product, self.quantity))


def preparation_list(*, delivery: Delivery) -> list[PreparationLine]:
    """Totals per product of the signed subscriptions on this delivery (every contract product,
    0 when nobody takes it), in the contract's product order."""
    sums = {
        row["product_id"]: row
        for row in signed_items(SubscriptionItem.objects.filter(delivery_id=delivery.pk))
        .order_by()
        .values("product_id")
        .annotate(qty=Sum("quantity"), amount=Sum(line_amount()), members=Count("subscription_id", distinct=True))
    }
    lines = []
    for product in contract_products(delivery.contract):
        row = sums.get(product.pk, {})
        lines.append(
            PreparationLine(
                product=product,
                quantity=row.get("qty") or 0,
                amount=money(row.get("amount")),
                members=row.get("members") or 0,
            )
        )
    return lines


# --------------------------------------------------------------------------------------------
# Summaries by date, product, member or farmer, for a contract, an AMAP, a farm or a period

SUMMARY_BY = ("date", "product", "member", "farmer")


@dataclass(frozen=True)
class SummaryColumn:
    """A product column of a summary (a product of one contract)."""

    product_id: int
    name: str
    contract_id: int
    contract_title: str
    label: str  # the name, with the contract's title when the summary spans several contracts


@dataclass
class SummaryRow:
    """One line of a summary: quantities and amounts per product, their totals, and counts."""

    key: object  # a date, a ContractProduct id, a member key, a Farm id; None for the totals
    label: str
    quantities: dict[int, int] = field(default_factory=dict)  # product id → quantity
    amounts: dict[int, Decimal] = field(default_factory=dict)  # product id → amount
    deliveries: int = 0  # distinct counted deliveries
    subscriptions: int = 0  # distinct signed subscriptions

    @property
    def quantity(self) -> int:
        return sum(self.quantities.values())

    @property
    def amount(self) -> Decimal:
        return money(sum(self.amounts.values(), ZERO))

    def cells(self, columns: list[SummaryColumn]) -> list[int]:
        """Quantities in the order of the summary's columns."""
        return [self.quantities.get(column.product_id, 0) for column in columns]


@dataclass
class Summary:
    by: str
    columns: list[SummaryColumn]
    rows: list[SummaryRow]
    totals: SummaryRow
    start: dt.date | None = None
    end: dt.date | None = None

    @property
    def title(self) -> str:
        return str(SUMMARY_TITLES[self.by])


SUMMARY_TITLES = {
    "date": _("Récapitulatif par date"),
    "product": _("Récapitulatif par produit"),
    "member": _("Récapitulatif par adhérent·e"),
    "farmer": _("Récapitulatif par ferme"),
}


def summary_items(
    *, contract=None, farm=None, amap=None, start: dt.date | None = None, end: dt.date | None = None
) -> QuerySet[SubscriptionItem]:
    """The items a summary sums: signed subscriptions, counted deliveries, within the scope."""
    if contract is None and farm is None and amap is None and start is None and end is None:
        raise ValueError("a summary needs a contract, a farm, an AMAP or a period")
    if start is not None and end is not None and end < start:
        raise ValueError("the period ends before it starts")
    items = counted_items(signed_items())
    if contract is not None:
        items = items.filter(delivery__contract_id=contract.pk)
    if farm is not None:
        items = items.filter(delivery__contract__farm_id=farm.pk)
    if amap is not None:
        items = items.filter(delivery__contract__amap_id=amap.pk)
    if start is not None:
        items = items.filter(delivery__date__gte=start)
    if end is not None:
        items = items.filter(delivery__date__lte=end)
    return items


# What each kind of summary groups by: (SQL group key, SQL label expression or None).
def _group(by: str):
    if by == "date":
        return F("delivery__date"), None
    if by == "product":
        return F("product_id"), None
    if by == "member":
        # One row per person across contracts; subscriptions whose member was anonymised
        # (no account any more) stay apart, keyed by the negated subscription id.
        return Coalesce(F("subscription__member_id"), -F("subscription_id")), Min("subscription__member_name")
    if by == "farmer":
        return F("delivery__contract__farm_id"), Min("delivery__contract__farm__name")
    raise ValueError(f"by must be one of {', '.join(SUMMARY_BY)}")


def summary(
    *,
    by: str,
    contract=None,
    farm=None,
    amap=None,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> Summary:
    """Quantities and amounts grouped `by` date, product, member or farmer, with grand totals.

    Scope: a contract, a farm, an AMAP, and/or a period (dates inclusive, on the delivery's
    actual date). Only signed subscriptions and counted deliveries are summed, in SQL.
    """
    key_expr, label_expr = _group(by)
    items = summary_items(contract=contract, farm=farm, amap=amap, start=start, end=end)

    # 1. quantity and amount per (group, product)
    cells = items.order_by().annotate(group_key=key_expr).values("group_key", "product_id")
    cells = cells.annotate(qty=Sum("quantity"), amount=Sum(line_amount()))
    # 2. per group: label and distinct counts (not sums of the cells' counts)
    groups = items.order_by().annotate(group_key=key_expr).values("group_key")
    group_annotations = {
        "deliveries": Count("delivery_id", distinct=True),
        "subscriptions": Count("subscription_id", distinct=True),
    }
    if label_expr is not None:
        group_annotations["label"] = label_expr
    groups = groups.annotate(**group_annotations)
    # 3. grand totals, in SQL as well
    grand = items.aggregate(
        deliveries=Count("delivery_id", distinct=True), subscriptions=Count("subscription_id", distinct=True)
    )

    rows: dict[object, SummaryRow] = {}
    for group in groups:
        rows[group["group_key"]] = SummaryRow(
            key=group["group_key"],
            label=group.get("label") or "",
            deliveries=group["deliveries"],
            subscriptions=group["subscriptions"],
        )
    totals = SummaryRow(key=None, label=str(_("Total")), **grand)
    product_ids = set()
    for cell in cells:
        row = rows[cell["group_key"]]
        product_id = cell["product_id"]
        product_ids.add(product_id)
        row.quantities[product_id] = cell["qty"]
        row.amounts[product_id] = money(cell["amount"])
        totals.quantities[product_id] = totals.quantities.get(product_id, 0) + cell["qty"]
        totals.amounts[product_id] = totals.amounts.get(product_id, ZERO) + money(cell["amount"])

    columns = _summary_columns(product_ids)
    by_product_id = {column.product_id: column for column in columns}
    ordered = list(rows.values())
    if by == "date":
        for row in ordered:
            row.label = row.key.strftime("%d/%m/%Y")
        ordered.sort(key=lambda row: row.key)
    elif by == "product":
        position = {column.product_id: n for n, column in enumerate(columns)}
        for row in ordered:
            row.label = by_product_id[row.key].label
        ordered.sort(key=lambda row: position[row.key])
    else:
        ordered.sort(key=lambda row: (sort_key(row.label), str(row.key)))
    return Summary(by=by, columns=columns, rows=ordered, totals=totals, start=start, end=end)


def _summary_columns(product_ids) -> list[SummaryColumn]:
    products = list(
        ContractProduct.objects.filter(pk__in=product_ids)
        .select_related("contract")
        .order_by("contract__season_start", "contract__title", "contract_id", "position", "pk")
    )
    several_contracts = len({p.contract_id for p in products}) > 1
    return [
        SummaryColumn(
            product_id=p.pk,
            name=p.name,
            contract_id=p.contract_id,
            contract_title=p.contract.title,
            label=f"{p.name} ({p.contract.title})" if several_contracts else p.name,
        )
        for p in products
    ]
