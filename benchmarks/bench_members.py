"""Members (issue 15): the team's member list of an AMAP with 300 members, against 30.

Data (bulk_create in a transaction rolled back at the end): one AMAP, N members with accounts,
each signed up to a 52-week contract, half of them with an adhésion of the running season, a
few référents. The figure is the whole page as the server makes it (view, queries, template)
for an admin, p50 over `repeat` runs; then the ratio 300 / 30, which should stay under 2 (the
page runs a fixed number of queries: roles, adhésions and contracts are annotated/prefetched, and
it shows 100 members a page).

- members.list_30_p50, members.list_300_p50 (ms), members.list_ratio_300_30;
- members.list_{30,300}_cpu_p50: the same in CPU time of this process (steadier on a busy machine);
- members.list_queries_30, members.list_queries_300: SQL queries per page.
"""

from __future__ import annotations

import datetime as dt
import statistics
import time
from decimal import Decimal

from django.contrib.gis.geos import Point
from django.db import connection, transaction
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from benchmarks.common import measure, report

SEASON_START = dt.date(2027, 1, 5)


class _Rollback(Exception):
    pass


def _build(*, members: int, tag: str):
    from accounts.models import User
    from contracts.models import Contract, Subscription
    from directory.models import Amap, AmapManager, Farm
    from geo.models import Commune
    from members.models import Adhesion, AdhesionSeason, Membership

    bordeaux = Commune.objects.get(code="33063")
    amap = Amap.objects.create(
        name=f"AMAP banc d'essai membres {tag}", location=Point(-0.5792, 44.8378, srid=4326), commune=bordeaux
    )
    farm = Farm.objects.create(
        name=f"Ferme banc d'essai {tag}", location=Point(-0.2430, 44.9150, srid=4326), commune=bordeaux
    )
    admin = User.objects.create(email=f"bench-members-admin-{tag}@example.org", password="!", display_name="Admin")
    AmapManager.objects.create(amap=amap, user=admin, role=AmapManager.Role.ADMIN)
    people = User.objects.bulk_create(
        User(email=f"bench-members-{tag}-{n}@example.org", password="!", display_name=f"Membre {n:03d}")
        for n in range(members)
    )
    AmapManager.objects.bulk_create(
        AmapManager(amap=amap, user=person, role=AmapManager.Role.REFERENT) for person in people[:3]
    )
    contract = Contract.objects.create(
        amap=amap,
        farm=farm,
        title="Légumes 2027",
        season_start=SEASON_START,
        season_end=SEASON_START + dt.timedelta(weeks=51),
        weekday=2,
        capacity_shares=members,
        payment_methods=["cheque"],
        referent=admin,
        status=Contract.Status.OPEN,
    )
    Subscription.objects.bulk_create(
        Subscription(contract=contract, member=p, member_name=p.display_name, status=Subscription.Status.SIGNED)
        for p in people
    )
    season = AdhesionSeason.objects.create(
        amap=amap, label="2027", starts_on=dt.date(2020, 1, 1), ends_on=dt.date(2099, 1, 1), amount=Decimal("10")
    )
    memberships = Membership.objects.bulk_create(
        Membership(amap=amap, user=p, email=p.email, first_name="Membre", last_name=f"{n:03d}", status="active")
        for n, p in enumerate(people)
    )
    Adhesion.objects.bulk_create(
        Adhesion(membership=m, season=season, amount=Decimal("10"), payment_mode="cheque", status="paid")
        for m in memberships[::2]
    )
    return amap, admin


def _page(amap, admin):
    from members.views import member_list

    request = RequestFactory().get(f"/adherents/amap/{amap.pk}/membres/")
    request.user = admin
    request.csp_nonce = "bench"
    return lambda: member_list(request, amap.pk)


def run(ctx) -> None:
    from members.views import MEMBERS_PER_PAGE

    repeat = ctx.size(15, 3)
    figures = {}
    try:
        with transaction.atomic():
            for members in (30, 300):
                amap, admin = _build(members=members, tag=str(members))
                with connection.cursor() as cursor:
                    cursor.execute("ANALYZE members_membership, members_adhesion, contracts_subscription")
                page = _page(amap, admin)
                response = page()
                # One page of rows (members.views.MEMBERS_PER_PAGE), + the header; the count is of all of them.
                shown = min(members, MEMBERS_PER_PAGE)
                assert response.status_code == 200 and response.content.count(b"<tr>") == shown + 1
                assert f"{members} personnes".encode() in response.content
                with CaptureQueriesContext(connection) as queries:
                    page()
                report(f"members.list_queries_{members}", len(queries.captured_queries), "queries")
                figures[members] = statistics.median(measure(page, repeat, warmup=2))
                report(f"members.list_{members}_p50", figures[members] * 1000, "ms")
                # CPU time of this process (view + template), steadier than wall time on a busy machine.
                cpu = []
                for _ in range(repeat):
                    started = time.process_time()
                    page()
                    cpu.append(time.process_time() - started)
                report(f"members.list_{members}_cpu_p50", statistics.median(cpu) * 1000, "ms")
            report("members.list_ratio_300_30", figures[300] / figures[30], "x")
            raise _Rollback
    except _Rollback:
        pass
