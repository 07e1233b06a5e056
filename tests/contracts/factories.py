"""Factories for contract tests: a weekly vegetable contract at an AMAP in Bordeaux.

They write rows directly (no services) so that each test can set up exactly the state it
needs; `weekly_deliveries` lays a plain weekly calendar without holidays.
"""

import datetime as dt
from decimal import Decimal

import factory

from contracts.models import Contract, ContractProduct, Delivery, Subscription, SubscriptionItem
from directory.models import AmapManager
from tests.factories import AmapFactory, FarmFactory, UserFactory

SEASON_START = dt.date(2027, 4, 6)  # a Tuesday
SEASON_END = dt.date(2027, 9, 28)


class ContractFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Contract
        skip_postgeneration_save = True

    amap = factory.SubFactory(AmapFactory)
    farm = factory.SubFactory(FarmFactory)
    title = factory.Sequence(lambda n: f"Légumes saison 2027 n°{n}")
    season_start = SEASON_START
    season_end = SEASON_END
    weekday = 2  # mardi
    frequency = Contract.Frequency.WEEKLY
    capacity_shares = 40
    instalments_max = 3
    payment_methods = factory.LazyFunction(lambda: ["cheque", "transfer"])
    referent = factory.SubFactory(UserFactory)
    status = Contract.Status.OPEN

    @factory.post_generation
    def with_referent_role(obj, create, extracted, **kwargs):
        if create:
            AmapManager.objects.get_or_create(
                amap=obj.amap, user=obj.referent, defaults={"role": AmapManager.Role.REFERENT}
            )


class ContractProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ContractProduct

    contract = factory.SubFactory(ContractFactory)
    name = factory.Iterator(["Petit panier", "Grand panier", "6 œufs"])
    unit_price = factory.Iterator([Decimal("12.50"), Decimal("20.00"), Decimal("2.40")])


def weekly_deliveries(contract: Contract) -> list[Delivery]:
    """One delivery per week on the contract's weekday, season bounds included."""
    day = contract.season_start
    while day.isoweekday() != contract.weekday:
        day += dt.timedelta(days=1)
    rows = []
    while day <= contract.season_end:
        rows.append(Delivery(contract=contract, scheduled_date=day, date=day))
        day += dt.timedelta(days=7)
    return Delivery.objects.bulk_create(rows)


class SubscriptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Subscription

    contract = factory.SubFactory(ContractFactory)
    member = factory.SubFactory(UserFactory)
    member_name = factory.LazyAttribute(lambda o: str(o.member))
    status = Subscription.Status.SIGNED


def subscribe_same_every_time(subscription: Subscription, quantities: dict[ContractProduct, int]) -> None:
    """Items for every delivery of the contract, same quantities each time."""
    SubscriptionItem.objects.bulk_create(
        SubscriptionItem(
            subscription=subscription, delivery=delivery, product=product, quantity=qty, unit_price=product.unit_price
        )
        for delivery in subscription.contract.deliveries.all()
        for product, qty in quantities.items()
    )
