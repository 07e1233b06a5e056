"""contracts/exports.py: summaries, distribution sheets and preparation lists as CSV and PDF."""

import csv
import datetime as dt
import io
import re
from decimal import Decimal

import pytest
from pypdf import PdfReader

from contracts.exports import (
    decimal_comma,
    distribution_sheet_csv,
    distribution_sheet_pdf,
    preparation_list_csv,
    preparation_list_pdf,
    summary_csv,
    summary_pdf,
)
from contracts.models import Absence, Delivery, Subscription
from contracts.selectors import summary
from tests.contracts.factories import (
    ContractFactory,
    ContractProductFactory,
    SubscriptionFactory,
    subscribe_same_every_time,
    weekly_deliveries,
)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def season(db):
    """A 26-week contract: three signed members, one pending, an absence, a cancelled week."""
    contract = ContractFactory(title="Légumes 2027", delivery_place="Salle des fêtes, 12 rue du Marché")
    weekly_deliveries(contract)
    small = ContractProductFactory(contract=contract, name="Petit panier", unit_price=Decimal("12.50"), position=0)
    eggs = ContractProductFactory(contract=contract, name="6 œufs", unit_price=Decimal("2.40"), position=1)
    zoe = SubscriptionFactory(contract=contract, member_name="Zoé Lefebvre")
    adele = SubscriptionFactory(contract=contract, member_name="Adèle Moreau")
    mallory = SubscriptionFactory(contract=contract, member_name='=HYPERLINK("http://mal.example")')
    pending = SubscriptionFactory(contract=contract, member_name="Paul Attente", status=Subscription.Status.PENDING)
    subscribe_same_every_time(zoe, {small: 1, eggs: 2})
    subscribe_same_every_time(adele, {small: 2})
    subscribe_same_every_time(mallory, {eggs: 1})
    subscribe_same_every_time(pending, {small: 9})
    first, second = contract.deliveries.order_by("date")[:2]
    Absence.objects.create(subscription=adele, delivery=first, substitute_name="Jean Voisin")
    Delivery.objects.filter(pk=second.pk).update(status=Delivery.Status.CANCELLED, note="grêle")
    return {"contract": contract, "first": first, "second": Delivery.objects.get(pk=second.pk)}


def _read_csv(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf"), "UTF-8 byte-order mark, so that Excel reads the accents"
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig")), delimiter=";"))


def _pdf_text(data: bytes) -> str:
    assert data.startswith(b"%PDF-")
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)
    return re.sub(r"[\s\u00a0\u202f]+", " ", text)


def test_decimal_comma():
    assert decimal_comma(Decimal("1234.5")) == "1234,50"
    assert decimal_comma(0) == "0,00"


def test_summary_csv_by_member_is_a_french_spreadsheet(season):
    contract = season["contract"]
    data = summary_csv(contract=contract, by="member")
    rows = _read_csv(data)
    assert b"\r\n" in data

    assert rows[0] == [
        "Adhérent·e",
        "Petit panier (quantité)",
        "6 œufs (quantité)",
        "Quantité totale",
        "Montant (€)",
        "Distributions",
        "Souscriptions",
    ]
    body, total = rows[1:-1], rows[-1]
    # A name that a spreadsheet would run as a formula is kept as text.
    assert [r[0] for r in body] == ['\'=HYPERLINK("http://mal.example")', "Adèle Moreau", "Zoé Lefebvre"]
    # 25 deliveries count (one cancelled); Zoé: 25 small baskets and 50 × 6 eggs = 312.50 + 120.00
    assert body[2] == ["Zoé Lefebvre", "25", "50", "75", "432,50", "25", "1"]
    expected = summary(contract=contract, by="member").totals
    assert total == [
        "Total",
        "75",
        "75",
        "150",
        decimal_comma(expected.amount),
        "25",
        "3",
    ]
    assert expected.amount == Decimal("1117.50")  # 75 × 12.50 + 75 × 2.40


def test_summary_csv_by_product_names_the_contract(season):
    rows = _read_csv(summary_csv(contract=season["contract"], by="product"))
    assert rows[0] == ["Produit", "Contrat", "Quantité totale", "Montant (€)", "Distributions", "Souscriptions"]
    assert rows[1] == ["Petit panier", "Légumes 2027", "75", "937,50", "25", "2"]
    assert rows[2] == ["6 œufs", "Légumes 2027", "75", "180,00", "25", "2"]
    assert rows[3][:4] == ["Total", "", "150", "1117,50"]


def test_summary_csv_by_date_over_a_period(season):
    contract = season["contract"]
    computed = summary(contract=contract, by="date", start=dt.date(2027, 4, 1), end=dt.date(2027, 4, 30))
    rows = _read_csv(summary_csv(summary=computed))
    # April 2027 Tuesdays: 6, 13 (cancelled), 20, 27
    assert [r[0] for r in rows[1:]] == ["06/04/2027", "20/04/2027", "27/04/2027", "Total"]
    assert rows[1][1:5] == ["3", "3", "6", "44,70"]  # 3 × 12.50 + 3 × 2.40
    assert summary_csv(contract=contract, by="date", start=dt.date(2027, 4, 1), end=dt.date(2027, 4, 30)) == (
        summary_csv(summary=computed)
    )


def test_summary_pdf_shows_the_rows_and_the_total(season):
    text = _pdf_text(summary_pdf(contract=season["contract"], by="member"))
    assert "Récapitulatif par adhérent·e" in text
    assert "Contrat « Légumes 2027 »" in text
    for name in ("Adèle Moreau", "Zoé Lefebvre", "Total"):
        assert name in text
    assert "Paul Attente" not in text  # pending: not delivered, not summed
    assert "1 117,50 €" in text
    assert "432,50 €" in text


def test_summary_pdf_of_a_period_says_so(season):
    text = _pdf_text(
        summary_pdf(contract=season["contract"], by="date", start=dt.date(2027, 4, 1), end=dt.date(2027, 4, 30))
    )
    assert "Récapitulatif par date" in text
    assert "du 01/04/2027 au 30/04/2027" in text
    assert "06/04/2027" in text and "13/04/2027" not in text


def test_distribution_sheet_pdf_to_tick_off(season):
    text = _pdf_text(distribution_sheet_pdf(delivery=season["first"]))
    assert "Feuille de distribution du mardi 6 avril 2027" in text
    assert "Salle des fêtes, 12 rue du Marché" in text
    assert "Émargement" in text and "Adhérent·e" in text
    # Members by name, the absent one with their substitute; the pending one is not on the sheet.
    assert text.index("Adèle Moreau") < text.index("Zoé Lefebvre")
    assert "remplacé·e par Jean Voisin" in text
    assert "Paul Attente" not in text
    assert "Total (3 adhérent·es)" in text


def test_distribution_sheet_pdf_of_a_cancelled_delivery_says_so(season):
    text = _pdf_text(distribution_sheet_pdf(delivery=season["second"]))
    assert "Distribution annulée (aléa de production) — grêle" in text


def test_distribution_sheet_csv(season):
    rows = _read_csv(distribution_sheet_csv(delivery=season["first"]))
    assert rows[0] == ["Adhérent·e", "Petit panier (quantité)", "6 œufs (quantité)", "Absent·e", "Remplaçant·e"]
    assert rows[2] == ["Adèle Moreau", "2", "0", "oui", "Jean Voisin"]
    assert rows[-1] == ["Total", "3", "3", "", ""]


def test_preparation_list_pdf_and_csv(season):
    text = _pdf_text(preparation_list_pdf(delivery=season["first"]))
    assert "Liste de préparation du mardi 6 avril 2027" in text
    assert "Quantité à préparer" in text
    assert "Petit panier 3 2 37,50 €" in text  # 3 baskets for 2 members
    assert "44,70 €" in text
    rows = _read_csv(preparation_list_csv(delivery=season["first"]))
    assert rows == [
        ["Produit", "Quantité", "Adhérent·es", "Montant (€)"],
        ["Petit panier", "3", "2", "37,50"],
        ["6 œufs", "3", "2", "7,20"],
        ["Total", "6", "", "44,70"],
    ]
