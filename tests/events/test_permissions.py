"""Permission matrix of the shift and event pages: every role × every route of events/urls.py.

Same rule and cast as tests/contracts/test_permissions.py (`contract_world`): not logged in →
the login page (except the public calendars); an object you may not see → 404; an action that
is not yours → 403. « Members » of the AMAP are its subscribers, its team and those whose
membership (members app) is active. Besides the contracts' cast, three roles matter here:
`coordinator` (admin of a network the AMAP belongs to), `other_coordinator` (of another network)
and `joined_member` (accepted into the AMAP, no contract yet).
"""

import datetime as dt

import pytest
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from events import urls
from events.models import Event, Shift
from members.models import Membership
from tests.contracts.roles import ROLES as CONTRACT_ROLES
from tests.contracts.roles import contract_world
from tests.contracts.test_permissions import LOGIN, Route
from tests.factories import NetworkFactory, UserFactory

pytestmark = pytest.mark.django_db

EXTRA_ROLES = ("coordinator", "other_coordinator", "joined_member")
ROLES = CONTRACT_ROLES + EXTRA_ROLES


def expect(default, *, anonymous=LOGIN, **overrides) -> dict:
    """Expected status per role: `default` for every logged-in role unless overridden."""
    unknown = set(overrides) - set(ROLES)
    assert not unknown, unknown
    table = {role: default for role in ROLES}
    table["anonymous"] = anonymous
    table.update(overrides)
    return table


PUBLIC = expect(200, anonymous=200)
# The AMAP's members (subscribers + team); staff sees what they see.
MEMBERS = {
    "member": 200,
    "other_member": 200,
    "referent": 200,
    "other_referent": 200,
    "amap_admin": 200,
    "staff": 200,
    "joined_member": 200,
}
TEAM = {"referent": 200, "other_referent": 200, "amap_admin": 200, "staff": 200}
TEAM_ONLY = ("referent", "other_referent", "amap_admin")  # the AMAP's team, staff apart
# Network coordinators run their network, not its AMAPs' shifts: they do not see them.
OUTSIDERS_404 = {"unrelated": 404, "farmer": 404, "other_farmer": 404, "coordinator": 404, "other_coordinator": 404}


def _ok(roles: dict, code: int) -> dict:
    return {role: code for role in roles}


ROUTES = [
    Route("shift_list", args="amap", expected=expect(403, **MEMBERS)),
    Route(
        "shift_signup",
        args="amap",
        method="post",
        data={"date": "free_date"},
        # Staff sees the page but holds no place: only members take shifts.
        expected=expect(403, **{**_ok(MEMBERS, 302), "staff": 403}),
    ),
    Route("shift_settings", args="amap", expected=expect(403, **TEAM)),
    Route("shift_ask", args="amap", method="post", data={"date": "free_date"}, expected=expect(403, **_ok(TEAM, 302))),
    Route(
        "shift_withdraw",
        args="shift",
        method="post",
        expected=expect(403, member=302, **OUTSIDERS_404),  # the member's own shift
    ),
    Route("shift_offer", args="shift", method="post", expected=expect(403, member=302, **OUTSIDERS_404)),
    Route(
        "shift_take",
        args="offered_shift",
        method="post",
        expected=expect(302, **{**OUTSIDERS_404, "staff": 403}),  # any member takes an offered shift
    ),
    Route("amap_calendar", args="amap", expected=PUBLIC),
    Route("amap_ics", args="amap", expected=PUBLIC),
    Route("amap_event_create", args="amap", expected=expect(403, **TEAM)),
    Route("network_ics", args="network", expected=PUBLIC),
    Route("network_event_create", args="network", expected=expect(403, staff=200, coordinator=200)),
    Route("event_detail", args="event", expected=expect(404, **MEMBERS)),  # a members-only event
    # A network's members-only gathering: its coordinators and the teams of its AMAPs.
    Route("event_detail", args="network_event", expected=expect(404, coordinator=200, **TEAM)),
    Route("event_detail", args="public_event", expected=PUBLIC),
    Route(
        "event_answer",
        args="event",
        method="post",
        data={"answer": "yes"},
        expected=expect(404, **_ok(MEMBERS, 302)),
    ),
    # The organisers' page: those who may create the event. Members who see it may not change it;
    # the teams of a network's AMAPs see its gatherings, only its coordinators run them.
    Route("event_edit", args="event", expected=expect(404, **{**_ok(MEMBERS, 403), **TEAM})),
    Route("event_edit", args="network_event", expected=expect(404, coordinator=200, staff=200, **_ok(TEAM_ONLY, 403))),
    Route(
        "event_cancel",
        args="event",
        method="post",
        data={"reason": "Salle indisponible"},
        expected=expect(404, **{**_ok(MEMBERS, 403), **_ok(TEAM, 302)}),
    ),
    Route(
        "event_cancel",
        args="network_event",
        method="post",
        data={"reason": "Salle indisponible"},
        expected=expect(404, coordinator=302, staff=302, **_ok(TEAM_ONLY, 403)),
    ),
]


def events_world():
    world = contract_world()
    users = world.users
    network = NetworkFactory()
    world.amap.networks.add(network)
    users["coordinator"] = UserFactory(display_name="Coordinatrice")
    network.admins.add(users["coordinator"])
    users["other_coordinator"] = UserFactory(display_name="Autre coordinatrice")
    NetworkFactory().admins.add(users["other_coordinator"])
    users["joined_member"] = UserFactory(display_name="Nouvelle membre")
    Membership.objects.create(
        amap=world.amap, user=users["joined_member"], email=users["joined_member"].email, status="active"
    )
    world.shift = Shift.objects.create(amap=world.amap, date=world.deliveries[0].date, member=users["member"])
    world.offered_shift = Shift.objects.create(
        amap=world.amap, date=world.deliveries[1].date, member=users["other_member"], offered_at=timezone.now()
    )
    start = timezone.make_aware(dt.datetime.combine(world.deliveries[2].date, dt.time(19)))
    common = {
        "amap": world.amap,
        "place": "Salle des fêtes",
        "starts_at": start,
        "ends_at": start + dt.timedelta(hours=2),
    }
    world.event = Event.objects.create(title="Assemblée générale", **common)
    world.public_event = Event.objects.create(title="Visite de la ferme", kind="farm_visit", is_public=True, **common)
    world.network_event = Event.objects.create(
        network=network,
        kind="network_gathering",
        title="Rencontre des AMAP",
        place="Bordeaux",
        starts_at=start,
        ends_at=start + dt.timedelta(hours=3),
    )
    world.network = network
    return world


def _args(route: Route, world) -> list:
    objects = {
        "amap": world.amap.pk,
        "shift": world.shift.pk,
        "offered_shift": world.offered_shift.pk,
        "network": world.network.pk,
        "event": world.event.pk,
        "public_event": world.public_event.pk,
        "network_event": world.network_event.pk,
    }
    return [objects[route.args]]


def _data(route: Route, world) -> dict:
    free = world.deliveries[5].date.isoformat()
    return {key: (free if value == "free_date" else value) for key, value in route.data.items()}


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r} {r.args}")
def test_route_answers_each_role_as_the_matrix_says(route):
    world = events_world()
    url = reverse(f"events:{route.name}", args=_args(route, world))
    login_url = reverse("accounts:login")
    seen = {}
    for role in ROLES:
        client = Client()
        if world.users[role] is not None:
            client.force_login(world.users[role])
        with transaction.atomic():
            response = client.get(url) if route.method == "get" else client.post(url, _data(route, world))
            transaction.set_rollback(True)
        code = response.status_code
        if code == 302 and response.url.startswith(login_url):
            code = LOGIN
        seen[role] = code
    assert seen == route.expected


def test_every_route_is_in_the_matrix():
    assert {pattern.name for pattern in urls.urlpatterns} == {route.name for route in ROUTES}
