"""Route × role table for the network's directory care (issue 14): claims, proposals, moderation, history.

Roles: a coordinator of the network whose territory holds the AMAP, a coordinator of another
network, the AMAP's admin, a farmer, a member (logged in, no tie), anonymous, and staff.
"""

import pytest
from django.urls import reverse

from directory.models import AmapManager, ChangeRequest
from tests.factories import AmapFactory, FarmFactory, NetworkFactory, UserFactory

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "member", "farmer", "amap_admin", "coordinator", "other_coordinator", "staff")
LOGIN = "login"


def expect(default, *, anonymous=LOGIN, **overrides) -> dict:
    table = dict.fromkeys(ROLES, default)
    table["anonymous"] = anonymous
    table.update(overrides)
    return table


EDITORS = {"amap_admin": 200, "coordinator": 200, "staff": 200}
# Claims: those who already run the AMAP are sent back to its page.
ROUTES = [
    ("directory:amap_claim", "amap", expect(200, amap_admin=302)),
    ("directory:farm_claim", "farm", expect(200, farmer=302)),
    ("directory:amap_propose", "amap", expect(200, **{k: 302 for k in EDITORS})),
    ("directory:farm_propose", "farm", expect(200, farmer=302, coordinator=302, staff=302)),
    ("directory:network_moderation", "network", expect(403, coordinator=200, staff=200)),
    ("directory:moderation_all", None, expect(403, staff=200)),
    ("directory:change_request_detail", "request", expect(403, coordinator=200, staff=200)),
    ("directory:entry_history", "amap_history", expect(403, **EDITORS)),
    ("directory:entry_history", "farm_history", expect(403, farmer=200, coordinator=200, staff=200)),
    ("directory:entry_history", "network_history", expect(403, coordinator=200, staff=200)),
    ("directory:entry_history_revert", "amap_revert", expect(403, **{k: 302 for k in EDITORS}), "post"),
    ("matching:thread_reply_link", "bad_token", expect(404, anonymous=404)),
]


@pytest.fixture
def world():
    network = NetworkFactory(name="AMAP Gironde", slug="amap-gironde", departments=["33"])
    other = NetworkFactory(name="AMAP Landes", slug="amap-landes", departments=["40"])
    users = {role: UserFactory() for role in ROLES if role != "anonymous"}
    users["anonymous"] = None
    users["staff"].is_staff = True
    users["staff"].save()
    network.admins.add(users["coordinator"])
    other.admins.add(users["other_coordinator"])
    amap = AmapFactory(name="AMAP des Chartrons")
    AmapManager.objects.create(amap=amap, user=users["amap_admin"], role=AmapManager.Role.ADMIN)
    farm = FarmFactory(name="Ferme de l'Entre-deux-Mers")
    farm.commune_id = "33063"
    farm.save()
    farm.managers.add(users["farmer"])
    request = ChangeRequest.objects.create(
        kind=ChangeRequest.Kind.CLAIM,
        entry_type="amap",
        amap=amap,
        name=amap.name,
        author=users["member"],
        commune_id="33063",
    )
    record = amap.history.first()
    args = {
        "amap": [amap.pk],
        "farm": [farm.pk],
        "network": [network.slug],
        "request": [request.pk],
        "amap_history": ["amap", amap.pk],
        "farm_history": ["ferme", farm.pk],
        "network_history": ["reseau", network.slug],
        "amap_revert": ["amap", amap.pk, record.history_id],
        "bad_token": [1, "faux"],
        None: [],
    }
    return users, args


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r[0]}:{r[1]}")
def test_new_route_answers_each_role_as_the_table_says(client, world, route):
    users, args = world
    name, target, expected = route[:3]
    method = route[3] if len(route) > 3 else "get"
    url = reverse(name, args=args[target])
    observed = {}
    for role in ROLES:
        client.logout()
        if users[role] is not None:
            client.force_login(users[role])
        response = getattr(client, method)(url)
        code = response.status_code
        if code == 302 and reverse("accounts:login") in response.headers["Location"]:
            code = LOGIN
        observed[role] = code
    assert observed == expected
