"""contracts/selectors.py: totals and instalments, distribution sheets, summaries, visibility."""

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from contracts.models import Delivery, Subscription, SubscriptionItem
from contracts.selectors import add_months, split_instalments, subscription_totals
from tests.contracts.factories import (
    ContractFactory,
    ContractProductFactory,
    SubscriptionFactory,
    subscribe_same_every_time,
    weekly_deliveries,
)

# --------------------------------------------------------------------------------------------
# Totals and instalments


@pytest.fixture
def contract(db):
    contract = ContractFactory()
    weekly_deliveries(contract)  # 26 Tuesdays, 6 April → 28 September 2027
    return contract


def test_totals_of_a_same_every_time_subscription(contract):
    small = ContractProductFactory(contract=contract, name="Petit panier", unit_price=Decimal("12.50"), position=0)
    eggs = ContractProductFactory(contract=contract, name="6 œufs", unit_price=Decimal("2.40"), position=1)
    subscription = SubscriptionFactory(contract=contract, instalments=3)
    subscribe_same_every_time(subscription, {small: 1, eggs: 2})

    totals = subscription_totals(subscription=subscription)

    deliveries = contract.deliveries.count()
    assert deliveries == 26
    # 26 × 12.50 = 325.00 ; 26 × 2 × 2.40 = 124.80
    assert [(p.name, q, a) for p, q, a in totals.per_product] == [
        ("Petit panier", 26, Decimal("325.00")),
        ("6 œufs", 52, Decimal("124.80")),
    ]
    assert totals.total == Decimal("449.80")
    assert totals.deliveries == 26
    # 449.80 / 3 = 149.93 and 1 cent left over, on the first cheque
    assert [a for _d, a in totals.instalments] == [Decimal("149.94"), Decimal("149.93"), Decimal("149.93")]
    assert [d for d, _a in totals.instalments] == [dt.date(2027, 4, 6), dt.date(2027, 5, 6), dt.date(2027, 6, 6)]


def test_cancelled_deliveries_are_not_paid_and_postponed_ones_are(contract):
    basket = ContractProductFactory(contract=contract, unit_price=Decimal("10.00"))
    subscription = SubscriptionFactory(contract=contract, instalments=2)
    subscribe_same_every_time(subscription, {basket: 1})
    first, second, *_rest = contract.deliveries.order_by("date")
    Delivery.objects.filter(pk=first.pk).update(status=Delivery.Status.CANCELLED)
    Delivery.objects.filter(pk=second.pk).update(status=Delivery.Status.POSTPONED, date=second.date + dt.timedelta(2))

    totals = subscription_totals(subscription=subscription)

    assert totals.deliveries == 25
    assert totals.total == Decimal("250.00")
    # The schedule starts from the first delivery that counts: the postponed one, on its new date.
    assert totals.first_delivery == dt.date(2027, 4, 15)
    assert list(totals.instalments[0]) == [dt.date(2027, 4, 15), Decimal("125.00")]


def test_a_pending_subscription_shows_its_total_before_signing(contract):
    basket = ContractProductFactory(contract=contract, unit_price=Decimal("20.00"))
    subscription = SubscriptionFactory(contract=contract, status=Subscription.Status.PENDING)
    subscribe_same_every_time(subscription, {basket: 1})
    assert subscription_totals(subscription=subscription).total == Decimal("520.00")


def test_totals_use_the_price_stored_on_each_item(contract):
    basket = ContractProductFactory(contract=contract, unit_price=Decimal("20.00"))
    subscription = SubscriptionFactory(contract=contract)
    subscribe_same_every_time(subscription, {basket: 1})
    basket.unit_price = Decimal("99.00")  # a later price change does not rewrite signed items
    basket.save()
    assert subscription_totals(subscription=subscription).total == Decimal("520.00")


def test_a_subscription_without_items_costs_nothing(contract):
    subscription = SubscriptionFactory(contract=contract, instalments=3)
    totals = subscription_totals(subscription=subscription)
    assert totals.total == Decimal("0.00")
    assert totals.deliveries == 0
    assert totals.per_product == []
    assert [tuple(i) for i in totals.instalments] == [(None, Decimal("0.00"))] * 3


def test_due_dates_keep_the_day_or_the_months_last_day():
    assert add_months(dt.date(2027, 1, 31), 1) == dt.date(2027, 2, 28)
    assert add_months(dt.date(2028, 1, 31), 1) == dt.date(2028, 2, 29)
    assert add_months(dt.date(2027, 11, 30), 3) == dt.date(2028, 2, 29)
    assert add_months(dt.date(2027, 12, 15), 1) == dt.date(2028, 1, 15)


@given(
    total_cents=st.integers(min_value=0, max_value=10_000_000),
    count=st.integers(min_value=1, max_value=12),
)
def test_instalments_sum_to_the_total(total_cents, count):
    total = Decimal(total_cents) / 100
    amounts = [i.amount for i in split_instalments(total=total, count=count, first_due=dt.date(2027, 4, 6))]
    assert sum(amounts) == total
    assert all(a == a.quantize(Decimal("0.01")) for a in amounts)
    assert len(set(amounts[1:])) <= 1
    remainder = amounts[0] - amounts[-1]
    assert Decimal("0") <= remainder < Decimal("0.01") * count


@hypothesis_settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    prices=st.lists(st.integers(min_value=1, max_value=99_999), min_size=1, max_size=3),
    quantities=st.lists(st.integers(min_value=0, max_value=9), min_size=26, max_size=26),
    instalments=st.integers(min_value=1, max_value=10),
)
def test_subscription_instalments_sum_to_its_total(contract, prices, quantities, instalments):
    products = [
        ContractProductFactory(contract=contract, name=f"Produit {n}", unit_price=Decimal(cents) / 100)
        for n, cents in enumerate(prices)
    ]
    subscription = SubscriptionFactory(contract=contract, instalments=instalments)
    deliveries = list(contract.deliveries.order_by("date"))
    SubscriptionItem.objects.bulk_create(
        SubscriptionItem(
            subscription=subscription, delivery=delivery, product=product, quantity=qty, unit_price=product.unit_price
        )
        for delivery, qty in zip(deliveries, quantities, strict=True)
        if qty
        for product in products
    )
    expected = sum((p.unit_price * sum(quantities) for p in products), Decimal("0"))

    totals = subscription_totals(subscription=subscription)

    assert totals.total == expected
    amounts = [amount for _due, amount in totals.instalments]
    assert len(amounts) == instalments
    assert sum(amounts) == totals.total
    remainder = totals.total - amounts[-1] * instalments
    assert max(amounts) - min(amounts) <= remainder < Decimal("0.01") * instalments
    # Clean up so that the next example starts from the same contract.
    subscription.items.all().delete()
    subscription.delete()
    for product in products:
        product.delete()
