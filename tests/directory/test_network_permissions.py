"""Permission matrix of a network's space: every role × every route of the space.

The rule: anonymous → the login page; logged in without being a coordinator of *this* network
→ 403 (the network itself is public, so a 404 would hide nothing); coordinators and staff → 200
(302 for the POSTs, back to a page). The unsubscribe and verify links need no login: their
signed token is the permission. A route of the space without a row here fails
`test_every_space_route_is_in_the_matrix`.
"""

import pytest
from django.test import Client
from django.urls import reverse

from directory import urls
from directory.models import AmapManager, Announcement, ImportRun
from directory.services_coordination import optout_token, verify_token
from geo.models import Department
from tests.factories import AmapFactory, FarmFactory, NetworkFactory, UserFactory

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "member", "farmer", "amap_admin", "coordinator", "other_coordinator", "staff")
LOGIN = "login"
COORDINATORS = {"anonymous": LOGIN, "member": 403, "farmer": 403, "amap_admin": 403, "other_coordinator": 403}


def coordinators_only(ok: int) -> dict:
    return {**COORDINATORS, "coordinator": ok, "staff": ok}


# (route name, method, args builder, expected by role)
ROUTES = [
    ("network_space", "get", lambda w: [w.network.slug], coordinators_only(200)),
    ("network_team", "post", lambda w: [w.network.slug], coordinators_only(302)),
    ("network_export", "get", lambda w: [w.network.slug, "amaps"], coordinators_only(200)),
    ("network_import", "get", lambda w: [w.network.slug], coordinators_only(200)),
    ("network_import_run", "get", lambda w: [w.network.slug, w.run.pk], coordinators_only(200)),
    ("network_import_status", "get", lambda w: [w.network.slug, w.run.pk], coordinators_only(200)),
    ("network_announcements", "get", lambda w: [w.network.slug], coordinators_only(200)),
    ("network_announcement_detail", "get", lambda w: [w.network.slug, w.announcement.pk], coordinators_only(200)),
    ("announcement_optout", "get", lambda w: [w.optout], dict.fromkeys(ROLES, 200)),
    ("entry_verify", "get", lambda w: [w.verify], dict.fromkeys(ROLES, 200)),
]
SPACE_ROUTES = {"network_space", "network_team", "network_export", "network_import", "network_import_run"}
SPACE_ROUTES |= {"network_import_status", "network_announcements", "network_announcement_detail"}
SPACE_ROUTES |= {"announcement_optout", "entry_verify"}


class World:
    def __init__(self):
        gironde = Department.objects.get(code="33")
        self.network = NetworkFactory(slug="amap-gironde", departments=[gironde])
        other = NetworkFactory(slug="amap-landes", departments=[Department.objects.get(code="40")])
        self.users = {role: UserFactory(email=f"{role}@example.org") for role in ROLES if role != "anonymous"}
        self.users["anonymous"] = None
        self.users["staff"].is_staff = True
        self.users["staff"].save()
        self.network.admins.add(self.users["coordinator"])
        other.admins.add(self.users["other_coordinator"])
        amap = AmapFactory()
        AmapManager.objects.create(amap=amap, user=self.users["amap_admin"])
        AmapManager.objects.create(amap=amap, user=self.users["member"], role=AmapManager.Role.REFERENT)
        FarmFactory().managers.add(self.users["farmer"])
        self.run = ImportRun.objects.create(
            network=self.network, kind="amap", source="s", filename="a.csv", content=b"x"
        )
        self.announcement = Announcement.objects.create(
            network=self.network, subject="s", body="b", audiences=["admins"]
        )
        self.optout = optout_token(user_id=self.users["member"].pk, network_id=self.network.pk)
        self.verify = verify_token(amap)


def test_every_space_route_is_in_the_matrix():
    names = {pattern.name for pattern in urls.urlpatterns}
    assert names >= SPACE_ROUTES
    assert {name for name, *_ in ROUTES} == SPACE_ROUTES
    network_routes = {n for n in names if n.startswith("network_") and n != "network_detail"}
    # The moderation queue (built beside this space) keeps its own matrix.
    assert network_routes - {"network_moderation"} <= SPACE_ROUTES


def test_roles_get_what_the_matrix_says():
    world = World()
    failures = []
    for name, method, args, expected in ROUTES:
        url = reverse(f"directory:{name}", args=args(world))
        for role in ROLES:
            client = Client()
            if world.users[role] is not None:
                client.force_login(world.users[role])
            data = {"email": "nobody@example.org"} if method == "post" else None
            response = getattr(client, method)(url, data) if data else getattr(client, method)(url)
            want = expected[role]
            if want == LOGIN:
                ok = response.status_code == 302 and "/comptes/" in response.url and "connexion" in response.url
            else:
                ok = response.status_code == want
            if not ok:
                failures.append(f"{method.upper()} {name} as {role}: {response.status_code}, expected {want}")
    assert not failures, "\n".join(failures)
