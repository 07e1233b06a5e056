"""The contract PDF: what it says, byte-identical for the same data, frozen once, verifiable."""

import datetime as dt
import io
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from pypdf import PdfReader

from contracts.documents import charter_current, contract_pdf, document_freeze, document_verify
from contracts.models import ContractDocument, Delivery, Subscription
from contracts.selectors import subscription_totals
from tests.contracts.factories import (
    ContractFactory,
    ContractProductFactory,
    SubscriptionFactory,
    subscribe_same_every_time,
    weekly_deliveries,
)
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def subscription():
    referent = UserFactory(display_name="Camille Référente")
    contract = ContractFactory(
        title="Légumes saison 2027",
        referent=referent,
        payment_payee="EARL Les Jardins de l'Estey",
        delivery_place="Salle des fêtes",
        delivery_start=dt.time(18, 30),
        delivery_end=dt.time(19, 30),
        commitments="La ferme ouvre ses portes deux samedis par saison.",
    )
    small = ContractProductFactory(contract=contract, name="Petit panier", unit_price=Decimal("12.50"), position=0)
    eggs = ContractProductFactory(contract=contract, name="6 œufs", unit_price=Decimal("2.40"), position=1)
    weekly_deliveries(contract)
    member = UserFactory(display_name="Éloïse Martin")
    sub = SubscriptionFactory(
        contract=contract, member=member, member_name="Éloïse Martin", status=Subscription.Status.PENDING, instalments=3
    )
    subscribe_same_every_time(sub, {small: 1, eggs: 2})
    return sub


def _text(pdf: bytes) -> str:
    reader = PdfReader(io.BytesIO(pdf))
    return "\n".join(page.extract_text() for page in reader.pages)


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_pdf_states_parties_season_prices_payment_charter_and_commitments(subscription):
    pdf = contract_pdf(subscription=subscription)
    assert pdf.startswith(b"%PDF-")
    text = _flat(_text(pdf))
    contract = subscription.contract
    totals = subscription_totals(subscription=subscription)
    charter = charter_current()
    # Parties and référent
    for expected in ("Éloïse Martin", contract.farm.name, contract.amap.name, "Camille Référente"):
        assert expected in text
    # Season and calendar: every delivery date in long French form
    assert "mardi 6 avril 2027" in text and "mardi 28 septembre 2027" in text
    assert "de 18h30 à 19h30" in text and "Salle des fêtes" in text
    # Products, prices, total (26 weekly deliveries × (12,50 + 2 × 2,40) = 449,80 €)
    deliveries = Delivery.objects.filter(contract=contract).count()
    assert totals.total == deliveries * (Decimal("12.50") + 2 * Decimal("2.40"))
    assert "Petit panier" in text and "6 œufs" in text and "12,50 €" in text
    assert f"{totals.total:.2f}".replace(".", ",") + " €" in text
    # Instalments, payment method and payee
    assert len(totals.instalments) == 3
    for instalment in totals.instalments:
        assert f"{instalment.amount:.2f}".replace(".", ",") + " €" in text
        assert instalment.due_date.strftime("%d/%m/%Y") in text
    assert "chèques" in text and "EARL Les Jardins de l'Estey" in text
    # Charter version and its digest (the digest may wrap: compare without spaces)
    assert charter.version in text
    assert charter.text_sha256 in text.replace(" ", "")
    # Commitments of each party, and this contract's own
    assert "payer d'avance la totalité de la saison" in text
    assert "aléas de la production" in text
    assert "participer à l'organisation des distributions" in text
    assert "issus de sa propre production" in text
    assert "transparent·e sur ses pratiques" in text
    assert "informer l'AMAP et les adhérent·es au plus tôt de tout aléa" in text
    assert "La ferme ouvre ses portes deux samedis par saison." in text


def test_same_data_gives_byte_identical_pdf(subscription):
    first = contract_pdf(subscription=subscription)
    second = contract_pdf(subscription=Subscription.objects.get(pk=subscription.pk))
    assert first == second
    # The PDF's creation date is the subscription's, not the clock's.
    reader = PdfReader(io.BytesIO(first))
    assert reader.metadata.creation_date.date() == subscription.created_at.astimezone(dt.UTC).date()


def test_changed_data_gives_another_pdf(subscription):
    before = contract_pdf(subscription=subscription)
    subscription.items.filter(product__name="6 œufs").update(quantity=3)
    assert contract_pdf(subscription=subscription) != before


def test_cancelled_and_postponed_deliveries_are_marked(subscription):
    deliveries = list(subscription.contract.deliveries.order_by("date"))
    deliveries[1].status = Delivery.Status.CANCELLED
    deliveries[1].save()
    deliveries[2].date = deliveries[2].scheduled_date + dt.timedelta(days=2)
    deliveries[2].status = Delivery.Status.POSTPONED
    deliveries[2].save()
    text = _flat(_text(contract_pdf(subscription=subscription)))
    assert "annulée (aléa)" in text
    assert f"reportée (prévue le {deliveries[2].scheduled_date:%d/%m/%Y})" in text


def test_freeze_stores_once_and_returns_the_same_document(subscription):
    document = document_freeze(subscription=subscription)
    assert document.sha256 == __import__("hashlib").sha256(bytes(document.pdf)).hexdigest()
    # Data changes afterwards do not touch the frozen contract.
    subscription.items.update(quantity=5)
    again = document_freeze(subscription=subscription)
    assert again.pk == document.pk and bytes(again.pdf) == bytes(document.pdf)
    assert ContractDocument.objects.filter(subscription=subscription).count() == 1


def test_frozen_document_cannot_be_replaced(subscription):
    document = document_freeze(subscription=subscription)
    other = contract_pdf(subscription=subscription).replace(b"/Producer", b"/Producer", 1) + b"\n% autre"
    with pytest.raises(ValidationError) as error:
        document_freeze(subscription=subscription, pdf=other)
    assert "document" in error.value.message_dict
    assert bytes(ContractDocument.objects.get(pk=document.pk).pdf) == bytes(document.pdf)
    # Offering the very same bytes is fine (idempotent).
    assert document_freeze(subscription=subscription, pdf=bytes(document.pdf)).pk == document.pk


@pytest.mark.parametrize("status", [Subscription.Status.WAITING, Subscription.Status.CANCELLED])
def test_waiting_or_cancelled_subscription_has_nothing_to_freeze(subscription, status):
    subscription.status = status
    subscription.save()
    with pytest.raises(ValidationError) as error:
        document_freeze(subscription=subscription)
    assert "subscription" in error.value.message_dict


def test_verify_finds_the_exact_pdf_and_refuses_one_changed_byte(subscription):
    document = document_freeze(subscription=subscription)
    pdf = bytes(document.pdf)
    assert document_verify(pdf=pdf) == document
    middle = len(pdf) // 2
    tampered = pdf[:middle] + bytes([pdf[middle] ^ 0x01]) + pdf[middle + 1 :]
    assert document_verify(pdf=tampered) is None
    assert document_verify(pdf=pdf + b" ") is None
    assert document_verify(pdf=b"") is None


def test_charter_in_force_is_the_2014_summary_with_its_digest():
    charter = charter_current()
    assert charter.version == "2014 (résumé)"
    assert charter.is_current
    assert charter.text_sha256 == __import__("hashlib").sha256(charter.text.encode()).hexdigest()
    for principle in ("agriculture paysanne", "agroécologiques", "accessible", "sans intermédiaire", "aléas"):
        assert principle in charter.text


def test_charter_without_a_current_version_is_a_clear_error():
    from contracts.models import Charter

    charter_current()
    Charter.objects.update(is_current=False)
    with pytest.raises(ValidationError) as error:
        charter_current()
    assert "charter" in error.value.message_dict


def test_first_of_the_month_is_written_premier(subscription):
    text = _flat(_text(contract_pdf(subscription=subscription)))
    assert "mardi 1er juin 2027" in text
