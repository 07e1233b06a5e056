"""A member's data: the JSON and CSV copies, and erasure (keeping what the law requires)."""

import csv
import datetime as dt
import io
import json
import zipfile
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.exceptions import ValidationError

from accounts.models import User
from contracts.evidence import evidence_verify
from contracts.models import Absence, EvidenceEvent, Subscription, SubscriptionItem
from contracts.privacy import ERASURE_EVENT_KIND, member_data_export, member_data_export_csv, member_erasure
from contracts.retention import retention_apply
from contracts.selectors import subscription_totals
from directory.models import AmapManager
from matching.models import SavedSearch
from tests.contracts.signed_contracts import PDF, contract_with_deliveries, pending_subscription, signed_subscription
from tests.factories import LIBOURNE, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # A real hash costs about a second per user on these machines; what is tested here is not its strength.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


PARIS = ZoneInfo("Europe/Paris")
BEFORE_SEASON = dt.datetime(2027, 3, 15, 10, 0, tzinfo=PARIS)
MID_SEASON = dt.datetime(2027, 6, 15, 10, 0, tzinfo=PARIS)  # the 2027 season runs 6 April → 28 September


@pytest.fixture
def member():
    with time_machine.travel(BEFORE_SEASON, tick=False):
        return UserFactory(display_name="Amélie Adhérente", first_name="Amélie", last_name="Adhérente")


@pytest.fixture
def history(member):
    """A signed 2026 contract (season over), a signed 2027 one, and an alert."""
    with time_machine.travel(dt.datetime(2026, 3, 1, 10, 0, tzinfo=PARIS), tick=False):
        last_year = signed_subscription(
            contract_with_deliveries(season_start=dt.date(2026, 4, 7), season_end=dt.date(2026, 9, 29)), member
        )
    with time_machine.travel(BEFORE_SEASON, tick=False):
        this_year = signed_subscription(contract_with_deliveries(), member, instalments=3)
        SavedSearch.objects.create(user=member, target="amaps", place="Libourne", location=LIBOURNE, radius_km=15)
    return {"last_year": last_year, "this_year": this_year}


# --------------------------------------------------------------------------------------------
# Export


def test_export_holds_the_account_every_subscription_and_is_plain_json(member, history):
    someone_else = signed_subscription(history["this_year"].contract)

    data = json.loads(json.dumps(member_data_export(user=member)))  # no custom encoder needed

    assert data["account"]["email"] == member.email
    assert data["account"]["display_name"] == "Amélie Adhérente"
    assert [s["id"] for s in data["subscriptions"]] == [history["last_year"].pk, history["this_year"].pk]
    assert someone_else.pk not in [s["id"] for s in data["subscriptions"]]
    this_year = data["subscriptions"][1]
    price = str(history["this_year"].contract.products.get().unit_price)
    assert this_year["contract"]["season_end"] == "2027-09-28"
    assert this_year["status"] == "signed"
    assert len(this_year["items"]) == 26
    assert this_year["items"][0] == {
        "date": "2027-04-06",
        "scheduled_date": "2027-04-06",
        "delivery_status": "planned",
        "product": "Petit panier",
        "quantity": 1,
        "unit_price": price,
        "amount": price,
    }
    # The figures are the selector's, to the cent.
    totals = subscription_totals(subscription=history["this_year"])
    assert this_year["totals"]["total"] == str(totals.total)
    assert sum(Decimal(i["amount"]) for i in this_year["items"]) == totals.total
    assert [i["amount"] for i in this_year["totals"]["instalments"]] == [str(a) for _d, a in totals.instalments]
    assert len(this_year["totals"]["instalments"]) == 3
    # Their own signature with its IP address; the farmer's without.
    signatures = {s["role"]: s for s in this_year["signatures"]}
    assert signatures["member"]["ip_address"] == "203.0.113.7"
    assert signatures["farmer"]["signer_name"] == "Paul Paysan"
    assert "ip_address" not in signatures["farmer"]
    assert this_year["document"]["sha256"] == signatures["member"]["document_sha256"]
    assert this_year["absences"][0]["substitute_name"] == "Bruno Voisin"
    assert [(a["target"], a["place"], a["radius_km"], a["products"]) for a in data["alerts"]] == [
        ("amaps", "Libourne", 15, [])
    ]


def test_csv_export_is_a_zip_of_tables_with_the_same_figures(member, history):
    archive = zipfile.ZipFile(io.BytesIO(member_data_export_csv(user=member)))

    assert sorted(archive.namelist()) == sorted(
        [
            "compte.csv",
            "souscriptions.csv",
            "quantites.csv",
            "echeancier.csv",
            "signatures.csv",
            "absences.csv",
            "alertes.csv",
            "adhesions_amap.csv",
            "reponses_evenements.csv",
            "permanences.csv",
            "evenements_crees.csv",
        ]
    )

    def rows(name):
        return list(csv.DictReader(io.StringIO(archive.read(name).decode("utf-8-sig"))))

    assert rows("compte.csv")[0]["display_name"] == "Amélie Adhérente"
    quantities = rows("quantites.csv")
    assert len(quantities) == 26 + 26  # one line per delivery of each season
    subscriptions = {row["souscription"]: row for row in rows("souscriptions.csv")}
    for subscription in history.values():
        total = sum(Decimal(q["montant_eur"]) for q in quantities if q["souscription"] == str(subscription.pk))
        assert Decimal(subscriptions[str(subscription.pk)]["total_eur"]) == total
    assert {row["adresse_ip"] for row in rows("signatures.csv") if row["qualite"] == "farmer"} == {""}
    assert rows("absences.csv")[0]["remplacant"] == "Bruno Voisin"


def test_an_account_without_contracts_exports_empty_lists():
    person = UserFactory()
    data = member_data_export(user=person)
    assert data["subscriptions"] == [] and data["alerts"] == []
    assert zipfile.ZipFile(io.BytesIO(member_data_export_csv(user=person))).read("quantites.csv").count(b"\r\n") == 1


# --------------------------------------------------------------------------------------------
# Erasure


@pytest.fixture
def full_contract():
    """A contract with a single share (the test gives it to the member and puts someone on the waiting list)."""
    with time_machine.travel(BEFORE_SEASON, tick=False):
        return contract_with_deliveries(capacity_shares=1)


def test_erasure_deletes_what_binds_nobody_and_keeps_signed_contracts(member, history, full_contract):
    with time_machine.travel(BEFORE_SEASON, tick=False):
        pending = pending_subscription(full_contract, member)
        waiting_elsewhere = pending_subscription(contract_with_deliveries(), member, status=Subscription.Status.WAITING)
        next_in_line = pending_subscription(full_contract, status=Subscription.Status.WAITING)
    last_year, this_year = history["last_year"], history["this_year"]

    with time_machine.travel(MID_SEASON, tick=False):
        report = member_erasure(user=member)

    assert report.committed and report.account_anonymised
    # Never signed: gone, with their quantities; the place goes to the waiting list.
    assert not Subscription.objects.filter(pk__in=[pending.pk, waiting_elsewhere.pk]).exists()
    assert not SubscriptionItem.objects.filter(subscription_id__in=[pending.pk, waiting_elsewhere.pk]).exists()
    next_in_line.refresh_from_db()
    assert next_in_line.status == Subscription.Status.PENDING
    # Signed, season over: kept for the farm, without the member.
    last_year.refresh_from_db()
    assert last_year.member is None and last_year.member_name == f"Adhérent·e n°{last_year.pk}"
    assert bytes(last_year.document.pdf) == PDF
    assert last_year.signatures.get(role="member").signer is None
    # Signed, season running: kept with the name the distribution sheets need.
    this_year.refresh_from_db()
    assert this_year.member_id == member.pk and this_year.member_name == "Amélie Adhérente"
    assert Absence.objects.filter(subscription=this_year, substitute_name="Bruno Voisin").exists()
    # The account and the alert.
    member.refresh_from_db()
    assert member.email == f"anonyme-{member.pk}@invalid.example"
    assert (member.display_name, member.first_name, member.last_name) == ("", "", "")
    assert not member.is_active and not member.has_usable_password()
    assert not SavedSearch.objects.filter(user=member).exists()
    # What the page shows, in French, with the reasons.
    kept = {line.what: line.reason for line in report.kept}
    assert any("dix ans" in reason and "29/09/2036" in reason for reason in kept.values())
    assert any("en cours" in reason and "28/09/2027" in reason for reason in kept.values())
    assert sum("jamais signée" in line.reason for line in report.deleted) == 2
    assert any("alerte" in line.what for line in report.deleted)
    # The trail: the deleted subscriptions' events are redacted, the erasure is recorded, all verifies.
    assert all(
        event.redacted_at is not None
        for event in EvidenceEvent.objects.filter(subscription_id__in=[pending.pk, waiting_elsewhere.pk])
    )
    assert EvidenceEvent.objects.get(kind=ERASURE_EVENT_KIND).payload == {
        "deleted_subscriptions": 2,
        "detached_subscriptions": 1,
    }
    assert evidence_verify().ok


def test_the_running_contract_loses_the_name_once_its_season_is_over(member, history):
    with time_machine.travel(MID_SEASON, tick=False):
        member_erasure(user=member)
    this_year = history["this_year"]

    with time_machine.travel(dt.datetime(2027, 9, 29, 12, 0, tzinfo=PARIS), tick=False):
        plan = retention_apply(commit=True)

    assert this_year.pk in plan.detach
    this_year.refresh_from_db()
    assert this_year.member is None and this_year.member_name == f"Adhérent·e n°{this_year.pk}"
    assert Absence.objects.get(subscription=this_year).substitute_name == ""


def test_preview_shows_the_report_and_changes_nothing(member, history):
    email = member.email
    with time_machine.travel(MID_SEASON, tick=False):
        preview = member_erasure(user=member, commit=False)

    assert not preview.committed
    assert len(preview.kept) == 2
    assert member.email == email  # the caller's object is left alone
    member.refresh_from_db()
    assert member.email == email and member.is_active
    assert SavedSearch.objects.filter(user=member).exists()
    assert Subscription.objects.filter(member=member).count() == 2
    assert not EvidenceEvent.objects.filter(kind=ERASURE_EVENT_KIND).exists()
    with time_machine.travel(MID_SEASON, tick=False):
        report = member_erasure(user=member)
    assert [line.what for line in report.kept] == [line.what for line in preview.kept]


def test_a_legal_hold_keeps_the_contract_as_it_is(member, history):
    last_year = history["last_year"]
    Subscription.objects.filter(pk=last_year.pk).update(legal_hold=True)

    with time_machine.travel(MID_SEASON, tick=False):
        report = member_erasure(user=member)

    last_year.refresh_from_db()
    assert last_year.member_id == member.pk and last_year.member_name == "Amélie Adhérente"
    assert any("litige" in line.reason for line in report.kept)


def test_people_running_an_amap_or_a_farm_hand_their_role_over_first(member, history):
    amap = history["this_year"].contract.amap
    AmapManager.objects.create(amap=amap, user=member, role=AmapManager.Role.ADMIN)
    history["this_year"].contract.farm.managers.add(member)

    with pytest.raises(ValidationError) as error:
        member_erasure(user=member)

    messages = error.value.message_dict["user"]
    assert f"Vous faites partie de l'équipe de l'AMAP « {amap.name} »." in messages
    assert f"Vous gérez la ferme « {history['this_year'].contract.farm.name} »." in messages
    assert User.objects.get(pk=member.pk).is_active


def test_an_anonymised_account_cannot_be_erased_twice(member):
    member_erasure(user=member)
    with pytest.raises(ValidationError, match="déjà été anonymisé"):
        member_erasure(user=member)
