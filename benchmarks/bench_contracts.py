"""Contracts (issue 7): summaries of an AMAP with 300 members over a 52-delivery season.

Data (built with bulk_create inside a transaction rolled back at the end, so the benchmark
database keeps nothing): one AMAP, 300 members; a vegetable contract of 52 weekly deliveries
with two baskets (each member takes one or both: same quantities every week, every other week,
or varying), an egg contract from a second farm taken by 40 % of them, every subscription
signed; one delivery cancelled (aléa), one postponed, absences with substitutes.

Figures (p50 over `repeat` runs; `--quick`: 60 members, fewer runs):
- contracts.items: SubscriptionItem rows summed (and members, deliveries);
- contracts.summary_{date,product,member,farmer}_p50: `selectors.summary(amap=…)`, the screen data;
  `…_csv_p50`: the same plus `exports.summary_csv`; `…_pdf_p50`: plus WeasyPrint, with
  `…_pdf_cpu_p50` the CPU time of this process (steadier than wall time on a busy machine);
- contracts.summary_member_naive_p50: the same figures by member summed in Python from every item
  row (what the SQL aggregation replaces), and the speed-up ratio;
- contracts.distribution_sheet_p50 / _pdf_p50, preparation_list_p50, subscription_totals_p50,
  member_ics_p50: one delivery, one subscription, one member's feed;
- the figures are checked to equal the sum of the deliveries' preparation lists before timing.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import statistics
import time
from collections import defaultdict
from decimal import Decimal

from django.contrib.gis.geos import Point
from django.db import connection, transaction

from benchmarks.common import measure, note, report, timed

SEASON_START = dt.date(2027, 1, 5)  # a Tuesday; 52 Tuesdays to 28 December 2027
WEEKS = 52


class _Rollback(Exception):
    pass


def _measure_cpu(fn, repeat: int) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU seconds of this process per call. PDF rendering is all Python and
    C in this process, so its CPU time hardly moves when the shared machine is busy."""
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return walls, cpus


def _build(*, members: int, seed: int = 7) -> dict:
    from accounts.models import User
    from contracts.models import (
        Absence,
        Contract,
        ContractProduct,
        Delivery,
        Subscription,
        SubscriptionItem,
    )
    from directory.models import Amap, AmapManager, Farm
    from geo.models import Commune

    rng = random.Random(seed)
    bordeaux = Commune.objects.get(code="33063")
    libourne = Commune.objects.get(code="33243")
    amap = Amap.objects.create(
        name="AMAP banc d'essai contrats", location=Point(-0.5792, 44.8378, srid=4326), commune=bordeaux
    )
    farms = [
        Farm.objects.create(name=name, location=Point(-0.2430, 44.9150, srid=4326), commune=libourne)
        for name in ("Ferme des Légumes (banc d'essai)", "Ferme des Poules (banc d'essai)")
    ]
    referent = User.objects.create(email="bench-contracts-referent@example.org", password="!", display_name="Référente")
    AmapManager.objects.create(amap=amap, user=referent, role=AmapManager.Role.REFERENT)
    people = User.objects.bulk_create(
        User(email=f"bench-contracts-{n}@example.org", password="!", display_name=f"Adhérent·e {n:03d}")
        for n in range(members)
    )

    def contract(farm, title, products):
        c = Contract.objects.create(
            amap=amap,
            farm=farm,
            title=title,
            season_start=SEASON_START,
            season_end=SEASON_START + dt.timedelta(weeks=WEEKS - 1),
            weekday=2,
            capacity_shares=members,
            instalments_max=10,
            payment_methods=["cheque"],
            referent=referent,
            status=Contract.Status.CLOSED,
            delivery_start=dt.time(18, 0),
            delivery_end=dt.time(19, 30),
            delivery_place="Salle des fêtes, Bordeaux",
        )
        Delivery.objects.bulk_create(
            Delivery(contract=c, scheduled_date=day, date=day)
            for day in (SEASON_START + dt.timedelta(weeks=w) for w in range(WEEKS))
        )
        made = [
            ContractProduct.objects.create(contract=c, name=name, unit_price=Decimal(price), position=n)
            for n, (name, price) in enumerate(products)
        ]
        return c, list(c.deliveries.order_by("date")), made

    veg, veg_deliveries, baskets = contract(
        farms[0], "Légumes 2027", [("Petit panier", "12.50"), ("Grand panier", "20.00")]
    )
    eggs, egg_deliveries, (egg,) = contract(farms[1], "Œufs 2027", [("6 œufs", "2.40")])

    now = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    subscriptions, plans = [], []
    for person in people:
        pattern = rng.choices(list(Subscription.Pattern), weights=[2, 1, 1])[0]
        subscriptions.append(
            Subscription(
                contract=veg,
                member=person,
                member_name=person.display_name,
                status=Subscription.Status.SIGNED,
                pattern=pattern,
                instalments=rng.choice([1, 3, 10]),
                signed_at=now,
            )
        )
        plans.append((veg_deliveries, {p: rng.randint(1, 2) for p in rng.sample(baskets, rng.randint(1, 2))}))
        if rng.random() < 0.4:
            subscriptions.append(
                Subscription(
                    contract=eggs,
                    member=person,
                    member_name=person.display_name,
                    status=Subscription.Status.SIGNED,
                    pattern=Subscription.Pattern.SAME,
                    signed_at=now,
                )
            )
            plans.append((egg_deliveries, {egg: rng.randint(1, 3)}))
    Subscription.objects.bulk_create(subscriptions)

    items = []
    for subscription, (deliveries, chosen) in zip(subscriptions, plans, strict=True):
        for week, delivery in enumerate(deliveries):
            if subscription.pattern == Subscription.Pattern.ALTERNATE and week % 2:
                continue
            for product, qty in chosen.items():
                if subscription.pattern == Subscription.Pattern.VARYING:
                    qty = rng.randint(0, 3)
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
    SubscriptionItem.objects.bulk_create(items, batch_size=5000)

    cancelled, postponed = veg_deliveries[10], veg_deliveries[20]
    Delivery.objects.filter(pk=cancelled.pk).update(status=Delivery.Status.CANCELLED, note="grêle")
    Delivery.objects.filter(pk=postponed.pk).update(
        status=Delivery.Status.POSTPONED, date=postponed.date + dt.timedelta(days=2)
    )
    Absence.objects.bulk_create(
        Absence(subscription=s, delivery=rng.choice(veg_deliveries), substitute_name="Voisin·e")
        for s in rng.sample([s for s in subscriptions if s.contract_id == veg.pk], min(100, members))
    )
    return {
        "amap": amap,
        "contracts": (veg, eggs),
        "members": people,
        "subscriptions": subscriptions,
        "items": len(items),
        "deliveries": len(veg_deliveries) + len(egg_deliveries),
        "sheet_delivery": veg_deliveries[30],
    }


def _naive_by_member(*, amap) -> dict:
    """The by-member figures summed in Python from every item row (the path SQL aggregation replaces)."""
    from contracts.models import Delivery, Subscription, SubscriptionItem

    figures: dict = defaultdict(lambda: [0, Decimal("0")])
    for item in SubscriptionItem.objects.filter(
        delivery__contract__amap=amap, subscription__status=Subscription.Status.SIGNED
    ).select_related("delivery", "subscription"):
        if item.delivery.status == Delivery.Status.CANCELLED:
            continue
        figure = figures[item.subscription.member_id]
        figure[0] += item.quantity
        figure[1] += item.quantity * item.unit_price
    return figures


def _check(world) -> None:
    """Totals of every summary equal the sum of the deliveries' preparation lists."""
    from contracts import selectors
    from contracts.models import Delivery

    quantity, amount = 0, Decimal("0")
    for contract in world["contracts"]:
        for delivery in contract.deliveries.exclude(status=Delivery.Status.CANCELLED):
            for line in selectors.preparation_list(delivery=delivery):
                quantity += line.quantity
                amount += line.amount
    for by in selectors.SUMMARY_BY:
        totals = selectors.summary(amap=world["amap"], by=by).totals
        assert (totals.quantity, totals.amount) == (quantity, amount), (by, totals.quantity, quantity)
    naive = _naive_by_member(amap=world["amap"])
    assert sum(q for q, _a in naive.values()) == quantity
    note(f"checked: every summary's totals = sum of the preparation lists ({quantity} units, {amount} €)")


def run(ctx) -> None:
    from contracts import exports, ics, selectors

    # WeasyPrint logs each rendering step at INFO; the figures are what this run is for.
    logging.getLogger("weasyprint").setLevel(logging.WARNING)
    members = ctx.size(300, 60)
    repeat = ctx.size(5, 2)
    pdf_repeat = ctx.size(3, 1)
    try:
        with transaction.atomic():
            with timed() as built:
                world = _build(members=members)
            amap = world["amap"]
            report("contracts.members", members, "members")
            report("contracts.deliveries", world["deliveries"], "deliveries")
            report("contracts.items", world["items"], "items")
            report("contracts.build_bulk_create", built.seconds, "s")
            with connection.cursor() as cursor:
                # Fresh statistics, as autovacuum would have after a season's sign-ups; without them
                # the planner believes the just-filled tables are empty and nests loops over 25k items.
                cursor.execute(
                    "ANALYZE contracts_subscriptionitem, contracts_subscription, contracts_delivery, "
                    "contracts_contract, contracts_contractproduct, contracts_absence"
                )
            _check(world)

            exports.summary_pdf(amap=amap, by="farmer")  # fonts loaded once, as in a running server
            for by in selectors.SUMMARY_BY:
                rows = len(selectors.summary(amap=amap, by=by).rows)
                screen = measure(lambda by=by: selectors.summary(amap=amap, by=by), repeat, warmup=1)
                csv = measure(lambda by=by: exports.summary_csv(amap=amap, by=by), repeat)
                pdf, pdf_cpu = _measure_cpu(lambda by=by: exports.summary_pdf(amap=amap, by=by), pdf_repeat)
                note(f"summary by {by}: {rows} rows")
                report(f"contracts.summary_{by}_p50", statistics.median(screen) * 1000, "ms")
                report(f"contracts.summary_{by}_csv_p50", statistics.median(csv) * 1000, "ms")
                report(f"contracts.summary_{by}_pdf_p50", statistics.median(pdf) * 1000, "ms")
                report(f"contracts.summary_{by}_pdf_cpu_p50", statistics.median(pdf_cpu) * 1000, "ms")

            sql = measure(lambda: selectors.summary(amap=amap, by="member"), repeat)
            naive = measure(lambda: _naive_by_member(amap=amap), repeat)
            report("contracts.summary_member_naive_p50", statistics.median(naive) * 1000, "ms")
            report("contracts.summary_member_sql_speedup", statistics.median(naive) / statistics.median(sql), "x")

            delivery = world["sheet_delivery"]
            sheet_rows = len(selectors.distribution_sheet(delivery=delivery))
            note(f"distribution sheet of {delivery.date:%d/%m/%Y}: {sheet_rows} members")
            sheet = measure(lambda: selectors.distribution_sheet(delivery=delivery), repeat, warmup=1)
            sheet_pdf, sheet_pdf_cpu = _measure_cpu(
                lambda: exports.distribution_sheet_pdf(delivery=delivery), pdf_repeat
            )
            prep = measure(lambda: selectors.preparation_list(delivery=delivery), repeat)
            report("contracts.distribution_sheet_p50", statistics.median(sheet) * 1000, "ms")
            report("contracts.distribution_sheet_pdf_p50", statistics.median(sheet_pdf) * 1000, "ms")
            report("contracts.distribution_sheet_pdf_cpu_p50", statistics.median(sheet_pdf_cpu) * 1000, "ms")
            report("contracts.preparation_list_p50", statistics.median(prep) * 1000, "ms")

            subscription = world["subscriptions"][0]
            totals = measure(lambda: selectors.subscription_totals(subscription=subscription), repeat)
            report("contracts.subscription_totals_p50", statistics.median(totals) * 1000, "ms")
            member = world["members"][0]
            feed = measure(lambda: ics.member_calendar(user=member), repeat)
            report("contracts.member_ics_p50", statistics.median(feed) * 1000, "ms")
            raise _Rollback
    except _Rollback:
        pass
