"""Events (issue 15): the shift page of an AMAP with 300 members and a 52-week season.

Data (bulk_create inside a transaction rolled back at the end): one AMAP, N members each with a
signed subscription to a weekly contract whose 52 deliveries start today, two members on duty
at most distributions (some left short), a team of two.

Figures (p50 over `repeat` runs, the view called in-process: server time without the network):
- events.shift_page_{30,300}_p50: GET of the shift page by an AMAP admin;
- events.shift_page_ratio_300_vs_30: must stay under 2 (cost does not grow with members);
- events.shift_page_{30,300}_cpu_p50: the CPU time of this process for the same (load-proof);
- events.shift_page_queries_{30,300}: SQL queries of one page.
"""

from __future__ import annotations

import datetime as dt
import statistics
import time

from django.contrib.gis.geos import Point
from django.db import connection, transaction
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from benchmarks.common import measure, report

WEEKS = 52


class _Rollback(Exception):
    pass


def _build(*, members: int, tag: str):
    from accounts.models import User
    from contracts.models import Contract, Delivery, Subscription
    from directory.models import Amap, AmapManager, Farm
    from events.models import Shift
    from geo.models import Commune

    bordeaux = Commune.objects.get(code="33063")
    amap = Amap.objects.create(
        name=f"AMAP banc d'essai permanences {tag}", location=Point(-0.5792, 44.8378, srid=4326), commune=bordeaux
    )
    farm = Farm.objects.create(
        name=f"Ferme banc d'essai {tag}", location=Point(-0.2430, 44.9150, srid=4326), commune=bordeaux
    )
    admin = User.objects.create(email=f"bench-events-admin-{tag}@example.org", password="!", display_name="Admin")
    AmapManager.objects.create(amap=amap, user=admin, role=AmapManager.Role.ADMIN)
    today = timezone.localdate()
    contract = Contract.objects.create(
        amap=amap,
        farm=farm,
        title="Légumes",
        season_start=today,
        season_end=today + dt.timedelta(weeks=WEEKS),
        weekday=today.isoweekday(),
        capacity_shares=members,
        payment_methods=["cheque"],
        referent=admin,
        status=Contract.Status.CLOSED,
    )
    days = [today + dt.timedelta(weeks=w) for w in range(WEEKS)]
    Delivery.objects.bulk_create(Delivery(contract=contract, scheduled_date=d, date=d) for d in days)
    people = User.objects.bulk_create(
        User(email=f"bench-events-{tag}-{n}@example.org", password="!", display_name=f"Membre {n:03d}")
        for n in range(members)
    )
    Subscription.objects.bulk_create(
        Subscription(contract=contract, member=p, member_name=p.display_name, status=Subscription.Status.SIGNED)
        for p in people
    )
    shifts = []
    for index, day in enumerate(days):
        for slot in range(2 if index % 5 else 1):  # every fifth distribution is short of one person
            shifts.append(Shift(amap=amap, date=day, member=people[(2 * index + slot) % members]))
    Shift.objects.bulk_create(shifts)
    return amap, admin


def _page(amap, admin):
    from events.views import shift_list

    request = RequestFactory().get(reverse("events:shift_list", args=[amap.pk]))
    request.user = admin
    response = shift_list(request, pk=amap.pk)
    assert response.status_code == 200
    return response


def run(ctx) -> None:
    repeat = ctx.size(15, 3)
    p50 = {}
    try:
        with transaction.atomic():
            for members in (30, 300):
                amap, admin = _build(members=members, tag=str(members))
                with connection.cursor() as cursor:
                    cursor.execute("ANALYZE events_shift, contracts_delivery, contracts_subscription")
                with CaptureQueriesContext(connection) as queries:
                    _page(amap, admin)
                report(f"events.shift_page_queries_{members}", len(queries), "queries")
                p50[members] = statistics.median(measure(lambda a=amap, u=admin: _page(a, u), repeat, warmup=2))
                report(f"events.shift_page_{members}_p50", p50[members] * 1000, "ms")
                # This process's CPU time (template + ORM): steadier than wall time on a shared machine.
                cpu = []
                for _ in range(repeat):
                    started = time.process_time()
                    _page(amap, admin)
                    cpu.append(time.process_time() - started)
                report(f"events.shift_page_{members}_cpu_p50", statistics.median(cpu) * 1000, "ms")
            report("events.shift_page_ratio_300_vs_30", p50[300] / p50[30], "x")
            raise _Rollback
    except _Rollback:
        pass
