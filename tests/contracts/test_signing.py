"""Signing a contract: charter, e-mailed one-time code, both parties, evidence, immutability."""

import datetime as dt
import re
from decimal import Decimal

import pytest
import time_machine
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from contracts.documents import contract_pdf, document_freeze, document_verify
from contracts.evidence import evidence_verify
from contracts.models import ContractDocument, EvidenceEvent, Signature, SignatureChallenge, Subscription
from contracts.services import subscription_amend, subscription_set_quantities
from contracts.signing import (
    CODE_TTL,
    CONSENT_VERSION,
    MAX_ATTEMPTS,
    charter_current,
    signature_confirm,
    signature_request_code,
)
from tests.contracts.factories import (
    ContractFactory,
    ContractProductFactory,
    SubscriptionFactory,
    subscribe_same_every_time,
    weekly_deliveries,
)
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

MEMBER, FARMER = Signature.Role.MEMBER, Signature.Role.FARMER
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"


@pytest.fixture
def farmer():
    return UserFactory(display_name="Jeanne Paysanne")


@pytest.fixture
def subscription(farmer):
    contract = ContractFactory(title="Légumes saison 2027")
    contract.farm.managers.add(farmer)
    basket = ContractProductFactory(contract=contract, name="Petit panier", unit_price=Decimal("12.50"))
    weekly_deliveries(contract)
    member = UserFactory(display_name="Éloïse Martin")
    sub = SubscriptionFactory(
        contract=contract, member=member, member_name="Éloïse Martin", status=Subscription.Status.PENDING
    )
    subscribe_same_every_time(sub, {basket: 1})
    return sub


def _code_from_last_mail() -> str:
    return re.search(r"^\s+(\d{6})\s*$", mail.outbox[-1].body, re.MULTILINE).group(1)


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def _sign(user, subscription, role, ip="192.0.2.10"):
    signature_request_code(user=user, subscription=subscription, role=role, charter_accepted=True)
    return signature_confirm(
        user=user,
        subscription=subscription,
        role=role,
        code=_code_from_last_mail(),
        ip_address=ip,
        user_agent=BROWSER,
    )


def test_code_is_refused_without_charter_acceptance(subscription):
    with pytest.raises(ValidationError) as error:
        signature_request_code(user=subscription.member, subscription=subscription, role=MEMBER, charter_accepted=False)
    assert "charter" in error.value.message_dict
    assert "Charte des AMAP" in error.value.message_dict["charter"][0]
    assert mail.outbox == []
    assert not SignatureChallenge.objects.exists()


def test_code_mail_is_french_with_title_and_document_hash_and_only_a_hash_is_stored(subscription):
    challenge = signature_request_code(
        user=subscription.member, subscription=subscription, role=MEMBER, charter_accepted=True
    )
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [subscription.member.email]
    assert "Légumes saison 2027" in message.subject
    expected_sha = __import__("hashlib").sha256(contract_pdf(subscription=subscription)).hexdigest()
    assert challenge.document_sha256 == expected_sha
    assert expected_sha[:16] in message.body
    assert "valable 15 minutes" in message.body
    code = _code_from_last_mail()
    assert code not in challenge.code_hash
    assert dt.timedelta(0) <= CODE_TTL - (challenge.expires_at - challenge.created_at) < dt.timedelta(seconds=1)
    # Nothing is frozen before the member confirms: the subscription may still change.
    assert not ContractDocument.objects.filter(subscription=subscription).exists()


def test_member_then_farmer_sign_the_same_document(subscription, farmer):
    member_signature = _sign(subscription.member, subscription, MEMBER)
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.MEMBER_SIGNED
    document = subscription.document
    assert member_signature.document_sha256 == document.sha256
    charter = charter_current()
    assert member_signature.charter == charter
    assert member_signature.consent_text == (
        f"J'ai lu et j'accepte la Charte des AMAP (version {charter.version}) et le contrat "
        f"« Légumes saison 2027 » n° {subscription.pk}-v1 dont l'empreinte SHA-256 est {document.sha256} ; "
        "je le signe électroniquement."
    )
    assert member_signature.consent_version == CONSENT_VERSION
    assert member_signature.signer_name == "Éloïse Martin"
    assert member_signature.ip_address == "192.0.2.10"
    assert member_signature.user_agent == BROWSER

    farmer_signature = _sign(farmer, subscription, FARMER, ip="2001:db8::7")
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.SIGNED
    assert subscription.signed_at == farmer_signature.signed_at
    assert farmer_signature.document_sha256 == document.sha256
    assert farmer_signature.signer_name == "Jeanne Paysanne"
    assert farmer_signature.ip_address == "2001:db8::7"
    assert ContractDocument.objects.filter(subscription=subscription).count() == 1


def test_farmer_signs_only_after_the_member(subscription, farmer):
    with pytest.raises(ValidationError) as error:
        signature_request_code(user=farmer, subscription=subscription, role=FARMER, charter_accepted=True)
    assert "subscription" in error.value.message_dict


def test_member_cannot_sign_twice(subscription):
    _sign(subscription.member, subscription, MEMBER)
    with pytest.raises(ValidationError):
        signature_request_code(user=subscription.member, subscription=subscription, role=MEMBER, charter_accepted=True)


def test_only_the_member_and_the_farms_managers_may_sign(subscription):
    stranger = UserFactory()
    with pytest.raises(PermissionDenied):
        signature_request_code(user=stranger, subscription=subscription, role=MEMBER, charter_accepted=True)
    _sign(subscription.member, subscription, MEMBER)
    with pytest.raises(PermissionDenied):
        signature_request_code(user=stranger, subscription=subscription, role=FARMER, charter_accepted=True)
    # The member is no farmer of this farm.
    with pytest.raises(PermissionDenied):
        signature_request_code(user=subscription.member, subscription=subscription, role=FARMER, charter_accepted=True)
    # The contract's référent cannot sign for the farm either.
    with pytest.raises(PermissionDenied):
        signature_request_code(
            user=subscription.contract.referent, subscription=subscription, role=FARMER, charter_accepted=True
        )
    assert len(mail.outbox) == 1


@pytest.mark.parametrize("status", [Subscription.Status.WAITING, Subscription.Status.CANCELLED])
def test_waiting_or_cancelled_subscription_cannot_be_signed(subscription, status):
    subscription.status = status
    subscription.save()
    with pytest.raises(ValidationError) as error:
        signature_request_code(user=subscription.member, subscription=subscription, role=MEMBER, charter_accepted=True)
    assert "subscription" in error.value.message_dict
    assert mail.outbox == []


def test_unknown_role_is_refused(subscription):
    with pytest.raises(ValidationError) as error:
        signature_request_code(
            user=subscription.member, subscription=subscription, role="notary", charter_accepted=True
        )
    assert "role" in error.value.message_dict


def _confirm(subscription, code):
    return signature_confirm(
        user=subscription.member, subscription=subscription, role=MEMBER, code=code, ip_address=None, user_agent=""
    )


def test_wrong_codes_count_and_lock_the_code_after_five_attempts(subscription):
    signature_request_code(user=subscription.member, subscription=subscription, role=MEMBER, charter_accepted=True)
    code = _code_from_last_mail()
    for attempt in range(1, MAX_ATTEMPTS + 1):
        with pytest.raises(ValidationError) as error:
            _confirm(subscription, _wrong(code))
        assert "Code incorrect" in error.value.message_dict["code"][0]
        assert SignatureChallenge.objects.get().attempts == attempt
    # Even the right code no longer works.
    with pytest.raises(ValidationError) as error:
        _confirm(subscription, code)
    assert "Trop d'essais" in error.value.message_dict["code"][0]
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.PENDING
    assert not Signature.objects.exists()
    assert EvidenceEvent.objects.filter(kind="signature.code_refused").count() == MAX_ATTEMPTS


def test_code_expires_after_fifteen_minutes(subscription):
    signature_request_code(user=subscription.member, subscription=subscription, role=MEMBER, charter_accepted=True)
    code = _code_from_last_mail()
    with (
        time_machine.travel(timezone.now() + CODE_TTL + dt.timedelta(seconds=1)),
        pytest.raises(ValidationError) as error,
    ):
        _confirm(subscription, code)
    assert "expiré" in error.value.message_dict["code"][0]
    assert not Signature.objects.exists()


def test_code_with_spaces_is_accepted_and_works_once(subscription, farmer):
    signature_request_code(user=subscription.member, subscription=subscription, role=MEMBER, charter_accepted=True)
    code = _code_from_last_mail()
    _confirm(subscription, f" {code[:3]} {code[3:]} ")
    challenge = SignatureChallenge.objects.get()
    assert challenge.used_at is not None
    with pytest.raises(ValidationError):
        _confirm(subscription, code)
    assert Signature.objects.count() == 1


def test_a_new_code_replaces_the_previous_one(subscription):
    signature_request_code(user=subscription.member, subscription=subscription, role=MEMBER, charter_accepted=True)
    first = _code_from_last_mail()
    signature_request_code(user=subscription.member, subscription=subscription, role=MEMBER, charter_accepted=True)
    second = _code_from_last_mail()
    if first != second:  # one chance in a million that they are equal
        with pytest.raises(ValidationError):
            _confirm(subscription, first)
    _confirm(subscription, second)
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.MEMBER_SIGNED


def test_codes_requested_too_often_are_refused(subscription):
    for _ in range(5):
        signature_request_code(user=subscription.member, subscription=subscription, role=MEMBER, charter_accepted=True)
    with pytest.raises(ValidationError) as error:
        signature_request_code(user=subscription.member, subscription=subscription, role=MEMBER, charter_accepted=True)
    assert "code" in error.value.message_dict
    assert len(mail.outbox) == 5


def test_contract_changed_after_the_code_was_sent_is_not_signed(subscription):
    signature_request_code(user=subscription.member, subscription=subscription, role=MEMBER, charter_accepted=True)
    code = _code_from_last_mail()
    subscription.items.update(quantity=2)
    with pytest.raises(ValidationError) as error:
        _confirm(subscription, code)
    assert "changé" in error.value.message_dict["code"][0]
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.PENDING
    assert not ContractDocument.objects.filter(subscription=subscription).exists()


def test_signing_appends_verifiable_evidence(subscription, farmer):
    _sign(subscription.member, subscription, MEMBER)
    _sign(farmer, subscription, FARMER)
    events = list(EvidenceEvent.objects.filter(subscription_id=subscription.pk).order_by("id"))
    kinds = [event.kind for event in events]
    assert kinds == [
        "charter.accepted",
        "signature.code_sent",
        "document.frozen",
        "signature.signed",
        "subscription.status",
        "charter.accepted",
        "signature.code_sent",
        "signature.signed",
        "subscription.status",
    ]
    member_signed = events[3].payload
    document = ContractDocument.objects.get(subscription=subscription)
    assert member_signed["role"] == "member"
    assert member_signed["signer_name"] == "Éloïse Martin"
    assert member_signed["signer_id"] == subscription.member.pk
    assert member_signed["document_sha256"] == document.sha256
    assert member_signed["ip_address"] == "192.0.2.10"
    assert member_signed["user_agent"] == BROWSER
    assert member_signed["consent_version"] == CONSENT_VERSION
    assert member_signed["charter_version"] == charter_current().version
    assert events[-1].payload["status"] == "signed"
    assert evidence_verify().ok


def test_signed_amendment_supersedes_the_previous_version(subscription, farmer):
    _sign(subscription.member, subscription, MEMBER)
    _sign(farmer, subscription, FARMER)
    subscription.refresh_from_db()
    effective = subscription.contract.deliveries.order_by("date")[10].date
    with time_machine.travel(dt.datetime(2027, 3, 1, 10, 0, tzinfo=dt.UTC)):
        amendment = subscription_amend(
            user=subscription.member, subscription=subscription, effective_from=effective, quantities={}
        )
        _sign(subscription.member, amendment, MEMBER)
        subscription.refresh_from_db()
        assert subscription.status == Subscription.Status.SIGNED  # until the farmer signs too
        _sign(farmer, amendment, FARMER)
    subscription.refresh_from_db()
    amendment.refresh_from_db()
    assert amendment.status == Subscription.Status.SIGNED
    assert subscription.status == Subscription.Status.SUPERSEDED
    assert amendment.document.sha256 != subscription.document.sha256
    assert EvidenceEvent.objects.filter(kind="subscription.superseded", subscription_id=subscription.pk).exists()
    assert evidence_verify().ok


def test_signed_contract_cannot_be_edited_nor_its_document_replaced(subscription, farmer):
    _sign(subscription.member, subscription, MEMBER)
    _sign(farmer, subscription, FARMER)
    subscription.refresh_from_db()
    document = subscription.document
    product = subscription.contract.products.get()
    with pytest.raises(ValidationError):
        subscription_set_quantities(user=subscription.member, subscription=subscription, quantities={product.pk: 3})
    with pytest.raises(ValidationError):
        document_freeze(subscription=subscription, pdf=bytes(document.pdf) + b"%")
    assert document_freeze(subscription=subscription).pk == document.pk
    stored = ContractDocument.objects.get(subscription=subscription)
    assert bytes(stored.pdf) == bytes(document.pdf)
    assert subscription.items.filter(quantity=1).count() == subscription.items.count()


def test_signed_pdf_with_one_changed_byte_fails_verification(subscription, farmer):
    _sign(subscription.member, subscription, MEMBER)
    _sign(farmer, subscription, FARMER)
    pdf = bytes(ContractDocument.objects.get(subscription=subscription).pdf)
    found = document_verify(pdf=pdf)
    assert found is not None and found.subscription == subscription
    assert set(found.subscription.signatures.values_list("document_sha256", flat=True)) == {found.sha256}
    for position in (0, len(pdf) // 3, len(pdf) - 1):
        tampered = bytearray(pdf)
        tampered[position] ^= 0x20
        assert document_verify(pdf=bytes(tampered)) is None
