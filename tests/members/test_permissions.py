"""Permission matrix of the members routes: every role of tests/contracts/roles.py × every route.

Same rule as the contracts' matrix (tests/contracts/test_permissions.py): not logged in → the
login page (except the unsubscribe link); an object you may not see → 404 (members' details
are the AMAP team's only); a page of the public AMAP that is not yours to use → 403. A new
route in members/urls.py without a row here fails `test_every_members_route_is_in_the_matrix`.
Besides the contracts' cast: `coordinator` (admin of a network the AMAP belongs to; members'
details are still not theirs), `other_coordinator` and `joined_member` (accepted, no contract).
"""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from members import services, urls
from members.models import Adhesion, AdhesionSeason, Membership, Message, MessageDelivery
from tests.contracts.roles import ROLES as CONTRACT_ROLES
from tests.contracts.roles import contract_world
from tests.contracts.test_permissions import LOGIN, Route
from tests.factories import NetworkFactory, UserFactory

pytestmark = pytest.mark.django_db

ROLES = CONTRACT_ROLES + ("coordinator", "other_coordinator", "joined_member")


def expect(default, *, anonymous=LOGIN, **overrides) -> dict:
    """Expected status per role: `default` for every logged-in role unless overridden."""
    unknown = set(overrides) - set(ROLES)
    assert not unknown, unknown
    table = {role: default for role in ROLES}
    table["anonymous"] = anonymous
    table.update(overrides)
    return table


TEAM = {"referent": 200, "amap_admin": 200, "other_referent": 200, "staff": 200}


def _ok(roles: dict, code: int) -> dict:
    return {role: code for role in roles}


ROUTES = [
    Route("join", args="amap", expected=expect(200)),
    Route("member_list", args="amap", expected=expect(403, **TEAM)),
    Route("member_export", args="amap", expected=expect(403, **TEAM)),
    Route("member_import", args="amap", expected=expect(403, **TEAM)),
    Route("member_invite", args="amap", expected=expect(403, **TEAM)),
    Route(
        "membership_decide",
        args="membership",
        method="post",
        data={"decision": "wait"},
        expected=expect(404, **_ok(TEAM, 302)),
    ),
    Route("adhesions", args="amap", expected=expect(403, **TEAM)),
    Route("adhesion_create", args="amap", expected=expect(403, member=200, joined_member=200)),
    Route(
        "adhesion_mark",
        args="adhesion",
        method="post",
        data={"paid": "1"},
        expected=expect(404, member=403, **_ok(TEAM, 302)),
    ),
    Route("adhesion_receipt", args="adhesion", expected=expect(404, member=200, **TEAM)),
    Route("message_list", args="amap", expected=expect(403, **TEAM)),
    Route("message_create", args="amap", expected=expect(403, **TEAM)),
    Route("message_detail", args="message", expected=expect(404, member=200, **TEAM)),
    Route("invitation_accept", args="invitation", expected=expect(200)),
    Route("unsubscribe", args="unsubscribe", expected=expect(200, anonymous=200)),
]


def members_world():
    """The contracts' cast, plus: the member is a member with a paid adhésion and got a message;
    the other member asked to join; someone was invited."""
    world = contract_world()
    amap, member = world.amap, world.users["member"]
    network = NetworkFactory()
    amap.networks.add(network)
    world.users["coordinator"] = UserFactory(display_name="Coordinatrice")
    network.admins.add(world.users["coordinator"])
    world.users["other_coordinator"] = UserFactory(display_name="Autre coordinatrice")
    NetworkFactory().admins.add(world.users["other_coordinator"])
    joined = world.users["joined_member"] = UserFactory(display_name="Nouvelle membre")
    Membership.objects.create(amap=amap, user=joined, email=joined.email, status="active")
    season = AdhesionSeason.objects.create(
        amap=amap, label="2027", starts_on=dt.date(2027, 1, 1), ends_on=dt.date(2027, 12, 31), amount=Decimal("10")
    )
    membership = Membership.objects.create(amap=amap, user=member, email=member.email, status="active")
    pending = Membership.objects.create(
        amap=amap, user=world.users["other_member"], email=world.users["other_member"].email, status="pending"
    )
    adhesion = Adhesion.objects.create(
        membership=membership,
        season=season,
        amount=Decimal("10"),
        payment_mode="cheque",
        status="paid",
        paid_at=timezone.now(),
        receipt_number="ADH-1",
    )
    message = Message.objects.create(
        amap=amap, author_name="Réf", audience="contract", audience_label="Légumes", subject="Mardi", body="Sacs."
    )
    MessageDelivery.objects.create(message=message, email=member.email, user=member, membership=membership)
    invited = Membership.objects.create(amap=amap, email="invite@example.org", status="invited")
    world.objects = {
        "amap": amap.pk,
        "membership": pending.pk,
        "adhesion": adhesion.pk,
        "message": message.pk,
        "invitation": services.invitation_token(invited),
        "unsubscribe": services.unsubscribe_token(membership.pk),
    }
    return world


def _observed(route: Route, world) -> dict:
    url = reverse(f"members:{route.name}", args=[world.objects[route.args]])
    login_url = reverse("accounts:login")
    seen = {}
    for role in ROLES:
        client = Client()
        if world.users[role] is not None:
            client.force_login(world.users[role])
        with transaction.atomic():
            response = client.get(url) if route.method == "get" else client.post(url, route.data)
            transaction.set_rollback(True)
        code = response.status_code
        if code == 302 and response.url.startswith(login_url):
            code = LOGIN
        seen[role] = code
    return seen


@pytest.mark.parametrize("route", ROUTES, ids=str)
def test_members_route_answers_each_role_as_the_matrix_says(route):
    world = members_world()
    assert _observed(route, world) == route.expected


def test_every_members_route_is_in_the_matrix():
    assert {pattern.name for pattern in urls.urlpatterns} == {route.name for route in ROUTES}
