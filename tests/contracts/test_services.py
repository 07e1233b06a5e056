"""Contract services: templates and calendars, subscriptions and their items, waiting list,
amendments, absences, deliveries — with the errors people see when they get something wrong.

Today is before the 2027 season unless a test travels in time. "Signed" subscriptions are
set by hand here (signing has its own tests).
"""

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction

from contracts import services
from contracts.models import (
    Absence,
    AcademicCalendar,
    CalendarException,
    Contract,
    Delivery,
    EvidenceEvent,
    Subscription,
    SubscriptionItem,
)
from directory.models import AmapManager
from tests.contracts.factories import ContractFactory, ContractProductFactory
from tests.factories import AmapFactory, FarmFactory, UserFactory

pytestmark = pytest.mark.django_db

PARIS = ZoneInfo("Europe/Paris")
SEASON_START = dt.date(2027, 4, 6)  # a Tuesday
SEASON_END = dt.date(2027, 9, 28)  # a Tuesday


def tuesdays(start=SEASON_START, end=SEASON_END):
    day, out = start, []
    while day <= end:
        out.append(day)
        day += dt.timedelta(days=7)
    return out


def at(day: dt.date, hour: int = 12):
    """Travel to noon (Paris) of that day."""
    return time_machine.travel(dt.datetime(day.year, day.month, day.day, hour, tzinfo=PARIS), tick=False)


def person(**fields):
    """A user without a password hash (hashing costs a second per user on a busy machine)."""
    return UserFactory(password="!", **fields)


def errors_of(excinfo) -> dict:
    return excinfo.value.message_dict


@pytest.fixture
def referent():
    return person(display_name="Rémi Référent")


@pytest.fixture
def amap(referent):
    amap = AmapFactory(name="AMAP des Chartrons")
    AmapManager.objects.create(amap=amap, user=referent, role=AmapManager.Role.REFERENT)
    return amap


@pytest.fixture
def farmer():
    return person(display_name="Paula Paysanne")


@pytest.fixture
def farm(farmer):
    farm = FarmFactory(name="Ferme du Bourg")
    farm.managers.add(farmer)
    return farm


def make_contract(user, amap, farm, **overrides):
    fields = {
        "user": user,
        "amap": amap,
        "farm": farm,
        "title": "Légumes saison 2027",
        "season_start": SEASON_START,
        "season_end": SEASON_END,
        "weekday": 2,
        "frequency": "weekly",
        "capacity_shares": 30,
        "products": [
            {"name": "Petit panier", "unit_price": Decimal("12.50"), "max_quantity": 2},
            {"name": "Grand panier", "unit_price": Decimal("20.00"), "max_quantity": 2},
            {"name": "6 œufs", "unit_price": Decimal("2.40"), "max_quantity": 3},
        ],
        "instalments_max": 3,
        "payment_methods": ["cheque", "transfer"],
    }
    fields.update(overrides)
    return services.contract_create(**fields)


@pytest.fixture
def contract(referent, amap, farm):
    contract = make_contract(referent, amap, farm)
    return services.contract_publish(user=referent, contract=contract)


def product(contract, name):
    return contract.products.get(name=name)


def items_by_date(subscription) -> dict[dt.date, dict[str, int]]:
    out: dict[dt.date, dict[str, int]] = {}
    for item in subscription.items.select_related("delivery", "product"):
        out.setdefault(item.delivery.date, {})[item.product.name] = item.quantity
    return out


def sign(subscription):
    Subscription.objects.filter(pk=subscription.pk).update(status=Subscription.Status.SIGNED)
    subscription.refresh_from_db()
    return subscription


# --------------------------------------------------------------------------------------------
# Contract templates


def test_contract_create_lays_out_the_calendar(referent, amap, farm):
    contract = make_contract(
        referent,
        amap,
        farm,
        weekday=1,  # Mondays: Easter Monday (29/03) and Whit Monday (17/05) fall in the season
        season_start=dt.date(2027, 3, 22),
        exceptions=[(dt.date(2027, 8, 9), CalendarException.Kind.FARM_CLOSURE, "congés d'été")],
    )
    assert contract.status == Contract.Status.DRAFT
    assert contract.referent == referent and contract.created_by == referent
    assert [p.name for p in contract.products.all()] == ["Petit panier", "Grand panier", "6 œufs"]
    mondays = [day - dt.timedelta(days=1) for day in tuesdays(dt.date(2027, 3, 23))]
    skipped = {dt.date(2027, 3, 29), dt.date(2027, 5, 17), dt.date(2027, 8, 9)}
    dates = list(contract.deliveries.values_list("date", flat=True))
    assert dates == [day for day in mondays if day not in skipped]
    assert all(d.scheduled_date == d.date and d.status == Delivery.Status.PLANNED for d in contract.deliveries.all())
    assert contract.exceptions.get().label == "congés d'été"


def test_only_the_amaps_team_creates_contracts(referent, amap, farm):
    stranger = person()
    with pytest.raises(PermissionDenied):
        make_contract(stranger, amap, farm)
    admin = person()
    AmapManager.objects.create(amap=amap, user=admin, role=AmapManager.Role.ADMIN)
    contract = make_contract(admin, amap, farm, referent=referent)
    assert contract.referent == referent
    with pytest.raises(ValidationError) as excinfo:
        make_contract(admin, amap, farm, referent=stranger)
    assert "équipe de l'AMAP" in errors_of(excinfo)["referent"][0]


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"season_end": dt.date(2027, 4, 1)}, "season_end", "après son début"),
        ({"season_end": dt.date(2030, 4, 1)}, "season_end", "deux ans"),
        ({"weekday": 9}, "weekday", "1 (lundi) à 7 (dimanche)"),
        ({"frequency": "daily"}, "frequency", "Fréquence inconnue"),
        ({"capacity_shares": 0}, "capacity_shares", "au moins une part"),
        ({"instalments_max": 0}, "instalments_max", "De 1 à 12"),
        ({"payment_methods": ["bitcoin"]}, "payment_methods", "Moyen de paiement inconnu : bitcoin"),
        ({"title": "  "}, "title", "obligatoire"),
        ({"season_start": "6 avril"}, "season_start", "Date invalide"),
        ({"subscription_deadline": dt.date(2027, 12, 1)}, "subscription_deadline", "après la fin de la saison"),
        ({"exceptions": [(dt.date(2027, 12, 7), "chosen", "")]}, "exceptions", "07/12/2027 est en dehors de la saison"),
        ({"exceptions": [(dt.date(2027, 5, 4), "holiday", "")]}, "exceptions", "Motif inconnu"),
        ({"products": [{"name": "Panier", "unit_price": Decimal("0")}]}, "products", "prix doit être positif"),
        ({"products": [{"name": "Panier", "unit_price": "douze"}]}, "products", "prix invalide"),
        ({"products": [{"name": "Panier", "unit_price": Decimal("1.005")}]}, "products", "centime"),
        (
            {"products": [{"name": "Panier", "unit_price": 1}, {"name": "panier", "unit_price": 2}]},
            "products",
            "Deux produits",
        ),
        ({"products": [{"name": "Panier", "unit_price": 1, "max_quantity": 0}]}, "products", "quantité maximale"),
    ],
)
def test_contract_create_names_the_bad_field(referent, amap, farm, overrides, field, message):
    with pytest.raises(ValidationError) as excinfo:
        make_contract(referent, amap, farm, **overrides)
    assert message in " ".join(errors_of(excinfo)[field])
    assert not Contract.objects.exists()


def test_academic_calendar_of_another_amap_is_refused(referent, amap, farm):
    other = AcademicCalendar.objects.create(
        amap=AmapFactory(), name="Autre", year_start=2026, starts_on=dt.date(2026, 9, 1), ends_on=dt.date(2027, 6, 30)
    )
    with pytest.raises(ValidationError) as excinfo:
        make_contract(referent, amap, farm, academic_calendar=other)
    assert "autre AMAP" in errors_of(excinfo)["academic_calendar"][0]


def test_draft_update_regenerates_the_deliveries(referent, amap, farm):
    contract = make_contract(referent, amap, farm)
    first = contract.deliveries.get(date=SEASON_START)
    services.contract_update(user=referent, contract=contract, frequency="fortnightly")
    assert list(contract.deliveries.values_list("date", flat=True)) == tuesdays()[::2]
    assert contract.deliveries.filter(pk=first.pk).exists()  # dates that stay keep their rows
    services.contract_update(
        user=referent,
        contract=contract,
        weekday=4,
        frequency="monthly",
        exceptions=[{"date": dt.date(2027, 7, 1), "kind": "farm_closure"}],
        products=[
            {"id": product(contract, "Grand panier").pk, "name": "Panier", "unit_price": "18.00"},
            {"name": "Pain", "unit_price": "4.20", "max_quantity": 2},
        ],
    )
    # First Thursday of each month from the season start: 6 May is Ascension, 1 July taken out.
    dates = list(contract.deliveries.values_list("date", flat=True))
    assert dates == [dt.date(2027, 6, 3), dt.date(2027, 8, 5), dt.date(2027, 9, 2)]
    other_farm = FarmFactory(name="Autre ferme")
    services.contract_update(user=referent, contract=contract, farm=other_farm)
    contract.refresh_from_db()
    assert contract.farm == other_farm
    assert {(p.name, p.unit_price) for p in contract.products.all()} == {
        ("Panier", Decimal("18.00")),
        ("Pain", Decimal("4.20")),
    }


def test_publish_needs_products_and_deliveries(referent, amap, farm):
    empty = make_contract(referent, amap, farm, products=[])
    with pytest.raises(ValidationError) as excinfo:
        services.contract_publish(user=referent, contract=empty)
    assert "products" in errors_of(excinfo)
    # A one-week season whose only Tuesday the farm is closed.
    closed = make_contract(
        referent,
        amap,
        farm,
        title="Une semaine",
        season_end=dt.date(2027, 4, 10),
        exceptions=[(SEASON_START, "farm_closure", "")],
    )
    with pytest.raises(ValidationError) as excinfo:
        services.contract_publish(user=referent, contract=closed)
    assert "aucune distribution" in errors_of(excinfo)["deliveries"][0]


def test_publish_and_close(referent, amap, farm):
    contract = make_contract(referent, amap, farm)
    with pytest.raises(PermissionDenied):
        services.contract_publish(user=person(), contract=contract)
    services.contract_publish(user=referent, contract=contract)
    contract.refresh_from_db()
    assert contract.status == Contract.Status.OPEN
    event = EvidenceEvent.objects.get(kind="contract.published", contract_id=contract.pk)
    assert event.actor_id == referent.pk
    assert len(event.payload["deliveries"]) == 26
    assert [p["name"] for p in event.payload["products"]] == ["Petit panier", "Grand panier", "6 œufs"]
    with pytest.raises(ValidationError) as excinfo:
        services.contract_publish(user=referent, contract=contract)
    assert "status" in errors_of(excinfo)

    services.contract_close(user=referent, contract=contract)
    contract.refresh_from_db()
    assert contract.status == Contract.Status.CLOSED
    with pytest.raises(ValidationError) as excinfo:
        services.subscription_create(
            user=person(), contract=contract, quantities={product(contract, "Petit panier").pk: 1}
        )
    assert "pas ouvert" in errors_of(excinfo)["contract"][0]


def test_open_contract_keeps_its_calendar_and_prices(referent, contract):
    with pytest.raises(ValidationError) as excinfo:
        services.contract_update(user=referent, contract=contract, weekday=3, products=[])
    assert set(errors_of(excinfo)) == {"weekday", "products"}
    with pytest.raises(ValidationError) as excinfo:
        services.contract_update(user=referent, contract=contract, capacity_shares=10)
    assert "ne peut qu'augmenter" in errors_of(excinfo)["capacity_shares"][0]
    with pytest.raises(ValidationError) as excinfo:
        services.contract_update(user=referent, contract=contract, farm=FarmFactory())
    assert "farm" in errors_of(excinfo)
    successor = person()
    AmapManager.objects.create(amap=contract.amap, user=successor, role=AmapManager.Role.REFERENT)
    services.contract_update(user=referent, contract=contract, description="Légumes bio de saison", referent=successor)
    contract.refresh_from_db()
    assert (contract.description, contract.referent) == ("Légumes bio de saison", successor)
    with pytest.raises(PermissionDenied):  # the former référent no longer runs it
        services.contract_update(user=referent, contract=contract, description="")
    assert contract.deliveries.count() == 26


def test_capacity_increase_promotes_the_waiting_list(referent, amap, farm, django_capture_on_commit_callbacks):
    contract = services.contract_publish(user=referent, contract=make_contract(referent, amap, farm, capacity_shares=1))
    small = product(contract, "Petit panier").pk
    first = services.subscription_create(user=person(), contract=contract, quantities={small: 1})
    waiting = services.subscription_create(
        user=person(email="attente@example.org"), contract=contract, quantities={small: 1}
    )
    assert (first.status, waiting.status) == (Subscription.Status.PENDING, Subscription.Status.WAITING)
    with django_capture_on_commit_callbacks(execute=True):
        services.contract_update(user=referent, contract=contract, capacity_shares=2)
    waiting.refresh_from_db()
    assert waiting.status == Subscription.Status.PENDING
    assert [m.to for m in mail.outbox] == [["attente@example.org"]]
    assert "Une place s'est libérée" in mail.outbox[0].subject


# --------------------------------------------------------------------------------------------
# Subscriptions and their items


def test_same_quantities_at_every_delivery(contract):
    member = person(display_name="Maya Membre")
    small, eggs = product(contract, "Petit panier"), product(contract, "6 œufs")
    subscription = services.subscription_create(
        user=member,
        contract=contract,
        quantities={small.pk: 1, eggs.pk: 2, product(contract, "Grand panier").pk: 0},
        instalments=3,
        payment_method="transfer",
    )
    assert subscription.status == Subscription.Status.PENDING
    assert (subscription.member, subscription.member_name) == (member, "Maya Membre")
    assert (subscription.instalments, subscription.payment_method, subscription.shares) == (3, "transfer", 1)
    assert items_by_date(subscription) == {day: {"Petit panier": 1, "6 œufs": 2} for day in tuesdays()}
    assert set(subscription.items.values_list("unit_price", flat=True)) == {Decimal("12.50"), Decimal("2.40")}
    event = EvidenceEvent.objects.get(kind="subscription.created", subscription_id=subscription.pk)
    assert (event.contract_id, event.actor_id, event.payload["status"]) == (contract.pk, member.pk, "pending")
    assert len(event.payload["items"]) == 2 * 26


def test_alternate_takes_every_other_delivery(contract):
    subscription = services.subscription_create(
        user=person(), contract=contract, pattern="alternate", quantities={product(contract, "Grand panier").pk: 1}
    )
    assert items_by_date(subscription) == {day: {"Grand panier": 1} for day in tuesdays()[::2]}


def test_varying_quantities_per_delivery(contract):
    deliveries = list(contract.deliveries.order_by("date"))
    small, big = product(contract, "Petit panier"), product(contract, "Grand panier")
    subscription = services.subscription_create(
        user=person(),
        contract=contract,
        pattern="varying",
        per_delivery={
            deliveries[0].pk: {small.pk: 1},
            str(deliveries[3].pk): {str(big.pk): 2, small.pk: 1},
            deliveries[5].pk: {big.pk: 0},
        },
    )
    assert items_by_date(subscription) == {
        deliveries[0].date: {"Petit panier": 1},
        deliveries[3].date: {"Grand panier": 2, "Petit panier": 1},
    }


def test_joining_mid_season_takes_only_the_deliveries_to_come(contract):
    with at(dt.date(2027, 7, 1)):
        subscription = services.subscription_create(
            user=person(), contract=contract, quantities={product(contract, "Petit panier").pk: 1}
        )
    assert sorted(items_by_date(subscription)) == [day for day in tuesdays() if day > dt.date(2027, 7, 1)]


def test_cancelled_deliveries_get_no_items(referent, contract):
    cancelled = contract.deliveries.get(date=dt.date(2027, 5, 4))
    services.delivery_mark(user=referent, delivery=cancelled, status=Delivery.Status.CANCELLED, note="grêle")
    subscription = services.subscription_create(
        user=person(), contract=contract, quantities={product(contract, "Petit panier").pk: 1}
    )
    assert dt.date(2027, 5, 4) not in items_by_date(subscription)
    assert subscription.items.count() == 25


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        ({"quantities": {"Petit panier": 3}}, "quantities", "3 dépasse le maximum de 2 par distribution"),
        ({"quantities": {"Petit panier": -1}}, "quantities", "quantité négative"),
        ({"quantities": {"Petit panier": "un"}}, "quantities", "nombre entier attendu"),
        ({"quantities": {999999: 1}}, "quantities", "Produit inconnu : 999999"),
        ({"quantities": {"abc": 1}}, "quantities", "Produit inconnu : abc"),
        ({"quantities": {"other": 1}}, "quantities", "appartient à un autre contrat"),
        ({"quantities": {"Petit panier": 0}}, "quantities", "au moins un produit"),
        ({"quantities": {}}, "quantities", "au moins un produit"),
        ({"quantities": {"Petit panier": 1}, "instalments": 4}, "instalments", "De 1 à 3 versements"),
        ({"quantities": {"Petit panier": 1}, "instalments": 0}, "instalments", "De 1 à 3 versements"),
        ({"quantities": {"Petit panier": 1}, "payment_method": "cash"}, "payment_method", "chèques, virement"),
        ({"quantities": {"Petit panier": 1}, "shares": 0}, "shares", "De 1 à 30 parts"),
        ({"quantities": {"Petit panier": 1}, "pattern": "weekly"}, "pattern", "Rythme inconnu"),
        ({"pattern": "varying"}, "per_delivery", "quantités de chaque distribution"),
        # Blank rows of a form (all zero) ask for nothing; a quantity outside the rhythm is an error.
        ({"pattern": "varying", "quantities": {"Petit panier": 0}}, "per_delivery", "quantités de chaque distribution"),
        ({"pattern": "varying", "quantities": {"Petit panier": 1}}, "quantities", "quantités par distribution"),
        ({"pattern": "varying", "per_delivery": {"other": {}}}, "per_delivery", "Distribution inconnue"),
        (
            {"quantities": {"Petit panier": 1}, "per_delivery": {"first": {"Petit panier": 1}}},
            "per_delivery",
            "réservées au rythme variable",
        ),
    ],
)
def test_subscription_errors_name_the_field(contract, kwargs, field, message):
    other_contract = ContractFactory(referent=person())
    other_product = ContractProductFactory(contract=other_contract)
    other_delivery = Delivery.objects.create(contract=other_contract, scheduled_date=SEASON_START, date=SEASON_START)
    names = {
        "Petit panier": product(contract, "Petit panier").pk,
        "other": other_product.pk,
        "first": contract.deliveries.order_by("date").first().pk,
    }

    def resolve(mapping):
        return {names.get(key, key): value for key, value in mapping.items()}

    if "quantities" in kwargs:
        kwargs["quantities"] = resolve(kwargs["quantities"])
    if "per_delivery" in kwargs:
        kwargs["per_delivery"] = {
            (other_delivery.pk if key == "other" else names[key]): resolve(value)
            for key, value in kwargs["per_delivery"].items()
        }
    with pytest.raises(ValidationError) as excinfo:
        services.subscription_create(user=person(), contract=contract, **kwargs)
    assert message in " ".join(errors_of(excinfo)[field])
    assert not Subscription.objects.filter(contract=contract).exists()


def test_one_live_subscription_per_member(contract):
    member = person()
    small = product(contract, "Petit panier").pk
    first = services.subscription_create(user=member, contract=contract, quantities={small: 1})
    with pytest.raises(ValidationError) as excinfo:
        services.subscription_create(user=member, contract=contract, quantities={small: 1})
    assert "déjà une souscription" in errors_of(excinfo)["contract"][0]
    services.subscription_cancel(user=member, subscription=first)
    again = services.subscription_create(user=member, contract=contract, quantities={small: 2})
    assert again.status == Subscription.Status.PENDING


def test_subscription_deadline_and_draft(referent, amap, farm):
    draft = make_contract(referent, amap, farm)
    with pytest.raises(ValidationError) as excinfo:
        services.subscription_create(user=person(), contract=draft, quantities={product(draft, "6 œufs").pk: 1})
    assert "pas ouvert" in errors_of(excinfo)["contract"][0]
    services.contract_update(user=referent, contract=draft, subscription_deadline=dt.date(2027, 3, 31))
    services.contract_publish(user=referent, contract=draft)
    with at(dt.date(2027, 4, 1)), pytest.raises(ValidationError) as excinfo:
        services.subscription_create(user=person(), contract=draft, quantities={product(draft, "6 œufs").pk: 1})
    assert "closes depuis le 31/03/2027" in errors_of(excinfo)["contract"][0]


def test_anonymous_cannot_subscribe(contract):
    from django.contrib.auth.models import AnonymousUser

    with pytest.raises(PermissionDenied):
        services.subscription_create(
            user=AnonymousUser(), contract=contract, quantities={product(contract, "6 œufs").pk: 1}
        )


def test_waiting_list_and_promotion_in_order(referent, amap, farm, django_capture_on_commit_callbacks):
    contract = services.contract_publish(user=referent, contract=make_contract(referent, amap, farm, capacity_shares=3))
    small = product(contract, "Petit panier").pk

    def subscribe(email, shares):
        return services.subscription_create(
            user=person(email=email), contract=contract, quantities={small: 1}, shares=shares
        )

    anne = subscribe("anne@example.org", 2)
    bruno = subscribe("bruno@example.org", 2)  # 2 + 2 > 3: waits
    chloe = subscribe("chloe@example.org", 1)  # fits in the last share
    david = subscribe("david@example.org", 1)  # full
    assert [s.status for s in (anne, bruno, chloe, david)] == ["pending", "waiting", "pending", "waiting"]
    assert bruno.waiting_since is not None and bruno.waiting_since <= david.waiting_since
    assert services.free_shares(contract=contract) == 0
    # Items exist while waiting: the member sees their total.
    assert bruno.items.count() == 26

    with django_capture_on_commit_callbacks(execute=True):
        services.subscription_cancel(user=anne.member, subscription=anne, reason="déménagement")
    for subscription in (anne, bruno, chloe, david):
        subscription.refresh_from_db()
    # Bruno (first in line, 2 shares) takes the 2 freed shares; David keeps waiting.
    assert [s.status for s in (anne, bruno, chloe, david)] == ["cancelled", "pending", "pending", "waiting"]
    assert anne.cancelled_at is not None
    assert [m.to for m in mail.outbox] == [["bruno@example.org"]]
    message = mail.outbox[0]
    assert "Une place s'est libérée" in message.subject
    assert "« Légumes saison 2027 »" in message.body and "AMAP des Chartrons" in message.body
    assert "à signer" in message.body and f"/contrats/souscriptions/{bruno.pk}/" in message.body
    assert EvidenceEvent.objects.filter(kind="subscription.cancelled", subscription_id=anne.pk).get().payload[
        "reason"
    ] == ("déménagement")
    assert EvidenceEvent.objects.filter(kind="subscription.promoted", subscription_id=bruno.pk).exists()


def test_waiting_member_promoted_mid_season_loses_past_deliveries(referent, amap, farm):
    contract = services.contract_publish(user=referent, contract=make_contract(referent, amap, farm, capacity_shares=1))
    small = product(contract, "Petit panier").pk
    holder = services.subscription_create(user=person(), contract=contract, quantities={small: 1})
    waiting = services.subscription_create(user=person(), contract=contract, quantities={small: 1})
    with at(dt.date(2027, 6, 2)):
        services.subscription_cancel(user=referent, subscription=holder)
    waiting.refresh_from_db()
    assert waiting.status == Subscription.Status.PENDING
    assert sorted(items_by_date(waiting)) == [day for day in tuesdays() if day >= dt.date(2027, 6, 2)]


def test_set_quantities_before_signing(referent, contract):
    member = person()
    small, big = product(contract, "Petit panier"), product(contract, "Grand panier")
    subscription = services.subscription_create(user=member, contract=contract, quantities={small.pk: 1})
    services.subscription_set_quantities(
        user=member, subscription=subscription, quantities={big.pk: 2}, instalments=2, payment_method="transfer"
    )
    subscription.refresh_from_db()
    assert (subscription.instalments, subscription.payment_method) == (2, "transfer")
    assert items_by_date(subscription) == {day: {"Grand panier": 2} for day in tuesdays()}
    # Changing the rhythm alone keeps the quantities.
    services.subscription_set_quantities(user=referent, subscription=subscription, pattern="alternate")
    assert items_by_date(subscription) == {day: {"Grand panier": 2} for day in tuesdays()[::2]}
    assert EvidenceEvent.objects.filter(kind="subscription.updated", subscription_id=subscription.pk).count() == 2

    with pytest.raises(PermissionDenied):
        services.subscription_set_quantities(user=person(), subscription=subscription, quantities={big.pk: 1})
    with pytest.raises(ValidationError) as excinfo:
        services.subscription_set_quantities(user=member, subscription=subscription, quantities={big.pk: 5})
    assert "dépasse le maximum" in errors_of(excinfo)["quantities"][0]
    with pytest.raises(ValidationError) as excinfo:
        services.subscription_set_quantities(user=member, subscription=subscription, instalments=9)
    assert "instalments" in errors_of(excinfo)


@pytest.mark.parametrize("status", [Subscription.Status.MEMBER_SIGNED, Subscription.Status.SIGNED])
def test_signed_subscription_is_never_edited(contract, status):
    member = person()
    small = product(contract, "Petit panier").pk
    subscription = services.subscription_create(user=member, contract=contract, quantities={small: 1})
    Subscription.objects.filter(pk=subscription.pk).update(status=status)
    before = list(subscription.items.values_list("delivery_id", "product_id", "quantity"))
    with pytest.raises(ValidationError) as excinfo:
        services.subscription_set_quantities(user=member, subscription=subscription, quantities={small: 2})
    assert "avenant" in errors_of(excinfo)["status"][0]
    assert list(subscription.items.values_list("delivery_id", "product_id", "quantity")) == before


def test_signed_subscription_is_not_cancelled_but_amended(contract):
    member = person()
    subscription = sign(
        services.subscription_create(
            user=member, contract=contract, quantities={product(contract, "Petit panier").pk: 1}
        )
    )
    with pytest.raises(ValidationError) as excinfo:
        services.subscription_cancel(user=member, subscription=subscription)
    assert "faites un avenant" in errors_of(excinfo)["status"][0]
    with pytest.raises(PermissionDenied):
        services.subscription_cancel(user=person(), subscription=subscription)


# --------------------------------------------------------------------------------------------
# Amendments


def test_amendment_is_a_new_version_from_its_date(contract):
    member = person()
    small, big = product(contract, "Petit panier"), product(contract, "Grand panier")
    signed = sign(services.subscription_create(user=member, contract=contract, quantities={small.pk: 1}, shares=1))
    free_before = services.free_shares(contract=contract)
    effective = dt.date(2027, 7, 1)

    amendment = services.subscription_amend(
        user=member, subscription=signed, effective_from=effective, quantities={big.pk: 1}
    )
    signed.refresh_from_db()
    assert signed.status == Subscription.Status.SIGNED  # in force until the amendment is signed
    assert (amendment.status, amendment.version, amendment.previous) == (Subscription.Status.PENDING, 2, signed)
    assert amendment.member == member and amendment.shares == signed.shares
    assert items_by_date(amendment) == {
        day: ({"Petit panier": 1} if day < effective else {"Grand panier": 1}) for day in tuesdays()
    }
    # The old version keeps its items; the amendment takes no extra share.
    assert items_by_date(signed) == {day: {"Petit panier": 1} for day in tuesdays()}
    assert services.free_shares(contract=contract) == free_before
    event = EvidenceEvent.objects.get(kind="subscription.amended", subscription_id=amendment.pk)
    assert event.payload["replaces"] == signed.pk

    with pytest.raises(ValidationError) as excinfo:
        services.subscription_amend(user=member, subscription=signed, effective_from=effective, quantities={})
    assert "déjà en cours" in errors_of(excinfo)["status"][0]
    with pytest.raises(ValidationError) as excinfo:
        services.subscription_set_quantities(user=member, subscription=amendment, quantities={big.pk: 2})
    assert "annulez-le" in errors_of(excinfo)["status"][0]

    # Once signed (signing supersedes the old version first), the amendment is the live one.
    with transaction.atomic():
        Subscription.objects.filter(pk=signed.pk).update(status=Subscription.Status.SUPERSEDED)
        Subscription.objects.filter(pk=amendment.pk).update(status=Subscription.Status.SIGNED)
    amendment.refresh_from_db()
    third = services.subscription_amend(
        user=member, subscription=amendment, effective_from=dt.date(2027, 9, 1), quantities={}
    )
    assert third.version == 3
    assert max(items_by_date(third)) == dt.date(2027, 8, 31)  # an amendment to nothing stops the deliveries


def test_abandoned_amendment_allows_another(contract):
    member = person()
    small = product(contract, "Petit panier").pk
    signed = sign(services.subscription_create(user=member, contract=contract, quantities={small: 1}))
    first = services.subscription_amend(
        user=member, subscription=signed, effective_from=dt.date(2027, 6, 1), quantities={small: 2}
    )
    services.subscription_cancel(user=member, subscription=first)
    first.refresh_from_db()
    assert first.status == Subscription.Status.CANCELLED
    second = services.subscription_amend(
        user=member, subscription=signed, effective_from=dt.date(2027, 6, 8), quantities={small: 2}
    )
    assert second.previous == signed and second.version == 2


def test_database_still_refuses_two_original_subscriptions(contract):
    member = person()
    services.subscription_create(user=member, contract=contract, quantities={product(contract, "6 œufs").pk: 1})
    with pytest.raises(IntegrityError), transaction.atomic():
        Subscription.objects.create(contract=contract, member=member, member_name="double")


@pytest.mark.parametrize(
    ("effective_from", "message"),
    [
        (dt.date(2027, 10, 5), "en dehors de la saison"),
        (dt.date(2027, 3, 1), "en dehors de la saison"),
        ("demain", "Date invalide"),
    ],
)
def test_amendment_date_errors(contract, effective_from, message):
    member = person()
    small = product(contract, "Petit panier").pk
    signed = sign(services.subscription_create(user=member, contract=contract, quantities={small: 1}))
    with pytest.raises(ValidationError) as excinfo:
        services.subscription_amend(user=member, subscription=signed, effective_from=effective_from, quantities={})
    assert message in errors_of(excinfo)["effective_from"][0]


def test_amendment_never_changes_the_past(contract):
    member = person()
    small = product(contract, "Petit panier").pk
    signed = sign(services.subscription_create(user=member, contract=contract, quantities={small: 1}))
    with at(dt.date(2027, 7, 15)), pytest.raises(ValidationError) as excinfo:
        services.subscription_amend(
            user=member, subscription=signed, effective_from=dt.date(2027, 7, 1), quantities={small: 2}
        )
    assert "passées" in errors_of(excinfo)["effective_from"][0]
    pending = services.subscription_create(user=person(), contract=contract, quantities={small: 1})
    with pytest.raises(ValidationError) as excinfo:
        services.subscription_amend(
            user=pending.member, subscription=pending, effective_from=dt.date(2027, 7, 1), quantities={small: 2}
        )
    assert "signé" in errors_of(excinfo)["status"][0]


# --------------------------------------------------------------------------------------------
# Absences


def test_absence_with_a_substitute(contract):
    member = person()
    subscription = sign(
        services.subscription_create(
            user=member, contract=contract, pattern="alternate", quantities={product(contract, "6 œufs").pk: 1}
        )
    )
    deliveries = list(contract.deliveries.order_by("date"))
    absence = services.absence_declare(
        user=member, subscription=subscription, delivery=deliveries[2], substitute_name="Zoé (voisine)"
    )
    assert (absence.delivery, absence.substitute_name) == (deliveries[2], "Zoé (voisine)")
    # Declaring again updates it.
    services.absence_declare(user=member, subscription=subscription, delivery=deliveries[2], note="vacances")
    absence.refresh_from_db()
    assert (absence.substitute_name, absence.note) == ("", "vacances")
    assert Absence.objects.count() == 1

    with pytest.raises(ValidationError) as excinfo:  # alternate: nothing on the second delivery
        services.absence_declare(user=member, subscription=subscription, delivery=deliveries[1])
    assert "rien à cette distribution" in errors_of(excinfo)["delivery"][0]
    other = Delivery.objects.create(
        contract=ContractFactory(referent=person()), scheduled_date=SEASON_START, date=SEASON_START
    )
    with pytest.raises(ValidationError) as excinfo:
        services.absence_declare(user=member, subscription=subscription, delivery=other)
    assert "delivery" in errors_of(excinfo)
    with pytest.raises(ValidationError) as excinfo:
        services.absence_declare(user=member, subscription=subscription, delivery=deliveries[0], note="x" * 301)
    assert "300 caractères" in errors_of(excinfo)["note"][0]
    with pytest.raises(PermissionDenied):
        services.absence_declare(user=person(), subscription=subscription, delivery=deliveries[0])
    with at(deliveries[4].date + dt.timedelta(days=1)), pytest.raises(ValidationError) as excinfo:
        services.absence_declare(user=member, subscription=subscription, delivery=deliveries[4])
    assert "passée" in errors_of(excinfo)["delivery"][0]

    services.absence_cancel(user=member, absence=absence)
    assert not Absence.objects.exists()


# --------------------------------------------------------------------------------------------
# Deliveries


@pytest.fixture
def subscribers(contract):
    """Two signed members and one still to sign, all taking the first delivery."""
    small = product(contract, "Petit panier").pk
    signed = [
        sign(services.subscription_create(user=person(email=email), contract=contract, quantities={small: 1}))
        for email in ("signe1@example.org", "signe2@example.org")
    ]
    pending = services.subscription_create(
        user=person(email="pas-signe@example.org"), contract=contract, quantities={small: 1}
    )
    return signed, pending


def test_postponed_delivery_moves_and_warns_signed_members(
    referent, contract, subscribers, django_capture_on_commit_callbacks
):
    delivery = contract.deliveries.get(date=dt.date(2027, 5, 4))
    with django_capture_on_commit_callbacks(execute=True):
        services.delivery_mark(
            user=referent, delivery=delivery, status="postponed", new_date=dt.date(2027, 5, 7), note="gel"
        )
    delivery.refresh_from_db()
    assert (delivery.status, delivery.scheduled_date, delivery.date) == (
        Delivery.Status.POSTPONED,
        dt.date(2027, 5, 4),
        dt.date(2027, 5, 7),
    )
    # The items follow the delivery: members now take their basket on the new date.
    signed, _pending = subscribers
    assert items_by_date(signed[0])[dt.date(2027, 5, 7)] == {"Petit panier": 1}
    assert sorted(m.to[0] for m in mail.outbox) == ["signe1@example.org", "signe2@example.org"]
    body = mail.outbox[0].body
    assert "La distribution du mardi 4 mai 2027" in body and "est reportée au vendredi 7 mai 2027" in body
    assert "Motif : gel" in body
    event = EvidenceEvent.objects.get(kind="delivery.marked", contract_id=contract.pk)
    assert event.payload["status"] == "postponed" and event.payload["date"] == "2027-05-07"


def test_postponement_errors(referent, contract):
    delivery = contract.deliveries.get(date=dt.date(2027, 5, 4))
    cases = [
        (None, "Indiquez la nouvelle date"),
        (dt.date(2027, 5, 11), "déjà une distribution le 11/05/2027"),
        (dt.date(2027, 5, 4), "déjà la date"),
        (dt.date(2027, 11, 30), "entre le début de la saison et le 29/10/2027"),
        ("le 5 mai", "Date invalide"),
    ]
    for new_date, message in cases:
        with pytest.raises(ValidationError) as excinfo:
            services.delivery_mark(user=referent, delivery=delivery, status="postponed", new_date=new_date)
        assert message in errors_of(excinfo)["new_date"][0]
    with at(dt.date(2027, 5, 3)), pytest.raises(ValidationError) as excinfo:
        services.delivery_mark(user=referent, delivery=delivery, status="postponed", new_date=dt.date(2027, 5, 1))
    assert "passée" in errors_of(excinfo)["new_date"][0]
    delivery.refresh_from_db()
    assert (delivery.status, delivery.date) == (Delivery.Status.PLANNED, dt.date(2027, 5, 4))


def test_cancelled_delivery_for_an_alea(farmer, contract, subscribers, django_capture_on_commit_callbacks):
    delivery = contract.deliveries.get(date=dt.date(2027, 6, 1))
    with django_capture_on_commit_callbacks(execute=True):
        services.delivery_mark(user=farmer, delivery=delivery, status="cancelled", note="grêle sur les légumes")
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.CANCELLED and not delivery.counts
    assert sorted(m.to[0] for m in mail.outbox) == ["signe1@example.org", "signe2@example.org"]
    body = mail.outbox[0].body
    assert "mardi 1 juin 2027" in body and "aléa de production" in body and "grêle sur les légumes" in body
    assert "ne vous sera pas facturée" in body
    with pytest.raises(ValidationError) as excinfo:
        services.delivery_mark(user=farmer, delivery=delivery, status="done")
    assert "déjà annulée" in errors_of(excinfo)["status"][0]


def test_done_only_once_it_happened(referent, farmer, contract):
    delivery = contract.deliveries.get(date=SEASON_START)
    with pytest.raises(ValidationError) as excinfo:
        services.delivery_mark(user=referent, delivery=delivery, status="done")
    assert "pas encore eu lieu" in errors_of(excinfo)["status"][0]
    with at(SEASON_START, hour=20):
        services.delivery_mark(user=farmer, delivery=delivery, status="done")
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.DONE
    with pytest.raises(ValidationError) as excinfo:
        services.delivery_mark(user=referent, delivery=delivery, status="planned")
    assert "status" in errors_of(excinfo)
    assert not mail.outbox


def test_only_managers_and_the_farm_mark_deliveries(contract, subscribers):
    signed, _pending = subscribers
    delivery = contract.deliveries.first()
    for user in (person(), signed[0].member):
        with pytest.raises(PermissionDenied):
            services.delivery_mark(user=user, delivery=delivery, status="cancelled")
    admin = person()
    AmapManager.objects.create(amap=contract.amap, user=admin, role=AmapManager.Role.ADMIN)
    services.delivery_mark(user=admin, delivery=delivery, status="cancelled")
    assert SubscriptionItem.objects.filter(delivery=delivery).count() == 3  # items kept, the delivery no longer counts
