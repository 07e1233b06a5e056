"""contracts/selectors.py: totals and instalments, distribution sheets, summaries, visibility."""

import datetime as dt
import random
from collections import defaultdict
from decimal import Decimal

import pytest
from django.contrib.auth.models import AnonymousUser
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from accounts.permissions import can_view_contract, can_view_subscription
from contracts.models import Absence, Contract, Delivery, Subscription, SubscriptionItem
from contracts.selectors import (
    SUMMARY_BY,
    add_months,
    contracts_visible_to,
    deliveries_of_member,
    distribution_sheet,
    preparation_list,
    sort_key,
    split_instalments,
    subscription_totals,
    subscriptions_of,
    summary,
)
from directory.models import AmapManager
from tests.contracts.factories import (
    ContractFactory,
    ContractProductFactory,
    SubscriptionFactory,
    subscribe_same_every_time,
    weekly_deliveries,
)
from tests.factories import AmapFactory, FarmFactory, UserFactory


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Factories hash a password for every user; the real hasher would dominate the run time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


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


# --------------------------------------------------------------------------------------------
# Distribution sheet and preparation list


def test_distribution_sheet_lists_signed_members_by_name_with_absences(contract):
    small = ContractProductFactory(contract=contract, name="Petit panier", unit_price=Decimal("12.50"), position=0)
    large = ContractProductFactory(contract=contract, name="Grand panier", unit_price=Decimal("20.00"), position=1)
    eggs = ContractProductFactory(contract=contract, name="6 œufs", unit_price=Decimal("2.40"), position=2)
    emma = SubscriptionFactory(contract=contract, member_name="Emma Martin")
    elodie = SubscriptionFactory(contract=contract, member_name="Élodie Bernard")
    eden = SubscriptionFactory(contract=contract, member_name="eden Durand")
    pending = SubscriptionFactory(contract=contract, member_name="Aline Pending", status=Subscription.Status.PENDING)
    subscribe_same_every_time(emma, {small: 1, eggs: 2})
    subscribe_same_every_time(elodie, {large: 2})
    subscribe_same_every_time(eden, {small: 1})
    subscribe_same_every_time(pending, {large: 5})
    delivery = contract.deliveries.order_by("date").first()
    Absence.objects.create(subscription=elodie, delivery=delivery, substitute_name="Paul Voisin", note="en vacances")

    rows = distribution_sheet(delivery=delivery)

    # Pending subscriptions are not delivered; names sort as a French reader expects.
    assert [row.member_name for row in rows] == ["eden Durand", "Élodie Bernard", "Emma Martin"]
    assert [[qty for _p, qty in row.lines] for row in rows] == [[1, 0, 0], [0, 2, 0], [1, 0, 2]]
    assert [p.name for p, _qty in rows[0].lines] == ["Petit panier", "Grand panier", "6 œufs"]
    assert rows[2].quantities == {small.pk: 1, eggs.pk: 2}
    assert [(r.absent, r.substitute_name, r.collector) for r in rows] == [
        (False, "", "eden Durand"),
        (True, "Paul Voisin", "Paul Voisin"),
        (False, "", "Emma Martin"),
    ]
    assert rows[1].absence_note == "en vacances"

    prep = preparation_list(delivery=delivery)
    assert [(p.name, qty) for p, qty in prep] == [("Petit panier", 2), ("Grand panier", 2), ("6 œufs", 2)]
    assert [(line.amount, line.members) for line in prep] == [
        (Decimal("25.00"), 2),
        (Decimal("40.00"), 1),
        (Decimal("4.80"), 1),
    ]


def test_an_alternate_week_member_is_only_on_their_weeks(contract):
    basket = ContractProductFactory(contract=contract)
    subscription = SubscriptionFactory(contract=contract, pattern=Subscription.Pattern.ALTERNATE)
    deliveries = list(contract.deliveries.order_by("date"))
    SubscriptionItem.objects.bulk_create(
        SubscriptionItem(
            subscription=subscription, delivery=d, product=basket, quantity=1, unit_price=basket.unit_price
        )
        for d in deliveries[::2]
    )
    assert [r.member_name for r in distribution_sheet(delivery=deliveries[0])] == [subscription.member_name]
    assert distribution_sheet(delivery=deliveries[1]) == []
    assert [qty for _p, qty in preparation_list(delivery=deliveries[1])] == [0]


# --------------------------------------------------------------------------------------------
# Summaries equal the sum of the deliveries


def _scenario(seed: int) -> dict:
    """Two AMAPs, two farms, three contracts; members with every pattern, some not signed,
    a cancelled and a postponed delivery, absences with substitutes, an anonymised member."""
    rng = random.Random(seed)
    farm_a, farm_b = FarmFactory(), FarmFactory()
    amap = AmapFactory()
    c1 = ContractFactory(amap=amap, farm=farm_a, title="Légumes")
    c2 = ContractFactory(amap=amap, farm=farm_b, title="Œufs", weekday=5, season_start=dt.date(2027, 4, 9))
    c3 = ContractFactory(farm=farm_a, title="Légumes ailleurs")
    products = {}
    for contract in (c1, c2, c3):
        weekly_deliveries(contract)
        products[contract] = [
            ContractProductFactory(
                contract=contract, name=f"Produit {n}", position=n, unit_price=Decimal(rng.randint(50, 4000)) / 100
            )
            for n in range(rng.randint(2, 3))
        ]
    members = [UserFactory(display_name=f"Membre {n:02d}") for n in range(10)]
    statuses = [Subscription.Status.SIGNED] * 6 + [
        Subscription.Status.PENDING,
        Subscription.Status.CANCELLED,
        Subscription.Status.SUPERSEDED,
        Subscription.Status.MEMBER_SIGNED,
    ]
    items = []
    subscriptions = []
    for contract in (c1, c2, c3):
        deliveries = list(contract.deliveries.order_by("date"))
        for member in rng.sample(members, 7):
            subscription = SubscriptionFactory(
                contract=contract,
                member=member,
                member_name=member.display_name,
                status=rng.choice(statuses),
                pattern=rng.choice(list(Subscription.Pattern)),
            )
            subscriptions.append(subscription)
            chosen = {p: rng.randint(1, 3) for p in rng.sample(products[contract], rng.randint(1, 2))}
            for n, delivery in enumerate(deliveries):
                for product, qty in chosen.items():
                    if subscription.pattern == Subscription.Pattern.ALTERNATE and n % 2:
                        continue
                    if subscription.pattern == Subscription.Pattern.VARYING:
                        qty = rng.randint(0, 4)
                    if qty:
                        items.append(
                            SubscriptionItem(
                                subscription=subscription,
                                delivery=delivery,
                                product=product,
                                quantity=qty,
                                unit_price=product.unit_price,
                            )
                        )
    # A member whose account is gone (retention): the signed subscription stays, anonymised.
    anonymous = SubscriptionFactory(contract=c1, member=None, member_name="Adhérent·e anonymisé·e")
    subscriptions.append(anonymous)
    for delivery in c1.deliveries.all():
        product = products[c1][0]
        items.append(
            SubscriptionItem(
                subscription=anonymous, delivery=delivery, product=product, quantity=1, unit_price=product.unit_price
            )
        )
    SubscriptionItem.objects.bulk_create(items)
    # Aléas: one cancelled and one postponed delivery per contract; the postponed one of c2
    # lands on a c1 date, so that a date carries two deliveries.
    for contract in (c1, c2, c3):
        cancelled, postponed = rng.sample(list(contract.deliveries.all()[1:20]), 2)
        Delivery.objects.filter(pk=cancelled.pk).update(status=Delivery.Status.CANCELLED)
        new_date = postponed.date + dt.timedelta(days=4 if contract is c2 else 1)
        Delivery.objects.filter(pk=postponed.pk).update(status=Delivery.Status.POSTPONED, date=new_date)
    for subscription in rng.sample([s for s in subscriptions if s.status == Subscription.Status.SIGNED], 3):
        for delivery in rng.sample(list(subscription.contract.deliveries.all()), 3):
            Absence.objects.create(subscription=subscription, delivery=delivery, substitute_name="Voisin·e")
    return {"amap": amap, "farm": farm_a, "contracts": (c1, c2, c3), "members": members}


def _scope_deliveries(*, contract=None, farm=None, amap=None, start=None, end=None):
    deliveries = Delivery.objects.exclude(status=Delivery.Status.CANCELLED).select_related("contract")
    if contract is not None:
        deliveries = deliveries.filter(contract=contract)
    if farm is not None:
        deliveries = deliveries.filter(contract__farm=farm)
    if amap is not None:
        deliveries = deliveries.filter(contract__amap=amap)
    if start is not None:
        deliveries = deliveries.filter(date__gte=start)
    if end is not None:
        deliveries = deliveries.filter(date__lte=end)
    return list(deliveries)


class DeliveryFigures:
    """Each delivery's preparation list and distribution sheet, read once."""

    def __init__(self):
        self.member_of = dict(Subscription.objects.values_list("pk", "member_id"))
        self._prep, self._sheet = {}, {}

    def prep(self, delivery):
        if delivery.pk not in self._prep:
            self._prep[delivery.pk] = preparation_list(delivery=delivery)
        return self._prep[delivery.pk]

    def sheet(self, delivery):
        if delivery.pk not in self._sheet:
            self._sheet[delivery.pk] = distribution_sheet(delivery=delivery)
        return self._sheet[delivery.pk]

    def expected(self, deliveries, by):
        """{group key: {product id: (quantity, amount)}} summed over the sheets and preparation lists."""
        expected: dict = defaultdict(lambda: defaultdict(lambda: [0, Decimal("0")]))
        for delivery in deliveries:
            if by in ("date", "product", "farmer"):
                for line in self.prep(delivery):
                    if not line.quantity:
                        continue
                    key = {"date": delivery.date, "product": line.product.pk, "farmer": delivery.contract.farm_id}[by]
                    cell = expected[key][line.product.pk]
                    cell[0] += line.quantity
                    cell[1] += line.amount
            else:
                for row in self.sheet(delivery):
                    key = self.member_of[row.subscription_id] or -row.subscription_id
                    for product, qty in row.lines:
                        if qty:
                            cell = expected[key][product.pk]
                            cell[0] += qty
                            cell[1] += qty * product.unit_price  # factories keep item price = product price
        return {key: {pid: tuple(cell) for pid, cell in cells.items()} for key, cells in expected.items()}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_summaries_equal_the_sum_of_the_deliveries(db, seed):
    world = _scenario(seed)
    figures = DeliveryFigures()
    c1 = world["contracts"][0]
    scopes = [
        {"contract": c1},
        {"amap": world["amap"]},
        {"farm": world["farm"]},
        {"start": dt.date(2027, 5, 1), "end": dt.date(2027, 6, 30)},
        {"amap": world["amap"], "start": dt.date(2027, 4, 12), "end": dt.date(2027, 7, 15)},
    ]
    for scope in scopes:
        deliveries = _scope_deliveries(**scope)
        grand_quantity = sum(line.quantity for d in deliveries for line in figures.prep(d))
        grand_amount = sum((line.amount for d in deliveries for line in figures.prep(d)), Decimal("0"))
        assert grand_quantity > 0
        for by in SUMMARY_BY:
            result = summary(by=by, **scope)
            got = {
                row.key: {pid: (row.quantities[pid], row.amounts[pid]) for pid in row.quantities} for row in result.rows
            }
            assert got == figures.expected(deliveries, by), (scope, by)
            assert result.totals.quantity == grand_quantity == sum(row.quantity for row in result.rows)
            assert result.totals.amount == grand_amount == sum((row.amount for row in result.rows), Decimal("0"))
            assert result.totals.deliveries == len(deliveries)
            assert {c.product_id for c in result.columns} == set(result.totals.quantities)


def test_summary_rows_are_ordered_and_labelled(db):
    world = _scenario(4)
    amap = world["amap"]
    by_date = summary(by="date", amap=amap)
    dates = [row.key for row in by_date.rows]
    assert dates == sorted(dates)
    assert by_date.rows[0].label == dates[0].strftime("%d/%m/%Y")
    by_member = summary(by="member", amap=amap)
    labels = [row.label for row in by_member.rows]
    assert labels == sorted(labels, key=sort_key)
    # Someone subscribed to both contracts of the AMAP is one line, counting both subscriptions.
    both = [row for row in by_member.rows if row.subscriptions == 2]
    contracts_of_row = [{c.contract_id for c in by_member.columns if c.product_id in row.quantities} for row in both]
    assert both and all(len(contracts) == 2 for contracts in contracts_of_row)
    # Columns of a summary spanning contracts say which contract each product belongs to.
    assert all("(" in column.label for column in by_member.columns)
    by_farmer = summary(by="farmer", amap=amap)
    assert {row.label for row in by_farmer.rows} == {c.farm.name for c in world["contracts"][:2]}
    by_product = summary(by="product", contract=world["contracts"][0])
    assert [row.key for row in by_product.rows] == [c.product_id for c in by_product.columns]
    assert all("(" not in column.label for column in by_product.columns)


def test_absences_do_not_change_summaries(contract):
    basket = ContractProductFactory(contract=contract)
    subscription = SubscriptionFactory(contract=contract)
    subscribe_same_every_time(subscription, {basket: 2})
    before = summary(by="member", contract=contract)
    for delivery in contract.deliveries.all()[:5]:
        Absence.objects.create(subscription=subscription, delivery=delivery, substitute_name="Voisin")
    after = summary(by="member", contract=contract)
    assert after.totals.quantity == before.totals.quantity == 52
    assert after.rows[0].amounts == before.rows[0].amounts


def test_summary_needs_a_scope_and_a_known_grouping(db):
    with pytest.raises(ValueError):
        summary(by="date")
    contract = ContractFactory()
    with pytest.raises(ValueError):
        summary(by="week", contract=contract)
    with pytest.raises(ValueError):
        summary(by="date", start=dt.date(2027, 5, 1), end=dt.date(2027, 4, 1))


def test_an_empty_summary_has_zero_totals(db):
    result = summary(by="member", contract=ContractFactory())
    assert result.rows == []
    assert (result.totals.quantity, result.totals.amount, result.totals.deliveries) == (0, Decimal("0.00"), 0)


# --------------------------------------------------------------------------------------------
# Who sees what: the lists agree with accounts/permissions.py object by object


@pytest.fixture
def people(db):
    farm = FarmFactory()
    amap = AmapFactory()
    referent, other_referent, admin, farmer, member, outsider = (UserFactory() for _ in range(6))
    staff = UserFactory(is_staff=True)
    farm.managers.add(farmer)
    AmapManager.objects.create(amap=amap, user=admin, role=AmapManager.Role.ADMIN)
    AmapManager.objects.create(amap=amap, user=other_referent, role=AmapManager.Role.REFERENT)
    run = ContractFactory(amap=amap, farm=farm, referent=referent, status=Contract.Status.CLOSED)
    other = ContractFactory(amap=amap, referent=other_referent, status=Contract.Status.CLOSED)
    elsewhere = ContractFactory(status=Contract.Status.CLOSED)
    open_one = ContractFactory(status=Contract.Status.OPEN)
    draft = ContractFactory(farm=farm, status=Contract.Status.DRAFT)
    subs = [
        SubscriptionFactory(contract=run, member=member),
        SubscriptionFactory(contract=other, member=outsider),
        SubscriptionFactory(contract=elsewhere, member=member, status=Subscription.Status.CANCELLED),
        SubscriptionFactory(contract=open_one, member=outsider),
        SubscriptionFactory(contract=elsewhere, member=outsider),
    ]
    return {
        "users": {
            "referent": referent,
            "other_referent": other_referent,
            "admin": admin,
            "farmer": farmer,
            "member": member,
            "outsider": outsider,
            "staff": staff,
        },
        "contracts": {"run": run, "other": other, "elsewhere": elsewhere, "open": open_one, "draft": draft},
        "subscriptions": subs,
    }


def test_visible_contracts_and_subscriptions_match_the_permission_checks(people):
    contracts = list(Contract.objects.all())
    subscriptions = list(Subscription.objects.all())
    for role, user in people["users"].items():
        visible = set(contracts_visible_to(user=user))
        assert visible == {c for c in contracts if can_view_contract(user, c)}, role
        seen = set(subscriptions_of(user=user))
        assert seen == {s for s in subscriptions if can_view_subscription(user, s)}, role


def test_visible_contracts_by_role(people):
    users, c = people["users"], people["contracts"]

    def names(user, **kwargs):
        return {k for k, v in c.items() if v in set(contracts_visible_to(user=user, **kwargs))}

    assert names(users["referent"], include_open=False) == {"run"}
    assert names(users["other_referent"], include_open=False) == {"other"}
    assert names(users["admin"], include_open=False) == {"run", "other"}
    assert names(users["farmer"], include_open=False) == {"run", "draft"}
    assert names(users["member"], include_open=False) == {"run", "elsewhere"}  # a cancelled one stays visible
    assert names(users["outsider"]) == {"other", "elsewhere", "open"}
    assert names(users["staff"]) == set(c)
    assert not contracts_visible_to(user=AnonymousUser()).exists()
    assert not subscriptions_of(user=AnonymousUser()).exists()
    assert set(subscriptions_of(user=users["member"], own_only=True)) == {
        s for s in people["subscriptions"] if s.member == users["member"]
    }
    assert set(subscriptions_of(user=users["farmer"])) == {people["subscriptions"][0]}


def test_deliveries_of_member_are_those_of_signed_subscriptions(contract):
    basket = ContractProductFactory(contract=contract)
    member = UserFactory()
    signed = SubscriptionFactory(contract=contract, member=member)
    deliveries = list(contract.deliveries.order_by("date"))
    SubscriptionItem.objects.bulk_create(
        SubscriptionItem(subscription=signed, delivery=d, product=basket, quantity=1, unit_price=basket.unit_price)
        for d in deliveries[::2]
    )
    pending_contract = ContractFactory()
    weekly_deliveries(pending_contract)
    pending = SubscriptionFactory(contract=pending_contract, member=member, status=Subscription.Status.PENDING)
    subscribe_same_every_time(pending, {ContractProductFactory(contract=pending_contract): 1})
    Delivery.objects.filter(pk=deliveries[2].pk).update(status=Delivery.Status.CANCELLED)

    mine = list(deliveries_of_member(user=member))

    assert mine == deliveries[::2]  # the cancelled one included: calendars show it as cancelled
    assert list(deliveries_of_member(user=UserFactory())) == []
