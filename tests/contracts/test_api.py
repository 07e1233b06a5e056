"""/api/v1/contracts/: what each person sees, subscribing with errors that name the field,
summaries that add up, and no personal data that is not the reader's to see."""

import json

import pytest
from django.test import Client
from django.urls import reverse

from contracts.models import Contract, Subscription
from tests.factories import UserFactory

from .factories import ContractFactory, ContractProductFactory
from .factories import weekly_deliveries as lay_weekly_deliveries
from .roles import contract_world

pytestmark = pytest.mark.django_db


def logged(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def post_json(client, url, data):
    return client.post(url, json.dumps(data), content_type="application/json")


def test_contract_list_and_detail_show_what_the_user_may_see():
    world = contract_world()
    draft = ContractFactory(amap=world.amap, status=Contract.Status.DRAFT, title="Brouillon fromages")
    client = logged(world.users["unrelated"])
    listed = client.get(reverse("contract-list")).json()
    titles = {row["title"] for row in listed["results"]}
    assert titles == {"Légumes 2027", "Pain 2027"}  # open ones; not the draft
    assert client.get(reverse("contract-detail", args=[draft.pk])).status_code == 404

    detail = client.get(reverse("contract-detail", args=[world.contract.pk])).json()
    assert detail["amap"] == {"id": world.amap.pk, "name": "AMAP des Chartrons"}
    assert [p["name"] for p in detail["products"]] == [p.name for p in world.products]
    assert detail["referent"] == "Referent"
    assert "@" not in json.dumps(detail)

    mine = logged(draft.referent).get(reverse("contract-list"), {"status": "draft"}).json()
    assert [row["title"] for row in mine["results"]] == ["Brouillon fromages"]

    response = client.get(reverse("contract-list"), {"status": "bientot"})
    assert response.status_code == 400 and "status" in response.json()
    response = client.get(reverse("contract-list"), {"amap": "abc"})
    assert response.status_code == 400 and "amap" in response.json()


def test_deliveries_of_a_contract():
    world = contract_world()
    response = logged(world.users["member"]).get(reverse("contract-deliveries", args=[world.contract.pk]))
    rows = response.json()
    assert [row["date"] for row in rows] == [d.date.isoformat() for d in world.deliveries]
    assert {row["status"] for row in rows} == {"planned"}


def test_member_subscribes_through_the_api_and_bad_input_names_the_field():
    world = contract_world()
    newcomer = UserFactory(display_name="Nina Nouvelle")
    client = logged(newcomer)
    url = reverse("contract-subscription-list")
    small, eggs = world.products

    response = post_json(
        client, url, {"contract": world.contract.pk, "quantities": {str(small.pk): 1}, "pattern": "weekly"}
    )
    assert response.status_code == 400 and list(response.json()) == ["pattern"]
    response = post_json(client, url, {"contract": world.contract.pk, "quantities": {"999999": 1}})
    assert response.status_code == 400 and "Produit inconnu" in response.json()["quantities"][0]
    response = post_json(
        client, url, {"contract": world.contract.pk, "quantities": {str(small.pk): 1}, "instalments": 9}
    )
    assert response.status_code == 400 and list(response.json()) == ["instalments"]
    response = post_json(
        client, url, {"contract": world.contract.pk, "quantities": {str(small.pk): 1}, "payment_method": "cash"}
    )
    assert response.status_code == 400 and "payment_method" in response.json()
    response = post_json(client, url, {"contract": world.contract.pk})
    assert response.status_code == 400 and response.json() == {"quantities": ["Choisissez au moins un produit."]}
    draft = ContractFactory(status=Contract.Status.DRAFT)
    response = post_json(client, url, {"contract": draft.pk, "quantities": {str(small.pk): 1}})
    assert response.status_code == 400 and response.json() == {"contract": ["contrat inconnu"]}
    response = client.post(url, "{not json", content_type="application/json")
    assert response.status_code == 400
    assert not Subscription.objects.filter(member=newcomer).exists()

    response = post_json(
        client,
        url,
        {"contract": world.contract.pk, "quantities": {str(small.pk): 1, str(eggs.pk): 2}, "instalments": 3},
    )
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "pending" and body["member_name"] == "Nina Nouvelle"
    deliveries = len(world.deliveries)
    total = deliveries * (small.unit_price + 2 * eggs.unit_price)
    assert body["totals"]["total"] == f"{total:.2f}"
    assert sum(float(i["amount"]) for i in body["totals"]["instalments"]) == pytest.approx(float(total))
    assert len(body["items"]) == 2 * deliveries

    # Again: already subscribed.
    response = post_json(client, url, {"contract": world.contract.pk, "quantities": {str(small.pk): 1}})
    assert response.status_code == 400 and "contract" in response.json()


def test_a_full_contract_puts_api_subscribers_on_the_waiting_list():
    contract = ContractFactory(capacity_shares=1)
    product = ContractProductFactory(contract=contract)
    lay_weekly_deliveries(contract)
    url = reverse("contract-subscription-list")
    first = post_json(logged(UserFactory()), url, {"contract": contract.pk, "quantities": {str(product.pk): 1}})
    second = post_json(logged(UserFactory()), url, {"contract": contract.pk, "quantities": {str(product.pk): 1}})
    assert (first.json()["status"], second.json()["status"]) == ("pending", "waiting")


def test_subscriptions_members_see_their_own_managers_see_their_contracts():
    world = contract_world()
    member_rows = logged(world.users["member"]).get(reverse("contract-subscription-list")).json()["results"]
    assert [row["id"] for row in member_rows] == [world.subscription.pk]
    referent_rows = logged(world.users["referent"]).get(reverse("contract-subscription-list")).json()["results"]
    assert {row["id"] for row in referent_rows} == {world.subscription.pk, world.other_subscription.pk}
    other_rows = logged(world.users["other_referent"]).get(reverse("contract-subscription-list")).json()["results"]
    assert other_rows == []
    farmer_rows = (
        logged(world.users["farmer"])
        .get(reverse("contract-subscription-list"), {"contract": world.contract.pk, "status": "signed"})
        .json()["results"]
    )
    assert len(farmer_rows) == 2

    detail = logged(world.users["referent"]).get(reverse("contract-subscription-detail", args=[world.subscription.pk]))
    body = detail.json()
    assert body["member_name"] == str(world.users["member"])
    assert "ip_address" not in json.dumps(body) and "user_agent" not in json.dumps(body)
    assert "@" not in json.dumps(body)
    response = logged(world.users["other_member"]).get(
        reverse("contract-subscription-detail", args=[world.subscription.pk])
    )
    assert response.status_code == 404


def test_summary_json_adds_up_and_rejects_unknown_groupings():
    world = contract_world()
    client = logged(world.users["farmer"])
    url = reverse("contract-summary", args=[world.contract.pk])
    body = client.get(url, {"by": "product"}).json()
    deliveries = len(world.deliveries)
    small, eggs = world.products
    quantities = {row["label"]: row["quantity"] for row in body["rows"]}
    assert quantities == {small.name: deliveries, eggs.name: 2 * deliveries}
    total = deliveries * (small.unit_price + 2 * eggs.unit_price)
    assert body["totals"]["amount"] == f"{total:.2f}"
    by_date = client.get(url, {"by": "date", "start": world.deliveries[0].date.isoformat()}).json()
    assert len(by_date["rows"]) == deliveries
    assert sum(row["quantity"] for row in by_date["rows"]) == body["totals"]["quantity"]

    assert client.get(url, {"by": "semaine"}).json() == {"by": ["valeurs possibles : date, product, member, farmer"]}
    assert client.get(url, {"start": "2027-13-01"}).status_code == 400
    response = client.get(url, {"start": "2027-06-01", "end": "2027-05-01"})
    assert response.status_code == 400 and "end" in response.json()
    assert logged(world.users["member"]).get(url).status_code == 403


def test_schema_documents_the_contract_endpoints():
    schema = Client().get("/api/schema/", {"format": "json"}).json()
    for path in (
        "/api/v1/contracts/",
        "/api/v1/contracts/{id}/",
        "/api/v1/contracts/{id}/deliveries/",
        "/api/v1/contracts/{id}/summary/",
        "/api/v1/contracts/subscriptions/",
        "/api/v1/contracts/subscriptions/{id}/",
    ):
        assert path in schema["paths"], path
    assert "post" in schema["paths"]["/api/v1/contracts/subscriptions/"]
