"""Retention with time travel: 5 years for the member, 10 for the farm, 3 years of inactivity,
legal holds. The season of the contracts under test ends on Tuesday 28 September 2027."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.auth import authenticate
from django.core.management import CommandError, call_command

from accounts.models import User
from contracts.evidence import evidence_verify
from contracts.models import (
    Absence,
    Contract,
    ContractDocument,
    ContractProduct,
    Delivery,
    EvidenceEvent,
    Signature,
    SignatureChallenge,
    Subscription,
    SubscriptionItem,
)
from contracts.retention import RUN_EVENT_KIND, retention_apply, retention_plan
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
SIGNED_ON = dt.datetime(2027, 3, 15, 10, 0, tzinfo=PARIS)  # before the season
AT_4Y11M = dt.datetime(2032, 8, 28, 12, 0, tzinfo=PARIS)  # 4 years 11 months after the season ended
AT_5Y1D = dt.datetime(2032, 9, 29, 12, 0, tzinfo=PARIS)  # 5 years and a day
AT_10Y1D = dt.datetime(2037, 9, 29, 12, 0, tzinfo=PARIS)  # 10 years and a day


@pytest.fixture
def signed():
    with time_machine.travel(SIGNED_ON, tick=False):
        contract = contract_with_deliveries()
        return signed_subscription(contract)


def _run(when, *, active=(), commit=True):
    """Apply retention at `when`; the people in `active` logged in that very day."""
    with time_machine.travel(when, tick=False):
        User.objects.filter(pk__in=[user.pk for user in active]).update(last_login=when)
        return retention_apply(commit=commit)


def _names_in_evidence(name: str) -> int:
    return sum(name in str(event.payload) for event in EvidenceEvent.objects.all())


def test_nothing_happens_before_the_members_five_years(signed):
    member = signed.member
    plan = _run(AT_4Y11M, active=[member])

    assert plan.counts() == {
        "detach": 0,
        "purge_subscriptions": 0,
        "purge_unsigned": 0,
        "purge_contracts": 0,
        "anonymise_users": 0,
        "held_subscriptions": 0,
        "held_contracts": 0,
        "redact_events": 0,
    }
    signed.refresh_from_db()
    assert signed.member == member
    assert signed.member_name == "Amélie Adhérente"
    assert signed.signatures.get(role="member").signer == member


def test_after_five_years_the_member_leaves_the_rows_and_the_pdf_stays_intact(signed):
    member, farmer = signed.member, signed.contract.farm.managers.get()
    plan = _run(AT_5Y1D, active=[member])

    assert plan.detach == [signed.pk]
    assert plan.committed
    signed.refresh_from_db()
    label = f"Adhérent·e n°{signed.pk}"
    assert signed.member is None
    assert signed.member_name == label
    assert signed.member_anonymised_at == AT_5Y1D
    member_signature = signed.signatures.get(role=Signature.Role.MEMBER)
    assert (member_signature.signer, member_signature.signer_name) == (None, label)
    assert (member_signature.ip_address, member_signature.user_agent) == (None, "")
    # The farm's side and its legal copy are untouched.
    farmer_signature = signed.signatures.get(role=Signature.Role.FARMER)
    assert (farmer_signature.signer, farmer_signature.signer_name) == (farmer, "Paul Paysan")
    assert bytes(signed.document.pdf) == PDF
    assert signed.items.count() == 26
    absence = Absence.objects.get(subscription=signed)
    assert (absence.substitute_name, absence.note) == ("", "")
    assert not SignatureChallenge.objects.filter(subscription=signed, role="member").exists()
    assert SignatureChallenge.objects.filter(subscription=signed, role="farmer").exists()
    # The evidence trail is the farm's proof file until the 10 years: kept as it is.
    assert _names_in_evidence("Amélie Adhérente") == 1
    # The member's account itself is not touched: they still log in.
    member.refresh_from_db()
    assert member.is_active and member.email.endswith("@example.org")
    # Nothing is done twice.
    assert _run(AT_5Y1D, active=[member]).detach == []


def test_the_run_is_recorded_without_personal_data(signed):
    _run(AT_5Y1D, active=[signed.member])

    event = EvidenceEvent.objects.get(kind=RUN_EVENT_KIND)
    assert event.payload["reference_date"] == "2032-09-29"
    assert event.payload["counts"]["detach"] == 1
    assert "Amélie" not in str(event.payload) and "@" not in str(event.payload)
    assert evidence_verify().ok


def test_unsigned_subscriptions_go_after_five_years(signed):
    with time_machine.travel(SIGNED_ON, tick=False):
        waiting = pending_subscription(signed.contract, status=Subscription.Status.WAITING)
        pending = pending_subscription(signed.contract)
    waiting_name = waiting.member_name

    assert set(_run(AT_4Y11M, active=[signed.member, waiting.member, pending.member]).purge_unsigned) == set()
    plan = _run(AT_5Y1D, active=[signed.member, waiting.member, pending.member])

    assert sorted(plan.purge_unsigned) == sorted([waiting.pk, pending.pk])
    assert not Subscription.objects.filter(pk__in=[waiting.pk, pending.pk]).exists()
    assert not SubscriptionItem.objects.filter(subscription_id__in=[waiting.pk, pending.pk]).exists()
    assert Subscription.objects.filter(pk=signed.pk).exists()
    assert plan.redact_events == 2
    assert _names_in_evidence(waiting_name) == 0
    assert evidence_verify().ok


def test_after_ten_years_everything_about_the_contract_is_purged(signed):
    contract = signed.contract
    # The member stays a user of the platform all along; only the contract ages.
    _run(AT_5Y1D, active=[signed.member])
    plan = _run(AT_10Y1D, active=[signed.member])

    assert plan.purge_subscriptions == [signed.pk]
    assert plan.purge_contracts == [contract.pk]
    assert not Subscription.objects.filter(pk=signed.pk).exists()
    for model in (SubscriptionItem, Absence, Signature, SignatureChallenge, ContractDocument):
        assert not model.objects.filter(subscription_id=signed.pk).exists(), model.__name__
    assert not Contract.objects.filter(pk=contract.pk).exists()
    assert not Delivery.objects.filter(contract_id=contract.pk).exists()
    assert not ContractProduct.objects.filter(contract_id=contract.pk).exists()
    # The trail speaks of the purged rows no more, and still verifies.
    about = EvidenceEvent.objects.filter(subscription_id=signed.pk)
    assert about.count() == 2 and all(event.redacted_at is not None for event in about)
    assert _names_in_evidence("Amélie Adhérente") == 0
    assert _names_in_evidence("Paul Paysan") == 0
    report = evidence_verify()
    assert report.ok, report.reason


def test_a_contract_with_no_subscription_left_goes_only_after_ten_years():
    with time_machine.travel(SIGNED_ON, tick=False):
        empty = contract_with_deliveries()
    assert _run(AT_5Y1D).purge_contracts == []
    assert _run(AT_10Y1D).purge_contracts == [empty.pk]
    assert not Contract.objects.filter(pk=empty.pk).exists()


def test_a_legal_hold_on_the_subscription_stops_detaching_and_purging(signed):
    with time_machine.travel(SIGNED_ON, tick=False):
        other = signed_subscription(signed.contract)
    Subscription.objects.filter(pk=signed.pk).update(legal_hold=True)

    at_five = _run(AT_5Y1D, active=[signed.member, other.member])
    assert at_five.detach == [other.pk]
    assert at_five.held_subscriptions == [signed.pk]
    signed.refresh_from_db()
    assert signed.member is not None and signed.member_name == "Amélie Adhérente"

    at_ten = _run(AT_10Y1D, active=[signed.member])
    assert at_ten.purge_subscriptions == [other.pk]
    assert at_ten.purge_contracts == []  # the held subscription still needs it
    assert Subscription.objects.filter(pk=signed.pk, member=signed.member).exists()
    assert bytes(ContractDocument.objects.get(subscription=signed).pdf) == PDF
    assert Contract.objects.filter(pk=signed.contract_id).exists()
    assert evidence_verify().ok


def test_a_legal_hold_on_the_contract_covers_all_its_subscriptions(signed):
    with time_machine.travel(SIGNED_ON, tick=False):
        other = signed_subscription(signed.contract)
    Contract.objects.filter(pk=signed.contract_id).update(legal_hold=True)

    plan = _run(AT_10Y1D, active=[signed.member, other.member])

    assert plan.purge_subscriptions == [] and plan.detach == [] and plan.purge_contracts == []
    assert sorted(plan.held_subscriptions) == sorted([signed.pk, other.pk])
    assert plan.held_contracts == [signed.contract_id]
    assert Subscription.objects.filter(pk__in=[signed.pk, other.pk], member__isnull=False).count() == 2


def test_a_hold_on_an_old_version_keeps_the_amendment_too(signed):
    with time_machine.travel(SIGNED_ON, tick=False):
        Subscription.objects.filter(pk=signed.pk).update(status=Subscription.Status.SUPERSEDED, legal_hold=True)
        amendment = signed_subscription(signed.contract, signed.member, previous=signed, version=2)

    plan = _run(AT_10Y1D, active=[signed.member])

    assert sorted(plan.held_subscriptions) == sorted([signed.pk, amendment.pk])
    assert Subscription.objects.filter(pk=amendment.pk, member=signed.member).exists()


def test_versions_of_a_subscription_are_purged_together(signed):
    with time_machine.travel(SIGNED_ON, tick=False):
        Subscription.objects.filter(pk=signed.pk).update(status=Subscription.Status.SUPERSEDED)
        amendment = signed_subscription(signed.contract, signed.member, previous=signed, version=2)

    plan = _run(AT_10Y1D, active=[signed.member])

    assert sorted(plan.purge_subscriptions) == sorted([signed.pk, amendment.pk])
    assert not Subscription.objects.filter(pk__in=[signed.pk, amendment.pk]).exists()
    assert not Contract.objects.filter(pk=signed.contract_id).exists()
    assert evidence_verify().ok


def test_a_dry_run_changes_nothing_and_says_what_would_happen(signed):
    events_before = EvidenceEvent.objects.count()
    plan = _run(AT_10Y1D, commit=False)

    assert not plan.committed
    assert plan.purge_subscriptions == [signed.pk] and plan.purge_contracts == [signed.contract_id]
    assert plan.redact_events == 2  # the two signature events
    assert Subscription.objects.filter(pk=signed.pk, member_name="Amélie Adhérente").exists()
    assert EvidenceEvent.objects.count() == events_before
    assert User.objects.get(pk=signed.member_id).is_active


def test_plan_and_rehearsal_agree(signed):
    with time_machine.travel(SIGNED_ON, tick=False):
        pending_subscription(signed.contract)
    plan = retention_plan(now=AT_10Y1D)
    rehearsal = retention_apply(now=AT_10Y1D, commit=False)
    assert plan.counts() == rehearsal.counts()


# --------------------------------------------------------------------------------------------
# Three years of inactivity


@pytest.fixture
def sleeper(signed):
    """The member of `signed`, who joined before the season and never came back, with an alert."""
    member = signed.member
    with time_machine.travel(SIGNED_ON, tick=False):
        User.objects.filter(pk=member.pk).update(last_login=SIGNED_ON)
        SavedSearch.objects.create(user=member, target="amaps", place="Libourne", location=LIBOURNE, radius_km=15)
    member.refresh_from_db()
    return member


def test_an_account_is_kept_until_three_years_after_its_last_season(sleeper):
    plan = _run(dt.datetime(2030, 9, 28, 12, 0, tzinfo=PARIS))  # the season ended 3 years ago today
    assert sleeper.pk not in plan.anonymise_users
    sleeper.refresh_from_db()
    assert sleeper.is_active and sleeper.display_name


def test_an_account_inactive_for_three_years_is_anonymised(sleeper, signed):
    when = dt.datetime(2030, 9, 30, 12, 0, tzinfo=PARIS)
    plan = _run(when)

    assert plan.anonymise_users == [sleeper.pk]
    sleeper.refresh_from_db()
    assert sleeper.email == f"anonyme-{sleeper.pk}@invalid.example"
    assert (sleeper.display_name, sleeper.first_name, sleeper.last_name) == ("", "", "")
    assert not sleeper.is_active and not sleeper.has_usable_password()
    assert authenticate(email=f"personne{sleeper.pk}@example.org", password="motdepasse-test") is None
    assert not SavedSearch.objects.filter(user=sleeper).exists()
    # Their signed contract stays for the farm, detached from the anonymous account at once.
    assert plan.detach == [signed.pk]
    signed.refresh_from_db()
    assert signed.member is None and signed.member_name == f"Adhérent·e n°{signed.pk}"
    assert bytes(signed.document.pdf) == PDF
    # Already anonymous accounts are left alone by later runs.
    assert _run(when).anonymise_users == []


def test_people_who_log_in_or_hold_a_role_are_never_anonymised(sleeper, signed):
    when = dt.datetime(2031, 1, 1, 12, 0, tzinfo=PARIS)
    with time_machine.travel(SIGNED_ON, tick=False):
        logged_in = UserFactory()
        amap_admin = UserFactory()
        AmapManager.objects.create(amap=signed.contract.amap, user=amap_admin, role=AmapManager.Role.ADMIN)
        staff = UserFactory(is_staff=True)
        held = signed_subscription(contract_with_deliveries(legal_hold=True))
    farmer = signed.contract.farm.managers.get()
    referent = signed.contract.referent

    plan = _run(when, active=[logged_in])

    assert plan.anonymise_users == [sleeper.pk]
    for person in (logged_in, amap_admin, staff, farmer, referent, held.member):
        person.refresh_from_db()
        assert person.is_active, person


def test_a_signup_without_any_login_counts_from_the_day_of_joining():
    with time_machine.travel(SIGNED_ON, tick=False):
        newcomer = UserFactory()
    assert newcomer.last_login is None
    assert newcomer.pk not in _run(dt.datetime(2030, 3, 14, 12, 0, tzinfo=PARIS)).anonymise_users
    assert _run(dt.datetime(2030, 3, 16, 12, 0, tzinfo=PARIS)).anonymise_users == [newcomer.pk]


# --------------------------------------------------------------------------------------------
# manage.py apply_retention


def test_command_is_a_dry_run_by_default(signed, capsys):
    with time_machine.travel(AT_10Y1D, tick=False):
        call_command("apply_retention")
    out = capsys.readouterr().out
    assert "Souscriptions signées supprimées (plus de 10 ans) : 1" in out
    assert "Contrats supprimés avec leurs distributions et produits : 1" in out
    assert "Simulation : rien n'a été modifié" in out
    assert Subscription.objects.filter(pk=signed.pk).exists()


def test_command_commit_applies(signed, capsys):
    with time_machine.travel(AT_10Y1D, tick=False):
        call_command("apply_retention", "--commit")
    assert "Appliqué." in capsys.readouterr().out
    assert not Subscription.objects.filter(pk=signed.pk).exists()


def test_command_audits_at_a_past_date(signed, capsys):
    with time_machine.travel(AT_10Y1D, tick=False):
        call_command("apply_retention", "--now", "2032-09-29", "--commit", verbosity=2)
    out = capsys.readouterr().out
    assert "Date de référence : 29/09/2032" in out
    assert f"detach : {signed.pk}" in out
    assert Subscription.objects.filter(pk=signed.pk, member__isnull=True).exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--now", "29/09/2032"], "Date de référence invalide"),
        (["--now", "2040-01-01", "--commit"], "dans le futur"),
    ],
)
def test_command_rejects_bad_dates(args, message):
    with time_machine.travel(AT_10Y1D, tick=False), pytest.raises(CommandError, match=message):
        call_command("apply_retention", *args)


def test_command_simulates_a_future_date(signed, capsys):
    call_command("apply_retention", "--now", "2040-01-01")
    assert "Souscriptions signées supprimées (plus de 10 ans) : 1" in capsys.readouterr().out
    assert Subscription.objects.filter(pk=signed.pk).exists()
