"""A subscription as it stands after both parties signed: items, PDF, signatures, evidence.

Rows are written directly (like `factories.py`), so retention and privacy tests can set up
contracts in any season and then travel in time.
"""

import datetime as dt
import hashlib

from django.utils import timezone

from contracts.evidence import evidence_append
from contracts.models import (
    Absence,
    Charter,
    ContractDocument,
    Signature,
    SignatureChallenge,
    Subscription,
)
from tests.contracts.factories import (
    ContractFactory,
    ContractProductFactory,
    SubscriptionFactory,
    subscribe_same_every_time,
    weekly_deliveries,
)
from tests.factories import UserFactory

PDF = b"%PDF-1.7\n% contrat signe (test)\n"


def charter() -> Charter:
    charter, _ = Charter.objects.get_or_create(
        version="test-2027",
        defaults={"title": "Charte des AMAP", "text": "Texte de la charte.", "published_on": dt.date(2014, 1, 1)},
    )
    return charter


def contract_with_deliveries(**fields):
    contract = ContractFactory(**fields)
    weekly_deliveries(contract)
    ContractProductFactory(contract=contract, name="Petit panier", position=0)
    farmer = UserFactory(display_name="Paul Paysan")
    contract.farm.managers.add(farmer)
    return contract


def signed_subscription(contract, member=None, *, status=Subscription.Status.SIGNED, **fields) -> Subscription:
    """Both signatures, the frozen PDF, an absence with a substitute, a used code, evidence events."""
    member = member or UserFactory(display_name="Amélie Adhérente")
    subscription = SubscriptionFactory(
        contract=contract, member=member, member_name="Amélie Adhérente", status=status, **fields
    )
    if status in (Subscription.Status.SIGNED, Subscription.Status.SUPERSEDED):
        subscription.signed_at = timezone.now()
        subscription.save(update_fields=["signed_at"])
    subscribe_same_every_time(subscription, {contract.products.get(name="Petit panier"): 1})
    sha = hashlib.sha256(PDF).hexdigest()
    ContractDocument.objects.create(subscription=subscription, pdf=PDF, sha256=sha)
    farmer = contract.farm.managers.get()
    signers = [(Signature.Role.MEMBER, member, "Amélie Adhérente", "203.0.113.7")]
    if status != Subscription.Status.MEMBER_SIGNED:
        signers.append((Signature.Role.FARMER, farmer, "Paul Paysan", "198.51.100.2"))
    for role, user, name, ip in signers:
        Signature.objects.create(
            subscription=subscription,
            role=role,
            signer=user,
            signer_name=name,
            document_sha256=sha,
            charter=charter(),
            consent_text="Je signe ce contrat et j'accepte la charte des AMAP.",
            consent_version="1",
            signed_at=timezone.now(),
            ip_address=ip,
            user_agent="Firefox/128",
        )
        SignatureChallenge.objects.create(
            subscription=subscription,
            user=user,
            role=role,
            code_hash="pbkdf2$test",
            document_sha256=sha,
            expires_at=timezone.now() + dt.timedelta(minutes=15),
            used_at=timezone.now(),
        )
        evidence_append(
            kind="signature.signed",
            payload={"signer_name": name, "ip": ip, "document_sha256": sha},
            contract_id=contract.pk,
            subscription_id=subscription.pk,
            actor_id=user.pk,
        )
    Absence.objects.create(
        subscription=subscription,
        delivery=contract.deliveries.order_by("date")[3],
        substitute_name="Bruno Voisin",
        note="en vacances",
    )
    return subscription


def pending_subscription(contract, member=None, *, status=Subscription.Status.PENDING) -> Subscription:
    member = member or UserFactory()
    subscription = SubscriptionFactory(contract=contract, member=member, status=status)
    if status == Subscription.Status.WAITING:
        subscription.waiting_since = timezone.now()
        subscription.save(update_fields=["waiting_since"])
    subscribe_same_every_time(subscription, {contract.products.get(name="Petit panier"): 1})
    evidence_append(
        kind="subscription.created",
        payload={"member": subscription.member_name, "status": status},
        contract_id=contract.pk,
        subscription_id=subscription.pk,
        actor_id=member.pk,
    )
    return subscription
