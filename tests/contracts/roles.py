"""One open contract seen by every kind of person: the cast of the permission matrix.

`contract_world()` builds an AMAP in Bordeaux with two open contracts with the same farm (ours,
and another one run by another référent of the same AMAP), another farm, two signed
subscriptions to ours, an absence, and one user per role of `ROLES`.
"""

import datetime as dt
from dataclasses import dataclass

from contracts.models import Absence, Contract, ContractProduct, Delivery, Subscription
from directory.models import AmapManager
from tests.factories import AmapFactory, FarmFactory, PartnershipFactory, UserFactory

from .factories import ContractFactory, ContractProductFactory, SubscriptionFactory, subscribe_same_every_time
from .factories import weekly_deliveries as lay_weekly_deliveries

ROLES = (
    "anonymous",
    "unrelated",  # logged in, no tie to the AMAP, the farm or the contract
    "member",  # subscribed (signed) to the contract
    "other_member",  # another member subscribed to the same contract
    "referent",  # référent of this contract
    "other_referent",  # référent of another contract of the same AMAP
    "amap_admin",
    "farmer",  # manages the contract's farm
    "other_farmer",  # manages another farm
    "staff",
)


@dataclass
class World:
    amap: object
    farm: object
    other_farm: object
    contract: Contract
    other_contract: Contract
    products: list[ContractProduct]
    deliveries: list[Delivery]
    subscription: Subscription  # the member's
    other_subscription: Subscription
    absence: Absence
    users: dict


def contract_world(*, with_document: bool = False) -> World:
    amap = AmapFactory(name="AMAP des Chartrons")
    farm = FarmFactory(name="Ferme du Grand Pré")
    other_farm = FarmFactory(name="Ferme d'à côté")
    PartnershipFactory(amap=amap, farm=farm)
    users = {role: UserFactory(display_name=role.replace("_", " ").title()) for role in ROLES if role != "anonymous"}
    users["anonymous"] = None
    users["staff"].is_staff = True
    users["staff"].save()

    contract = ContractFactory(amap=amap, farm=farm, referent=users["referent"], title="Légumes 2027")
    other_contract = ContractFactory(amap=amap, farm=farm, referent=users["other_referent"], title="Pain 2027")
    AmapManager.objects.create(amap=amap, user=users["amap_admin"], role=AmapManager.Role.ADMIN)
    farm.managers.add(users["farmer"])
    other_farm.managers.add(users["other_farmer"])

    products = [ContractProductFactory(contract=contract) for _ in range(2)]
    deliveries = lay_weekly_deliveries(contract)
    lay_weekly_deliveries(other_contract)

    subscription = SubscriptionFactory(contract=contract, member=users["member"], signed_at=dt.datetime.now(dt.UTC))
    subscribe_same_every_time(subscription, {products[0]: 1})
    other_subscription = SubscriptionFactory(contract=contract, member=users["other_member"])
    subscribe_same_every_time(other_subscription, {products[1]: 2})
    absence = Absence.objects.create(subscription=subscription, delivery=deliveries[3], substitute_name="Léa")
    if with_document:
        from contracts.documents import document_freeze

        document_freeze(subscription=subscription)
    return World(
        amap=amap,
        farm=farm,
        other_farm=other_farm,
        contract=contract,
        other_contract=other_contract,
        products=products,
        deliveries=deliveries,
        subscription=subscription,
        other_subscription=other_subscription,
        absence=absence,
        users=users,
    )
