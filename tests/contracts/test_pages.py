"""Contract pages as people use them: a référent sets a contract up, members subscribe and sign,
the farmer countersigns and prepares, deliveries change, summaries add up, anyone verifies a PDF.

Today is before the 2027 season: every delivery of the factories' contracts is still to come.
"""

import datetime as dt
import hashlib
import html
import io
import json
import re
import zipfile
from decimal import Decimal

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils.formats import number_format

from contracts.documents import charter_current
from contracts.evidence import evidence_append
from contracts.models import AcademicBreak, AcademicCalendar, Contract, Delivery, Signature, Subscription
from directory.models import Amap, AmapManager
from tests.factories import AmapFactory, FarmFactory, PartnershipFactory, UserFactory

from .factories import ContractFactory, ContractProductFactory, SubscriptionFactory, subscribe_same_every_time
from .factories import weekly_deliveries as lay_weekly_deliveries
from .roles import contract_world

pytestmark = pytest.mark.django_db


def logged(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def text(response) -> str:
    """The page as a reader sees it (entities decoded)."""
    return html.unescape(response.content.decode())


def words(response) -> str:
    """The page's text without its tags."""
    return re.sub(r"<[^>]+>", "", text(response))


def euros(value: Decimal) -> str:
    """An amount as the French pages print it (« 137,50 »)."""
    return number_format(value, decimal_pos=2)


def code_from_mail() -> str:
    return re.search(r"^\s+(\d{6})\s*$", mail.outbox[-1].body, re.MULTILINE).group(1)


def thursdays(start: dt.date, end: dt.date) -> list[dt.date]:
    day = start + dt.timedelta(days=(3 - start.weekday()) % 7)
    out = []
    while day <= end:
        out.append(day)
        day += dt.timedelta(days=7)
    return out


# --------------------------------------------------------------------------------------------
# Référent: set up, preview, publish


@pytest.fixture
def team():
    amap = AmapFactory(name="AMAP des Capucins", delivery_weekdays=[4])
    farm = FarmFactory(name="Ferme de la Garonne")
    PartnershipFactory(amap=amap, farm=farm)
    referent = UserFactory(display_name="Rose Référente")
    AmapManager.objects.create(amap=amap, user=referent, role=AmapManager.Role.REFERENT)
    return amap, farm, referent


def contract_post(partner, referent, **overrides) -> dict:
    data = {
        "title": "Légumes printemps 2027",
        "farm": partner.pk,
        "other_farm": "",
        "season_start": "2027-04-01",
        "season_end": "2027-06-24",
        "weekday": 4,
        "frequency": "weekly",
        "exclude_public_holidays": "on",
        "chosen_dates": "20/05/2027 Fête de l'AMAP",
        "closure_dates": "2027-06-03",
        "delivery_place": "Marché des Capucins",
        "delivery_start": "18:00",
        "delivery_end": "19:30",
        "capacity_shares": 30,
        "instalments_max": 3,
        "payment_methods": ["cheque", "transfer"],
        "payment_payee": "Ferme de la Garonne",
        "subscription_deadline": "",
        "referent": referent.pk,
        "description": "",
        "commitments": "La ferme livre chaque jeudi ; les adhérent·es tiennent une permanence par saison.",
        "products-TOTAL_FORMS": 4,
        "products-INITIAL_FORMS": 0,
        "products-MIN_NUM_FORMS": 0,
        "products-MAX_NUM_FORMS": 30,
        "products-0-name": "Petit panier",
        "products-0-unit_price": "12.50",
        "products-0-max_quantity": 3,
        "products-1-name": "6 œufs",
        "products-1-unit_price": "2.40",
        "products-1-max_quantity": 5,
    }
    data.update(overrides)
    return data


def test_referent_creates_a_contract_sees_its_calendar_with_skipped_dates_and_publishes_it(team):
    amap, farm, referent = team
    client = logged(referent)
    form = client.get(reverse("contracts:contract_create"))  # their only AMAP: no need to choose
    assert form.status_code == 200 and "Ferme de la Garonne" in text(form)

    response = client.post(reverse("contracts:contract_create") + f"?amap={amap.pk}", contract_post(farm, referent))
    contract = Contract.objects.get()
    assert response.status_code == 302 and response.url == reverse("contracts:contract_detail", args=[contract.pk])
    assert contract.status == Contract.Status.DRAFT and contract.amap == amap and contract.farm == farm
    assert list(contract.products.values_list("name", "unit_price")) == [
        ("Petit panier", Decimal("12.50")),
        ("6 œufs", Decimal("2.40")),
    ]
    # Thursdays of the season minus Ascension (6 May 2027), the AMAP's date and the farm's closure.
    skipped = {dt.date(2027, 5, 6), dt.date(2027, 5, 20), dt.date(2027, 6, 3)}
    expected = [d for d in thursdays(dt.date(2027, 4, 1), dt.date(2027, 6, 24)) if d not in skipped]
    assert list(contract.deliveries.values_list("date", flat=True)) == expected

    page = text(client.get(response.url))
    assert "jour férié : Ascension" in page
    assert "date retirée par l'AMAP : Fête de l'AMAP" in page
    assert "fermeture de la ferme" in page
    assert "Publier le contrat" in page

    response = client.post(reverse("contracts:contract_publish", args=[contract.pk]))
    contract.refresh_from_db()
    assert contract.status == Contract.Status.OPEN
    assert "Contrat publié" in text(client.get(response.url))
    # Publishing twice is refused with a message, not an error page.
    response = client.post(reverse("contracts:contract_publish", args=[contract.pk]), follow=True)
    assert "Seul un brouillon peut être publié." in text(response)


def test_contract_form_answers_bad_input_in_french_and_creates_nothing(team):
    amap, farm, referent = team
    client = logged(referent)
    url = reverse("contracts:contract_create") + f"?amap={amap.pk}"

    response = client.post(url, contract_post(farm, referent, season_end="2027-03-01"))
    assert response.status_code == 200 and "La fin de la saison doit suivre son début." in text(response)

    no_products = {
        "products-0-name": "",
        "products-0-unit_price": "",
        "products-1-name": "",
        "products-1-unit_price": "",
    }
    response = client.post(url, contract_post(farm, referent, **no_products))
    assert "Indiquez au moins un produit avec son prix." in text(response)

    response = client.post(url, contract_post(farm, referent, **{"products-1-unit_price": ""}))
    assert "Indiquez le prix de ce produit." in text(response)

    response = client.post(url, contract_post(farm, referent, chosen_dates="32/13/2027 fête"))
    assert "Ligne 1 : « 32/13/2027 » n'est pas une date du calendrier." in text(response)

    # A date outside the season: the service's own message, shown on the form.
    response = client.post(url, contract_post(farm, referent, chosen_dates="14/07/2027"))
    assert response.status_code == 200 and "est en dehors de la saison" in text(response)

    response = client.post(url, contract_post(farm, referent, farm="", other_farm="Ferme inconnue"))
    assert "Aucune ferme de l'annuaire ne s'appelle « Ferme inconnue »." in text(response)
    assert Contract.objects.count() == 0

    # Any farm of the directory, by its number, even without a partnership yet.
    stranger = FarmFactory(name="Ferme lointaine")
    response = client.post(url, contract_post(farm, referent, farm="", other_farm=f"n° {stranger.pk}"))
    assert response.status_code == 302 and Contract.objects.get().farm == stranger


def test_referent_edits_a_draft_products_and_calendar(team):
    amap, farm, referent = team
    client = logged(referent)
    client.post(reverse("contracts:contract_create") + f"?amap={amap.pk}", contract_post(farm, referent))
    contract = Contract.objects.get()
    small = contract.products.get(name="Petit panier")
    url = reverse("contracts:contract_edit", args=[contract.pk])
    page = text(client.get(url))
    assert 'value="Petit panier"' in page and "Fête de l'AMAP" in page
    changes = {
        "products-INITIAL_FORMS": 2,
        "products-0-id": small.pk,
        "products-0-unit_price": "13.00",
        "products-1-id": contract.products.get(name="6 œufs").pk,
        "products-1-name": "",
        "products-1-unit_price": "",
        "chosen_dates": "",
        "frequency": "fortnightly",
    }
    response = client.post(url, contract_post(farm, referent, **changes))
    assert response.status_code == 302
    assert list(contract.products.values_list("pk", "unit_price")) == [(small.pk, Decimal("13.00"))]
    fortnightly = thursdays(dt.date(2027, 4, 1), dt.date(2027, 6, 24))[::2]
    skipped = {dt.date(2027, 5, 6), dt.date(2027, 6, 3)}
    assert list(contract.deliveries.values_list("date", flat=True)) == [d for d in fortnightly if d not in skipped]


def test_student_amap_chooses_an_academic_calendar_and_its_breaks_are_skipped(team):
    amap, farm, referent = team
    Amap.objects.filter(pk=amap.pk).update(kind=Amap.Kind.STUDENT)
    calendar = AcademicCalendar.objects.create(
        amap=amap,
        name="Université de Bordeaux",
        year_start=2026,
        starts_on=dt.date(2026, 9, 1),
        ends_on=dt.date(2027, 7, 10),
    )
    AcademicBreak.objects.create(
        calendar=calendar,
        kind="holidays",
        label="printemps",
        starts_on=dt.date(2027, 4, 10),
        ends_on=dt.date(2027, 4, 25),
    )
    client = logged(referent)
    url = reverse("contracts:contract_create") + f"?amap={amap.pk}"
    assert "Calendrier universitaire" in text(client.get(url))
    response = client.post(url, contract_post(farm, referent, academic_calendar=calendar.pk))
    contract = Contract.objects.get()
    assert contract.academic_calendar == calendar
    dates = set(contract.deliveries.values_list("date", flat=True))
    assert dt.date(2027, 4, 15) not in dates and dt.date(2027, 4, 22) not in dates and dt.date(2027, 4, 8) in dates
    assert "vacances universitaires : printemps" in text(client.get(response.url))


def test_open_contract_edits_only_texts_and_more_shares(team):
    amap, farm, referent = team
    contract = ContractFactory(amap=amap, farm=farm, referent=referent, capacity_shares=1)
    product = ContractProductFactory(contract=contract)
    lay_weekly_deliveries(contract)
    holder = SubscriptionFactory(contract=contract, status=Subscription.Status.PENDING)
    subscribe_same_every_time(holder, {product: 1})
    waiting = SubscriptionFactory(
        contract=contract, status=Subscription.Status.WAITING, waiting_since=dt.datetime.now(dt.UTC)
    )
    subscribe_same_every_time(waiting, {product: 1})

    client = logged(referent)
    url = reverse("contracts:contract_edit", args=[contract.pk])
    page = text(client.get(url))
    assert "seuls la présentation, les engagements, le nombre de parts" in page and "products-TOTAL_FORMS" not in page
    response = client.post(url, {"capacity_shares": 0, "referent": referent.pk, "description": "", "commitments": ""})
    assert "Assurez-vous que cette valeur est supérieure ou égale à 1." in text(response)
    stranger = UserFactory()
    response = client.post(url, {"capacity_shares": 2, "referent": stranger.pk, "description": "", "commitments": ""})
    assert "Sélectionnez un choix valide" in text(response)  # the référent comes from the AMAP's team
    response = client.post(
        url, {"capacity_shares": 2, "referent": referent.pk, "description": "Deux parts", "commitments": ""}
    )
    assert response.status_code == 302
    waiting.refresh_from_db()
    assert waiting.status == Subscription.Status.PENDING  # the waiting list moved up


# --------------------------------------------------------------------------------------------
# Members: subscribe, see the total, sign; the farmer countersigns; anyone verifies the PDF


@pytest.fixture
def open_contract(team):
    amap, farm, referent = team
    contract = ContractFactory(
        amap=amap, farm=farm, referent=referent, title="Légumes 2027", capacity_shares=2, instalments_max=3
    )
    small = ContractProductFactory(contract=contract, name="Petit panier", unit_price=Decimal("12.50"), max_quantity=3)
    eggs = ContractProductFactory(contract=contract, name="6 œufs", unit_price=Decimal("2.40"), max_quantity=5)
    lay_weekly_deliveries(contract)
    farmer = UserFactory(display_name="Paul Paysan")
    farm.managers.add(farmer)
    return contract, small, eggs, farmer


def test_member_subscribes_and_sees_total_and_instalments_before_signing(open_contract):
    contract, small, eggs, _farmer = open_contract
    member = UserFactory(display_name="Amélie Adhérente")
    client = logged(member)
    page = text(client.get(reverse("contracts:contract_detail", args=[contract.pk])))
    assert "Souscrire" in page and "12,50 €" in page

    url = reverse("contracts:subscription_create", args=[contract.pk])
    response = client.post(
        url,
        {
            f"product_{small.pk}": 0,
            f"product_{eggs.pk}": 0,
            "pattern": "same",
            "shares": 1,
            "instalments": 3,
            "payment_method": "cheque",
        },
    )
    assert response.status_code == 200 and "Choisissez au moins un produit." in text(response)
    response = client.post(
        url, {f"product_{small.pk}": 9, "pattern": "same", "shares": 1, "instalments": 3, "payment_method": "cheque"}
    )
    assert "Assurez-vous que cette valeur est inférieure ou égale à 3." in text(response)
    response = client.post(
        url, {f"product_{small.pk}": 1, "pattern": "same", "shares": 1, "instalments": 3, "payment_method": "cash"}
    )
    assert "Sélectionnez un choix valide" in text(response)  # cash is not offered by this contract

    response = client.post(
        url,
        {
            f"product_{small.pk}": 1,
            f"product_{eggs.pk}": 2,
            "pattern": "same",
            "shares": 1,
            "instalments": 3,
            "payment_method": "transfer",
        },
    )
    subscription = Subscription.objects.get(member=member)
    assert response.status_code == 302 and response.url == reverse(
        "contracts:subscription_detail", args=[subscription.pk]
    )
    assert subscription.status == Subscription.Status.PENDING

    deliveries = contract.deliveries.count()
    total = deliveries * (Decimal("12.50") + 2 * Decimal("2.40"))
    page = text(client.get(response.url))
    assert f"Total : {euros(total)} €" in page
    instalments = re.findall(r"<li>([\d  ,]+) €", page.split('id="instalments"')[1].split("</ol>")[0])
    amounts = [Decimal(a.replace(" ", "").replace("\u202f", "").replace(",", ".")) for a in instalments]
    assert len(amounts) == 3 and sum(amounts) == total
    assert "Signer le contrat" in page

    # Subscribing again leads back to the same subscription.
    assert client.get(url).url == response.url


def test_member_chooses_quantities_per_delivery(open_contract):
    contract, small, eggs, _farmer = open_contract
    member = UserFactory()
    client = logged(member)
    url = reverse("contracts:subscription_create", args=[contract.pk]) + "?rythme=variable"
    page = text(client.get(url))
    first, second, *_ = contract.deliveries.order_by("date")
    assert f'name="d{first.pk}_p{small.pk}"' in page
    data = {
        f"d{first.pk}_p{small.pk}": 2,
        f"d{second.pk}_p{eggs.pk}": 1,
        "shares": 1,
        "instalments": 1,
        "payment_method": "cheque",
    }
    response = client.post(url, data)
    subscription = Subscription.objects.get(member=member)
    assert response.status_code == 302 and subscription.pattern == Subscription.Pattern.VARYING
    assert sorted(subscription.items.values_list("delivery_id", "product_id", "quantity")) == sorted(
        [(first.pk, small.pk, 2), (second.pk, eggs.pk, 1)]
    )
    assert f"Total : {euros(2 * Decimal('12.50') + Decimal('2.40'))} €" in text(client.get(response.url))


def test_member_beyond_capacity_goes_on_the_waiting_list(open_contract):
    contract, small, _eggs, _farmer = open_contract
    for _ in range(2):
        holder = SubscriptionFactory(contract=contract, status=Subscription.Status.SIGNED)
        subscribe_same_every_time(holder, {small: 1})
    member = UserFactory()
    client = logged(member)
    response = client.post(
        reverse("contracts:subscription_create", args=[contract.pk]),
        {f"product_{small.pk}": 1, "pattern": "alternate", "shares": 1, "instalments": 1, "payment_method": "cheque"},
        follow=True,
    )
    assert Subscription.objects.get(member=member).status == Subscription.Status.WAITING
    page = text(response)
    assert "Le contrat est complet : vous êtes sur la liste d'attente." in page
    assert "Vous êtes n°1 sur la liste d'attente." in page
    subscribers = text(logged(contract.referent).get(reverse("contracts:contract_subscribers", args=[contract.pk])))
    assert str(member) in subscribers.split("Liste d'attente")[1]


def test_member_signs_with_the_emailed_code_farmer_countersigns_and_the_pdf_verifies(open_contract):
    contract, small, _eggs, farmer = open_contract
    member = UserFactory(display_name="Amélie Adhérente", email="amelie@example.org")
    client = logged(member)
    client.post(
        reverse("contracts:subscription_create", args=[contract.pk]),
        {f"product_{small.pk}": 1, "pattern": "same", "shares": 1, "instalments": 1, "payment_method": "cheque"},
    )
    subscription = Subscription.objects.get(member=member)
    sign_url = reverse("contracts:subscription_sign", args=[subscription.pk])

    page = text(client.get(sign_url))
    assert reverse("contracts:charter") in page and "Demandez d'abord le code" in page
    response = client.post(sign_url, {"step": "request"})
    assert "Acceptez la charte pour signer." in text(response) and not mail.outbox
    response = client.post(sign_url, {"step": "request", "charter_accepted": "on"}, follow=True)
    assert "Un code vous a été envoyé par e-mail." in text(response)
    assert mail.outbox[-1].to == ["amelie@example.org"]
    code = code_from_mail()
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    response = client.post(sign_url, {"step": "confirm", "code": wrong})
    assert response.status_code == 200 and "Code incorrect. Il vous reste 4 essai(s)." in text(response)
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.PENDING
    response = client.post(sign_url, {"step": "confirm", "code": code}, follow=True)
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.MEMBER_SIGNED
    assert "Contrat signé. La ferme va le contresigner." in text(response)

    # The farmer finds it in their list, then countersigns with their own code.
    farmer_client = logged(farmer)
    countersign_url = reverse("contracts:subscription_countersign", args=[subscription.pk])
    assert countersign_url in text(farmer_client.get(reverse("contracts:contract_list")))
    farmer_client.post(countersign_url, {"step": "request", "charter_accepted": "on"})
    response = farmer_client.post(countersign_url, {"step": "confirm", "code": code_from_mail()}, follow=True)
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.SIGNED
    assert "Contrat contresigné" in text(response)
    page = text(client.get(reverse("contracts:subscription_detail", args=[subscription.pk])))
    assert "Amélie Adhérente (adhérent·e)" in page and "Paul Paysan (paysan·ne)" in page

    # The signed PDF: what both signatures bind to.
    pdf = client.get(reverse("contracts:subscription_pdf", args=[subscription.pk])).content
    assert pdf.startswith(b"%PDF-")
    assert set(Signature.objects.filter(subscription=subscription).values_list("document_sha256", flat=True)) == {
        hashlib.sha256(pdf).hexdigest()
    }

    # Anyone (not logged in) verifies it; one changed byte fails.
    public = Client()
    response = public.post(
        reverse("contracts:verify"), {"pdf": SimpleUploadedFile("contrat.pdf", pdf, "application/pdf")}
    )
    page = text(response)
    assert "Ce PDF correspond à un contrat signé." in page
    assert "Amélie Adhérente (adhérent·e)" in page and "Paul Paysan (paysan·ne)" in page
    assert "@" not in page.split('id="verdict"')[1]  # no e-mail address
    signature = Signature.objects.filter(subscription=subscription).exclude(ip_address=None).first()
    assert signature is None or signature.ip_address not in page
    tampered = bytearray(pdf)
    tampered[len(tampered) // 2] ^= 0x01
    response = public.post(
        reverse("contracts:verify"), {"pdf": SimpleUploadedFile("contrat.pdf", bytes(tampered), "application/pdf")}
    )
    assert "Ce PDF ne correspond à aucun contrat signé." in text(response)
    response = public.post(reverse("contracts:verify"), {})
    assert "Ce champ est obligatoire." in text(response)


def test_member_amends_a_signed_contract_from_a_date_on():
    world = contract_world()
    client = logged(world.users["member"])
    detail_url = reverse("contracts:subscription_detail", args=[world.subscription.pk])
    assert "Faire un avenant" in text(client.get(detail_url))
    url = reverse("contracts:subscription_amend", args=[world.subscription.pk])
    small = world.products[0]
    response = client.post(url, {"effective_from": "2026-01-01", "pattern": "same", f"product_{small.pk}": 2})
    assert "Un avenant ne change pas les distributions passées." in text(response)
    response = client.post(url, {"effective_from": "2030-01-01", "pattern": "same", f"product_{small.pk}": 2})
    assert "Cette date est en dehors de la saison." in text(response)

    from_date = world.deliveries[10].date
    response = client.post(url, {"effective_from": from_date.isoformat(), "pattern": "same", f"product_{small.pk}": 2})
    amendment = Subscription.objects.get(previous=world.subscription)
    assert response.status_code == 302 and response.url == reverse("contracts:subscription_detail", args=[amendment.pk])
    assert amendment.status == Subscription.Status.PENDING and amendment.version == 2
    quantities = dict(amendment.items.values_list("delivery__date", "quantity"))
    assert {quantities[d.date] for d in world.deliveries[:10]} == {1}
    assert {quantities[d.date] for d in world.deliveries[10:]} == {2}
    page = words(client.get(response.url))
    assert "Cet avenant remplace la version précédente" in page and "Signer le contrat" in page
    assert "Un avenant existe (à signer)." in words(client.get(detail_url))


# --------------------------------------------------------------------------------------------
# Deliveries: sheet, preparation, done / postponed / cancelled, absences


def test_distribution_sheet_shows_signed_members_with_absences_and_the_farmers_totals():
    world = contract_world()
    pending_member = UserFactory(display_name="Paulette Pas-Encore")
    pending = SubscriptionFactory(contract=world.contract, member=pending_member, status=Subscription.Status.PENDING)
    subscribe_same_every_time(pending, {world.products[0]: 5})
    delivery = world.deliveries[3]  # the member is away, Léa collects
    client = logged(world.users["referent"])
    page = text(client.get(reverse("contracts:delivery_sheet", args=[delivery.pk])))
    assert "Member" in page and "Other Member" in page and "Paulette" not in page
    assert "remplacé·e par Léa" in page
    prep = text(client.get(reverse("contracts:delivery_preparation", args=[delivery.pk])))
    # 1 « product 0 » for the member, 2 « product 1 » for the other one (pending ones do not count).
    rows = re.findall(r'<th scope="row">([^<]+)</th><td class="num">(\d+)</td>', prep)
    assert rows == [(world.products[0].name, "1"), (world.products[1].name, "2")]
    pdf = client.get(reverse("contracts:delivery_sheet_pdf", args=[delivery.pk]))
    assert pdf["Content-Type"] == "application/pdf" and pdf.content.startswith(b"%PDF-")


def test_delivery_marked_cancelled_postponed_or_done_with_french_errors():
    world = contract_world()
    client = logged(world.users["farmer"])
    first, second = world.deliveries[0], world.deliveries[1]
    url = reverse("contracts:delivery_mark", args=[first.pk])
    response = client.post(url, {"status": "postponed", "new_date": ""}, follow=True)
    assert "Indiquez la nouvelle date de la distribution reportée." in text(response)
    response = client.post(url, {"status": "done"}, follow=True)
    assert "Cette distribution n'a pas encore eu lieu." in text(response)
    new_date = first.date + dt.timedelta(days=2)
    response = client.post(url, {"status": "postponed", "new_date": new_date.isoformat(), "note": "pluie"}, follow=True)
    first.refresh_from_db()
    assert first.status == Delivery.Status.POSTPONED and first.date == new_date
    assert "reportée" in text(response)

    mail.outbox.clear()
    client = logged(world.users["referent"])
    response = client.post(
        reverse("contracts:delivery_mark", args=[second.pk]), {"status": "cancelled", "note": "grêle"}
    )
    second.refresh_from_db()
    assert second.status == Delivery.Status.CANCELLED and second.note == "grêle"
    page = text(client.get(reverse("contracts:delivery_sheet", args=[second.pk])))
    assert "Distribution annulée (aléa de production)." in page


def test_member_declares_an_absence_with_a_substitute_and_cancels_it():
    world = contract_world()
    member = world.users["member"]
    client = logged(member)
    url = reverse("contracts:subscription_absences", args=[world.subscription.pk])
    delivery = world.deliveries[5]
    response = client.post(url, {"delivery": delivery.pk, "substitute_name": "Marc Voisin", "note": "vacances"})
    assert response.status_code == 302
    absence = world.subscription.absences.get(delivery=delivery)
    assert absence.substitute_name == "Marc Voisin"
    sheet = text(logged(world.users["referent"]).get(reverse("contracts:delivery_sheet", args=[delivery.pk])))
    assert "remplacé·e par Marc Voisin" in sheet
    other = world.other_contract.deliveries.first()
    response = client.post(url, {"delivery": other.pk})
    assert "Sélectionnez un choix valide" in text(response)
    client.post(reverse("contracts:absence_cancel", args=[absence.pk]))
    assert not world.subscription.absences.filter(delivery=delivery).exists()


# --------------------------------------------------------------------------------------------
# Summaries


def test_summaries_on_screen_as_csv_and_pdf_add_up():
    world = contract_world()
    client = logged(world.users["referent"])
    url = reverse("contracts:contract_summary", args=[world.contract.pk])
    page = text(client.get(url, {"by": "product"}))
    deliveries = len(world.deliveries)
    # member: 1 × product 0 each week; other member: 2 × product 1 each week
    assert re.search(
        rf'<th scope="row">{re.escape(world.products[0].name)}</th>.*?<td class="num">{deliveries}</td>', page, re.S
    )
    total = deliveries * (world.products[0].unit_price + 2 * world.products[1].unit_price)
    assert f"{euros(total)} €" in page.split("<tfoot>")[1]

    page = text(client.get(url, {"by": "member"}))
    assert "Member" in page and "Other Member" in page
    response = client.get(url, {"by": "nimporte"})
    assert response.status_code == 200 and "Sélectionnez un choix valide" in text(response)

    csv_response = client.get(
        reverse("contracts:contract_summary_export", args=[world.contract.pk, "csv"]), {"by": "date"}
    )
    assert csv_response["Content-Type"].startswith("text/csv")
    assert "attachment" in csv_response["Content-Disposition"]
    lines = csv_response.content.decode("utf-8-sig").strip().splitlines()
    assert len(lines) == 1 + deliveries + 1  # header, one row per date, the total
    pdf = client.get(reverse("contracts:contract_summary_export", args=[world.contract.pk, "pdf"]), {"by": "farmer"})
    assert pdf.content.startswith(b"%PDF-")

    admin_page = text(
        logged(world.users["amap_admin"]).get(reverse("contracts:amap_summary", args=[world.amap.pk]), {"by": "farmer"})
    )
    assert world.farm.name in admin_page
    farm_page = text(
        logged(world.users["farmer"]).get(reverse("contracts:farm_summary", args=[world.farm.pk]), {"by": "product"})
    )
    assert world.products[0].name in farm_page


# --------------------------------------------------------------------------------------------
# Member: deliveries in a calendar, personal data


def test_my_deliveries_and_the_calendar_feed():
    world = contract_world()
    client = logged(world.users["member"])
    page = text(client.get(reverse("contracts:my_deliveries")))
    feed_url = re.search(r'id="ics-feed">([^<]+)<', page).group(1)
    assert world.contract.title in page
    feed = Client().get(feed_url.replace("http://testserver", ""))  # no login: calendar apps cannot log in
    assert feed.status_code == 200 and feed["Content-Type"].startswith("text/calendar")
    assert feed.content.count(b"BEGIN:VEVENT") == len(world.deliveries)
    forged = feed_url.replace("http://testserver", "")[:-8] + "AAAA.ics"
    assert Client().get(forged).status_code == 404


def test_my_data_export_and_erasure():
    world = contract_world()
    member = world.users["member"]
    client = logged(member)
    response = client.get(reverse("contracts:my_data_export", args=["json"]))
    data = json.loads(response.content)
    assert response["Content-Type"].startswith("application/json")
    assert world.contract.title in json.dumps(data, ensure_ascii=False)
    archive = zipfile.ZipFile(io.BytesIO(client.get(reverse("contracts:my_data_export", args=["csv"])).content))
    assert any(name.endswith(".csv") for name in archive.namelist())

    url = reverse("contracts:my_data_erase")
    page = text(client.get(url))
    assert "Ce qui serait conservé" in page and world.contract.title in page
    member.refresh_from_db()
    assert member.email.endswith("@example.org")  # the preview changed nothing
    response = client.post(url, {})
    assert "Cochez la case pour confirmer la demande." in text(response)
    response = client.post(url, {"confirm": "on"})
    assert "Vos données ont été effacées" in text(response)
    member.refresh_from_db()
    assert not member.email.endswith("@example.org")
    assert client.get(reverse("contracts:contract_list")).status_code == 302  # logged out

    # Someone who runs an AMAP hands their role over first.
    page = text(logged(world.users["referent"]).get(url))
    assert "Vous faites partie de l'équipe de l'AMAP" in page


# --------------------------------------------------------------------------------------------
# Lists and admin


def test_contract_list_sections_follow_the_roles():
    world = contract_world()
    page = text(logged(world.users["member"]).get(reverse("contracts:contract_list")))
    assert reverse("contracts:subscription_detail", args=[world.subscription.pk]) in page
    assert "Contrats que je gère" not in page
    page = text(logged(world.users["referent"]).get(reverse("contracts:contract_list")))
    assert "Contrats que je gère" in page and "Nouveau contrat pour AMAP des Chartrons" in page
    page = text(logged(world.users["farmer"]).get(reverse("contracts:contract_list")))
    assert "Contrats de ma ferme" in page and "Bilans de Ferme du Grand Pré" in page
    page = text(logged(world.users["unrelated"]).get(reverse("contracts:contract_list"), {"amap": world.amap.pk}))
    assert "Contrats ouverts de AMAP des Chartrons" in page and "Légumes 2027" in page


def test_admin_shows_evidence_read_only():
    world = contract_world()
    root = UserFactory(is_staff=True, is_superuser=True)
    client = logged(root)
    charter = charter_current()
    signature = Signature.objects.create(
        subscription=world.subscription,
        role="member",
        signer=world.users["member"],
        signer_name="Member",
        document_sha256="0" * 64,
        charter=charter,
        consent_text="…",
        consent_version="1",
        signed_at=dt.datetime(2027, 3, 1, tzinfo=dt.UTC),
    )
    event = evidence_append(kind="test.event", payload={"a": 1}, contract_id=world.contract.pk)
    for model, pk in (("signature", signature.pk), ("evidenceevent", event.pk)):
        change = client.get(f"/admin/contracts/{model}/{pk}/change/")
        assert change.status_code == 200 and 'name="_save"' not in text(change)
        assert client.post(f"/admin/contracts/{model}/{pk}/change/", {}).status_code == 403
        assert client.get(f"/admin/contracts/{model}/{pk}/delete/").status_code == 403
        assert client.get(f"/admin/contracts/{model}/add/").status_code == 403
    # Contracts themselves stay editable there.
    assert 'name="_save"' in text(client.get(f"/admin/contracts/contract/{world.contract.pk}/change/"))
