"""Permission matrix: every role × every contract route, pages and API.

The rule (pages and API alike):
- not logged in → the login page (pages; except the public charter, PDF verification and the
  capability URL of a calendar feed) or 403 (API);
- an object you may not see → 404, so that its existence is not disclosed;
- an object you may see, but an action that is not yours → 403.
An allowed POST answers 302 (back to a page, with a message) or, for the API, 201/400.

The tables below are checked against `contracts/urls.py` and `contracts/api_urls.py`: a new
route without a row here fails `test_every_*_route_is_in_the_matrix`.
"""

import json
from dataclasses import dataclass, field

import pytest
from django.db import transaction
from django.test import Client
from django.urls import reverse

from contracts import api_urls, urls
from contracts.ics import ics_token
from contracts.models import Contract

from .roles import ROLES, contract_world

pytestmark = pytest.mark.django_db

LOGIN = "login"  # 302 to the login page


def expect(default, *, anonymous=LOGIN, **overrides) -> dict:
    """Expected status per role: `default` for every logged-in role unless overridden."""
    unknown = set(overrides) - set(ROLES)
    assert not unknown, unknown
    table = {role: default for role in ROLES}
    table["anonymous"] = anonymous
    table.update(overrides)
    return table


# Who may do what, by name.
EVERYONE = expect(200)
PUBLIC = expect(200, anonymous=200)
MANAGERS = {"referent": 200, "amap_admin": 200, "staff": 200}
TEAM = {**MANAGERS, "farmer": 200}  # subscribers, deliveries, sheets, summaries
SUBSCRIPTION_VIEWERS = {"member": 200, **TEAM}  # others get 404
AMAP_TEAM = {"referent": 200, "other_referent": 200, "amap_admin": 200, "staff": 200}


def _ok(roles: dict, code: int) -> dict:
    return {role: code for role in roles}


@dataclass
class Route:
    name: str
    args: str = ""  # which object: "contract", "delivery", "subscription", "absence", "amap", "farm", "token"
    extra: tuple = ()
    method: str = "get"
    query: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)
    expected: dict = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.method.upper()} {self.name}"


PAGE_ROUTES = [
    Route("contract_list", expected=EVERYONE),
    Route("contract_create", query={"amap": "amap"}, expected=expect(403, other_referent=200, **MANAGERS)),
    Route("charter", expected=PUBLIC),
    Route("verify", expected=PUBLIC),
    Route("my_deliveries", expected=EVERYONE),
    Route("countersign_list", expected=EVERYONE),  # each sees their own farms' list (empty if none)
    Route("ics_feed", args="token", expected=expect(200, anonymous=200)),
    Route("my_data", expected=EVERYONE),
    Route("my_data_export", extra=("json",), expected=EVERYONE),
    Route("my_data_erase", expected=EVERYONE),
    Route("contract_detail", args="contract", expected=EVERYONE),
    Route("contract_edit", args="contract", expected=expect(403, **MANAGERS)),
    Route("contract_publish", args="contract", method="post", expected=expect(403, **_ok(MANAGERS, 302))),
    Route("contract_close", args="contract", method="post", expected=expect(403, **_ok(MANAGERS, 302))),
    Route("contract_subscribers", args="contract", expected=expect(403, **TEAM)),
    Route("contract_deliveries", args="contract", expected=expect(403, **TEAM)),
    Route("contract_summary", args="contract", expected=expect(403, **TEAM)),
    Route("contract_summary_export", args="contract", extra=("csv",), expected=expect(403, **TEAM)),
    Route("subscription_create", args="contract", expected=expect(200, member=302, other_member=302)),
    Route("delivery_sheet", args="delivery", expected=expect(403, **TEAM)),
    Route("delivery_sheet_pdf", args="delivery", expected=expect(403, **TEAM)),
    Route("delivery_preparation", args="delivery", expected=expect(403, **TEAM)),
    Route("delivery_preparation_pdf", args="delivery", expected=expect(403, **TEAM)),
    Route(
        "delivery_mark",
        args="delivery",
        method="post",
        data={"status": "cancelled", "note": "grêle"},
        expected=expect(403, **_ok(TEAM, 302)),
    ),
    Route("subscription_detail", args="subscription", expected=expect(404, **SUBSCRIPTION_VIEWERS)),
    Route(
        "subscription_edit",
        args="subscription",
        expected=expect(404, member=302, **_ok(TEAM, 403)),  # the member only; signed → back to it
    ),
    Route(
        "subscription_cancel",
        args="subscription",
        method="post",
        expected=expect(404, member=302, farmer=403, **_ok(MANAGERS, 302)),
    ),
    Route(
        "subscription_amend",
        args="subscription",
        expected=expect(404, member=200, farmer=403, **MANAGERS),  # member or managers; signed → the form
    ),
    Route("subscription_sign", args="subscription", expected=expect(404, member=302, **_ok(TEAM, 403))),
    Route(
        "subscription_countersign",
        args="subscription",
        expected=expect(404, member=403, **_ok(MANAGERS, 403), farmer=302),
    ),
    Route("subscription_pdf", args="subscription", expected=expect(404, **SUBSCRIPTION_VIEWERS)),
    Route("subscription_absences", args="subscription", expected=expect(404, member=200, **_ok(TEAM, 403))),
    Route("absence_cancel", args="absence", method="post", expected=expect(404, member=302, **_ok(TEAM, 403))),
    # The AMAP's team (admins and référents) reads its summaries and adds its academic calendars.
    Route("academic_calendars", args="amap", expected=expect(403, **AMAP_TEAM)),
    Route("amap_summary", args="amap", expected=expect(403, **AMAP_TEAM)),
    Route("amap_summary_export", args="amap", extra=("pdf",), expected=expect(403, **AMAP_TEAM)),
    # A prepared file exists only for its owner: a token of nobody's is a 404 for everyone.
    Route("prepared_file", extra=("00000000-0000-4000-8000-000000000000",), expected=expect(404)),
    Route("prepared_file_download", extra=("00000000-0000-4000-8000-000000000000",), expected=expect(404)),
    Route("farm_summary", args="farm", expected=expect(403, farmer=200, staff=200)),
    Route("farm_summary_export", args="farm", extra=("csv",), expected=expect(403, farmer=200, staff=200)),
]

API_ROUTES = [
    Route("contract-list", expected=expect(200, anonymous=403)),
    Route("contract-detail", args="contract", expected=expect(200, anonymous=403)),
    Route("contract-deliveries", args="contract", expected=expect(200, anonymous=403)),
    Route("contract-summary", args="contract", query={"by": "member"}, expected=expect(403, anonymous=403, **TEAM)),
    Route("contract-subscription-list", expected=expect(200, anonymous=403)),
    Route(
        "contract-subscription-list",
        method="post",
        data={"contract": "contract", "quantities": {"product": 1}},
        # Anyone logged in may subscribe to an open contract; the two subscribers already have.
        expected=expect(201, anonymous=403, member=400, other_member=400),
    ),
    Route(
        "contract-subscription-detail",
        args="subscription",
        expected=expect(404, anonymous=403, **SUBSCRIPTION_VIEWERS),
    ),
]


def _object_args(route: Route, world) -> list:
    objects = {
        "contract": world.contract.pk,
        "delivery": world.deliveries[0].pk,
        "subscription": world.subscription.pk,
        "absence": world.absence.pk,
        "amap": world.amap.pk,
        "farm": world.farm.pk,
        "token": ics_token(world.users["member"]),
    }
    return ([objects[route.args]] if route.args else []) + list(route.extra)


def _resolve(value, world):
    placeholders = {"amap": world.amap.pk, "contract": world.contract.pk, "product": world.products[0].pk}
    if isinstance(value, dict):
        # Keys name fields, except a product placeholder (quantities are keyed by product id).
        return {str(world.products[0].pk) if k == "product" else k: _resolve(v, world) for k, v in value.items()}
    return placeholders.get(value, value) if isinstance(value, str) else value


def _observed(route: Route, world, *, api: bool) -> dict:
    url = reverse(route.name if api else f"contracts:{route.name}", args=_object_args(route, world))
    login_url = reverse("accounts:login")
    seen = {}
    for role in ROLES:
        client = Client()
        if world.users[role] is not None:
            client.force_login(world.users[role])
        # Each role acts on the same state: its request is rolled back afterwards.
        with transaction.atomic():
            if route.method == "get":
                response = client.get(url, _resolve(route.query, world))
            elif api:
                response = client.post(url, json.dumps(_resolve(route.data, world)), content_type="application/json")
            else:
                response = client.post(url, _resolve(route.data, world))
            transaction.set_rollback(True)
        code = response.status_code
        if code == 302 and response.url.startswith(login_url):
            code = LOGIN
        seen[role] = code
    return seen


@pytest.mark.parametrize("route", PAGE_ROUTES, ids=str)
def test_page_route_answers_each_role_as_the_matrix_says(route):
    world = contract_world(with_document=route.name == "subscription_pdf")
    assert _observed(route, world, api=False) == route.expected


@pytest.mark.parametrize("route", API_ROUTES, ids=str)
def test_api_route_answers_each_role_as_the_matrix_says(route):
    world = contract_world()
    assert _observed(route, world, api=True) == route.expected


def test_every_page_route_is_in_the_matrix():
    assert {pattern.name for pattern in urls.urlpatterns} == {route.name for route in PAGE_ROUTES}


def test_every_api_route_is_in_the_matrix():
    served = {
        (pattern.name, method)
        for pattern in api_urls.urlpatterns
        for method in pattern.callback.actions
        if method != "head"  # HEAD answers as GET does
    }
    assert served == {(route.name, route.method) for route in API_ROUTES}


# A draft contract is seen by its managers and its farmer only: for everyone else, every route
# that names it (or one of its deliveries) answers 404, pages and API alike.
DRAFT_ROUTES = [route for route in PAGE_ROUTES if route.args in ("contract", "delivery")]


@pytest.mark.parametrize("route", DRAFT_ROUTES, ids=str)
def test_a_draft_contract_does_not_exist_for_people_outside_it(route):
    world = contract_world()
    Contract.objects.filter(pk=world.contract.pk).update(status=Contract.Status.DRAFT)
    for role in ("unrelated", "other_referent", "other_farmer"):
        client = Client()
        client.force_login(world.users[role])
        url = reverse(f"contracts:{route.name}", args=_object_args(route, world))
        response = client.post(url, route.data) if route.method == "post" else client.get(url)
        assert response.status_code == 404, (role, response.status_code)
    for role in ("referent", "amap_admin", "farmer", "staff"):
        client = Client()
        client.force_login(world.users[role])
        url = reverse(f"contracts:{route.name}", args=_object_args(route, world))
        with transaction.atomic():
            response = client.post(url, route.data) if route.method == "post" else client.get(url)
            transaction.set_rollback(True)
        assert response.status_code != 404, (role, response.status_code)


def test_api_hides_draft_contracts_from_people_outside_them():
    world = contract_world()
    Contract.objects.filter(pk=world.contract.pk).update(status=Contract.Status.DRAFT)
    client = Client()
    client.force_login(world.users["unrelated"])
    assert client.get(reverse("contract-detail", args=[world.contract.pk])).status_code == 404
    assert client.get(reverse("contract-deliveries", args=[world.contract.pk])).status_code == 404
    listed = {row["id"] for row in client.get(reverse("contract-list")).json()["results"]}
    assert world.contract.pk not in listed and world.other_contract.pk in listed
    client.force_login(world.users["farmer"])
    assert client.get(reverse("contract-detail", args=[world.contract.pk])).status_code == 200
