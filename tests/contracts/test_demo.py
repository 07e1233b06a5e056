"""`manage.py load_demo_contracts`: the contract `make demo` shows, with its people, signatures
and deliveries, written once however often the command runs."""

import datetime as dt
import html
import io
import re

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from contracts.documents import document_verify
from contracts.evidence import evidence_verify
from contracts.models import (
    Absence,
    Contract,
    ContractDocument,
    Delivery,
    EvidenceEvent,
    Signature,
    Subscription,
    SubscriptionItem,
)
from contracts.selectors import distribution_sheet
from directory.models import Amap, AmapManager
from tests.factories import MERIGNAC, AmapFactory, FarmFactory, PartnershipFactory, commune

pytestmark = pytest.mark.django_db

SIGNED = [
    "Camille Dubois",
    "Julien Martin",
    "Inès Bernard",
    "Lucas Petit",
    "Chloé Durand",
    "Hugo Leroy",
    "Manon Moreau",
    "Nathan Simon",
]
PENDING = ["Léa Laurent", "Thomas Michel"]
WAITING = ["Sarah Garcia", "Louis Roux"]


@pytest.fixture
def demo_directory(settings):
    """Demo AMAPs and farms as `load_demo` makes them; the demo AMAP in Bordeaux is the one to use."""
    settings.DEBUG = True
    elsewhere = AmapFactory(name="AMAP de Mérignac (démo)", is_demo=True, location=MERIGNAC, commune=commune("33281"))
    AmapFactory(name="AMAP fermée de Bordeaux (démo)", is_demo=True, status=Amap.Status.CLOSED)
    AmapFactory(name="AMAP réelle de Bordeaux")
    bordeaux = AmapFactory(name="AMAP du Lavoir de Bordeaux (démo)", is_demo=True, delivery_weekdays=[2])
    farm = FarmFactory(name="Ferme des Serres (démo)", is_demo=True, products=["legumes", "oeufs"])
    PartnershipFactory(amap=bordeaux, farm=farm)
    PartnershipFactory(amap=elsewhere, farm=FarmFactory(name="Ferme de Mérignac (démo)", is_demo=True))
    call_command("ensure_demo_admin", stdout=io.StringIO())
    return bordeaux, farm


def run(*args) -> str:
    out = io.StringIO()
    call_command("load_demo_contracts", *args, stdout=out)
    return out.getvalue()


def row_counts() -> dict[str, int]:
    models = (User, AmapManager, Contract, Delivery, Subscription, SubscriptionItem, Signature, Absence)
    counts = {model.__name__: model.objects.count() for model in models}
    counts["ContractDocument"] = ContractDocument.objects.count()
    counts["EvidenceEvent"] = EvidenceEvent.objects.count()
    return counts


def names(status) -> list[str]:
    return sorted(Subscription.objects.filter(status=status).values_list("member_name", flat=True))


def page_text(response) -> str:
    return re.sub(r"<[^>]+>", "", html.unescape(response.content.decode()))


def test_demo_contract_is_written_once_signed_members_on_the_sheet_and_the_chain_verifies(demo_directory):
    bordeaux, farm = demo_directory
    output = run()
    assert "8 signées par les deux parties (PDF figés), 2 à signer, 2 en liste d'attente" in output
    assert "referent@example.org" in output and "amapien12@example.org" in output
    once = row_counts()

    assert "déjà présent" in run()
    assert "rien à faire" in run("--if-empty")
    assert row_counts() == once  # re-runs write nothing

    contract = Contract.objects.get()
    assert contract.amap == bordeaux and contract.farm == farm
    assert contract.title.endswith("(démo)") and contract.status == Contract.Status.OPEN
    assert [(p.name, str(p.unit_price)) for p in contract.products.all()] == [
        ("Petit panier", "12.50"),
        ("Grand panier", "20.00"),
        ("6 œufs", "2.40"),
    ]
    today = timezone.localdate()
    deliveries = list(contract.deliveries.order_by("scheduled_date"))
    assert deliveries[0].date > today and deliveries[0].date.isoweekday() == 2  # the AMAP's Tuesday
    assert contract.season_end == contract.season_start + dt.timedelta(weeks=26)
    assert 20 <= len(deliveries) <= 27  # weekly, minus holidays and the farm's week off

    assert names(Subscription.Status.SIGNED) == sorted(SIGNED)
    assert names(Subscription.Status.PENDING) == sorted(PENDING)
    assert names(Subscription.Status.WAITING) == sorted(WAITING)
    held = sum(s.shares for s in Subscription.objects.holding_shares())
    assert held == contract.capacity_shares == 12

    # Each signed contract: a frozen PDF that verifies, signed by the member and by the farmer.
    for subscription in Subscription.objects.filter(status=Subscription.Status.SIGNED):
        document = subscription.document
        assert document_verify(pdf=bytes(document.pdf)) == document
        signers = {s.role: s.signer.email for s in subscription.signatures.all()}
        assert signers == {"member": subscription.member.email, "farmer": "paysan@example.org"}
        assert {s.document_sha256 for s in subscription.signatures.all()} == {document.sha256}
    assert not ContractDocument.objects.exclude(subscription__status=Subscription.Status.SIGNED).exists()
    report = evidence_verify()
    assert report.ok, report.reason
    assert EvidenceEvent.objects.filter(kind="signature.signed", contract_id=contract.pk).count() == 16

    # The first distribution lists the signed members only; Camille is away, her neighbour comes.
    sheet = distribution_sheet(delivery=deliveries[0])
    assert sorted(row.member_name for row in sheet) == sorted(SIGNED)
    away = [(row.member_name, row.substitute_name) for row in sheet if row.absent]
    assert away == [("Camille Dubois", "Léa Voisin")]

    postponed = contract.deliveries.get(status=Delivery.Status.POSTPONED)
    assert postponed.date == postponed.scheduled_date + dt.timedelta(days=1)

    # The team and the accounts behind them.
    roles = dict(AmapManager.objects.filter(amap=bordeaux).values_list("user__email", "role"))
    assert roles == {"referent@example.org": "referent", "admin@example.org": "admin"}
    assert list(farm.managers.values_list("email", flat=True)) == ["paysan@example.org"]
    for email in ("referent@example.org", "paysan@example.org", "amapien@example.org", "amapien12@example.org"):
        assert User.objects.get(email=email).check_password("demo")


def test_demo_pages_as_the_referent_the_member_and_the_farmer(demo_directory):
    run()
    contract = Contract.objects.get()
    first = contract.deliveries.filter(date__gte=timezone.localdate()).order_by("date").first()
    referent = Client()
    assert referent.login(email="referent@example.org", password="demo")

    page = page_text(referent.get(reverse("contracts:contract_detail", kwargs={"pk": contract.pk})))
    assert contract.title in page and "Petit panier" in page and "Congés de la ferme" in page
    page = page_text(referent.get(reverse("contracts:contract_deliveries", kwargs={"pk": contract.pk})))
    assert "reportée" in page and "La salle de distribution est prise ce jour-là" in page

    response = referent.get(reverse("contracts:delivery_sheet", kwargs={"pk": first.pk}))
    assert response.status_code == 200
    sheet = page_text(response)
    for name in SIGNED + ["Léa Voisin"]:
        assert name in sheet
    for name in PENDING + WAITING:
        assert name not in sheet

    subscribers = page_text(referent.get(reverse("contracts:contract_subscribers", kwargs={"pk": contract.pk})))
    for name in SIGNED + PENDING + WAITING:
        assert name in subscribers

    member = Client()
    assert member.login(email="amapien@example.org", password="demo")
    own = Subscription.objects.get(member__email="amapien@example.org")
    page = page_text(member.get(reverse("contracts:subscription_detail", kwargs={"pk": own.pk})))
    assert "Léa Voisin" in page and own.get_status_display() in page
    pdf = member.get(reverse("contracts:subscription_pdf", kwargs={"pk": own.pk}))
    assert pdf.status_code == 200 and pdf.content == bytes(own.document.pdf)

    farmer = Client()
    assert farmer.login(email="paysan@example.org", password="demo")
    response = farmer.get(reverse("contracts:delivery_preparation", kwargs={"pk": first.pk}))
    assert response.status_code == 200 and "Grand panier" in page_text(response)


def test_demo_refused_without_debug_and_skipped_without_demo_directory(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG"):
        run()
    settings.DEBUG = True
    AmapFactory(name="AMAP réelle de Bordeaux")  # not a demo row: left alone
    assert "Aucune AMAP ou ferme de démonstration" in run()
    assert not Contract.objects.exists() and not User.objects.filter(email="referent@example.org").exists()


def test_clearing_the_demo_directory_takes_its_contracts_first(demo_directory):
    from directory.demo import clear_demo

    call_command("load_demo_contracts", stdout=io.StringIO())
    assert Contract.objects.exists()
    counts = clear_demo()
    assert counts["contracts"] == 1
    assert not Contract.objects.exists() and not Subscription.objects.exists()
    assert not Amap.objects.filter(is_demo=True).exists()
    assert Amap.objects.filter(name="AMAP réelle de Bordeaux").exists()
    assert evidence_verify().ok
