"""Capacity is never oversold: 50 members subscribe at the same moment for 10 remaining shares.

Each sign-up runs in its own thread with its own database connection, so the rows must be
committed for every connection to see them. A transactional test (`django_db(transaction=True)`)
would flush every table afterwards, France's communes included, which the rest of the suite
needs. Instead the test's own connection stays in its usual rolled-back transaction and only
reads; every write happens in other threads, on their own connections, committed: the set-up,
the 50 sign-ups, and the clean-up that deletes exactly the rows made here (marked by a title
and an e-mail domain) — also at the start, in case an interrupted run left some.
"""

import datetime as dt
import threading

import pytest
from django.db import connection

from accounts.models import User
from contracts import services
from contracts.evidence import evidence_verify
from contracts.models import Contract, EvidenceEvent, Subscription
from directory.models import Amap, AmapManager, Farm
from tests.factories import AmapFactory, FarmFactory, UserFactory

MARK = "Test de concurrence"
DOMAIN = "concurrence.example.org"
CAPACITY = 40
ALREADY_HELD = 30  # 15 members with 2 shares each
CANDIDATES = 50


def _cleanup() -> None:
    contracts = Contract.objects.filter(title=MARK)
    contract_ids = list(contracts.values_list("pk", flat=True))
    amap_ids = set(contracts.values_list("amap_id", flat=True))
    farm_ids = set(contracts.values_list("farm_id", flat=True))
    EvidenceEvent.objects.filter(contract_id__in=contract_ids).delete()
    Subscription.objects.filter(contract_id__in=contract_ids).delete()  # items go with them
    contracts.delete()  # deliveries, products and exceptions go with it
    Amap.objects.filter(pk__in=amap_ids).delete()
    Farm.objects.filter(pk__in=farm_ids).delete()
    User.objects.filter(email__endswith=f"@{DOMAIN}").delete()


def person(name: str) -> User:
    return UserFactory(email=f"{name}@{DOMAIN}", password="!")  # no password hashing: 66 users


def in_own_connection(function, *args):
    """Run `function` in a thread of its own: its own connection, autocommit, closed at the end."""
    outcome: dict = {}

    def run():
        try:
            outcome["value"] = function(*args)
        except BaseException as error:  # handed back to the caller
            outcome["error"] = error
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=120)
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def _set_up() -> tuple[Contract, int, list[User]]:
    """A published contract of 40 shares, 30 of them held; 50 members ready to sign up."""
    referent = person("referent")
    amap = AmapFactory()
    AmapManager.objects.create(amap=amap, user=referent, role=AmapManager.Role.REFERENT)
    contract = services.contract_create(
        user=referent,
        amap=amap,
        farm=FarmFactory(),
        title=MARK,
        season_start=dt.date(2027, 4, 6),
        season_end=dt.date(2027, 9, 28),
        weekday=2,
        frequency="weekly",
        capacity_shares=CAPACITY,
        products=[{"name": "Panier", "unit_price": "15.00", "max_quantity": 2}],
    )
    services.contract_publish(user=referent, contract=contract)
    basket = contract.products.get().pk
    for index in range(ALREADY_HELD // 2):
        services.subscription_create(user=person(f"deja-{index}"), contract=contract, quantities={basket: 1}, shares=2)
    return contract, basket, [person(f"candidat-{index}") for index in range(CANDIDATES)]


@pytest.mark.django_db
def test_fifty_parallel_signups_for_ten_shares():
    in_own_connection(_cleanup)
    try:
        contract, basket, candidates = in_own_connection(_set_up)
        assert services.free_shares(contract=contract) == 10

        start = threading.Barrier(CANDIDATES)
        results: dict[int, str] = {}
        failures: list[BaseException] = []

        def sign_up(index: int) -> None:
            try:
                start.wait(timeout=60)
                subscription = services.subscription_create(
                    user=candidates[index], contract=contract, quantities={basket: 1}
                )
                results[index] = subscription.status
            except BaseException as error:  # reported below
                failures.append(error)
            finally:
                connection.close()  # this thread's own connection

        threads = [threading.Thread(target=sign_up, args=(index,)) for index in range(CANDIDATES)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)

        assert not failures, failures[:3]
        assert len(results) == CANDIDATES
        statuses = list(results.values())
        assert statuses.count(Subscription.Status.PENDING) == 10
        assert statuses.count(Subscription.Status.WAITING) == 40
        # What the database holds agrees: the capacity is full, never more.
        held = Subscription.objects.filter(contract=contract).holding_shares()
        assert sum(held.values_list("shares", flat=True)) == CAPACITY
        waiting = Subscription.objects.filter(contract=contract).waiting()
        assert waiting.count() == 40 and all(s.waiting_since is not None for s in waiting)
        # Every sign-up left its evidence, and the chain appended concurrently still verifies.
        created = EvidenceEvent.objects.filter(contract_id=contract.pk, kind="subscription.created")
        assert created.count() == ALREADY_HELD // 2 + CANDIDATES
        assert evidence_verify().ok
    finally:
        in_own_connection(_cleanup)
    assert not Contract.objects.filter(title=MARK).exists()
    assert not User.objects.filter(email__endswith=f"@{DOMAIN}").exists()
