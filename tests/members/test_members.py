"""The team runs its AMAP: import 300 members, the list, a message to a contract's subscribers;
joining from the public page; the adhésion and its receipt; the membership gate on contracts."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from procrastinate.contrib.django.models import ProcrastinateJob

from contracts.models import Subscription
from contracts.services.subscriptions import subscription_create
from directory.models import Amap, AmapManager
from members import services
from members.models import Adhesion, Membership, Message, MessageDelivery
from tests.contracts.factories import ContractFactory, ContractProductFactory, SubscriptionFactory, weekly_deliveries
from tests.factories import AmapFactory, UserFactory
from tests.test_jobs import run_worker

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued_mail(settings):
    settings.EMAIL_BACKEND = "accounts.mail.QueuedEmailBackend"
    settings.EMAIL_DELIVERY_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


@pytest.fixture
def team():
    amap = AmapFactory(name="AMAP des Chartrons")
    admin = UserFactory(display_name="Adèle Admin")
    AmapManager.objects.create(amap=amap, user=admin, role=AmapManager.Role.ADMIN)
    return amap, admin


def _csv(rows: int, *, bad_row: int | None = None) -> bytes:
    lines = ["prénom;nom;e-mail;téléphone"]
    for n in range(1, rows + 1):
        email = "pas-une-adresse" if n == bad_row else f"membre{n}@example.org"
        lines.append(f"Prénom{n};Nom{n:03d};{email};06 00 00 {n:02d}")
    return "\n".join(lines).encode("utf-8")


def test_the_team_imports_300_members_and_a_bad_row_writes_nothing(team):
    amap, admin = team
    client = Client()
    client.force_login(admin)
    url = reverse("members:member_import", args=[amap.pk])
    from django.core.files.uploadedfile import SimpleUploadedFile

    bad = client.post(url, {"file": SimpleUploadedFile("membres.csv", _csv(300, bad_row=157))})
    assert bad.status_code == 200
    page = bad.content.decode()
    # Row 158 of the file (157th member after the header), column named as in the file.
    assert "ligne 158, colonne « e-mail »" in page and "rien n'a été enregistré" in page
    assert Membership.objects.filter(amap=amap).count() == 0

    good = client.post(url, {"file": SimpleUploadedFile("membres.csv", _csv(300))})
    assert good.status_code == 302
    assert Membership.objects.filter(amap=amap, status=Membership.Status.ACTIVE).count() == 300
    # Importing the same file again creates no duplicate.
    again = services.members_import(actor=admin, amap=amap, filename="m.csv", content=_csv(300))
    assert again.ok and again.created == 0 and Membership.objects.filter(amap=amap).count() == 300

    listing = client.get(reverse("members:member_list", args=[amap.pk]))
    assert listing.status_code == 200 and "300 personnes" in listing.content.decode()
    found = client.get(reverse("members:member_list", args=[amap.pk]), {"q": "Nom042"})
    assert "membre42@example.org" in found.content.decode() and "membre43@" not in found.content.decode()
    export = client.get(reverse("members:member_export", args=[amap.pk]))
    assert export.content.decode("utf-8-sig").count("\n") == 301


def test_an_xlsx_import_names_row_and_column(team, tmp_path):
    from openpyxl import Workbook

    amap, admin = team
    book = Workbook()
    sheet = book.active
    sheet.append(["Nom", "Prénom", "Email", "Statut"])
    sheet.append(["Martin", "Éloïse", "eloise@example.org", "membre"])
    sheet.append(["Durand", "Paul", "paul@example.org", "VIP"])
    path = tmp_path / "m.xlsx"
    book.save(path)
    report = services.members_import(actor=admin, amap=amap, filename="m.xlsx", content=path.read_bytes())
    assert [str(issue) for issue in report.errors] == [
        "ligne 3, colonne « Statut » : statut inconnu « VIP » (membre ou liste d'attente)"
    ]
    assert not Membership.objects.exists()


def test_a_message_to_a_contracts_subscribers_reaches_each_once_from_the_worker(team, queued_mail):
    amap, admin = team
    contract = ContractFactory(amap=amap, title="Légumes 2027")
    subscribers = [UserFactory(email=f"abonne{n}@example.org") for n in range(5)]
    for user in subscribers:
        SubscriptionFactory(contract=contract, member=user, status=Subscription.Status.SIGNED)
    outsider = UserFactory(email="autre@example.org")
    SubscriptionFactory(contract=ContractFactory(amap=amap), member=outsider)
    # A subscriber who opted out of news still gets service messages.
    Membership.objects.create(
        amap=amap, user=subscribers[0], email=subscribers[0].email, news_opt_out=True, status="active"
    )

    client = Client()
    client.force_login(admin)
    response = client.post(
        reverse("members:message_create", args=[amap.pk]),
        {
            "audience": "contract",
            "param": str(contract.pk),
            "kind": "news",
            "subject": "Panier de mardi",
            "body": "Pensez aux sacs.",
        },
    )
    assert response.status_code == 302
    message = Message.objects.get()
    assert message.kind == Message.Kind.SERVICE  # a contract's subscribers: always a service message
    assert mail.outbox == []  # nothing leaves inside the request

    run_worker("members", "emails")
    assert sorted(m.to[0] for m in mail.outbox) == sorted(u.email for u in subscribers)
    assert all("Pensez aux sacs." in m.body for m in mail.outbox)

    # The job running again (a retry) sends nobody a second copy.
    services.message_fan_out(message_id=message.pk)
    run_worker("emails")
    assert len(mail.outbox) == 5
    assert MessageDelivery.objects.filter(message=message).count() == 5
    message.refresh_from_db()
    assert message.status == Message.Status.SENT and message.recipients == 5
    # Archived: recipients see it, outsiders do not.
    reader = Client()
    reader.force_login(subscribers[1])
    assert reader.get(reverse("members:message_detail", args=[message.pk])).status_code == 200
    reader.force_login(outsider)
    assert reader.get(reverse("members:message_detail", args=[message.pk])).status_code == 404


def test_news_skip_those_who_unsubscribed(team):
    amap, admin = team
    keen = Membership.objects.create(amap=amap, email="keen@example.org", status="active")
    tired = Membership.objects.create(amap=amap, email="tired@example.org", status="active")
    token = services.unsubscribe_token(tired.pk)
    assert Client().post(reverse("members:unsubscribe", args=[token])).status_code == 200
    message = services.message_create(actor=admin, amap=amap, audience_key="all", subject="AG", body="Le 12.")
    services.message_fan_out(message_id=message.pk)
    assert [m.to for m in mail.outbox] == [[keen.email]]
    assert "Ne plus recevoir les actualités" in mail.outbox[0].body


def test_a_visitor_joins_from_the_public_page_and_the_team_accepts(team):
    amap, admin = team
    ContractFactory(amap=amap, title="Œufs 2027")
    visitor = Client()
    page = visitor.get(reverse("directory:amap_detail", args=[amap.pk])).content.decode()
    join_url = reverse("members:join", args=[amap.pk])
    assert "Rejoindre cette AMAP" in page and "Œufs 2027" in page
    assert f"{reverse('accounts:signup')}?suivant=" in page

    signup = visitor.post(
        f"{reverse('accounts:signup')}?suivant={join_url}",
        {
            "email": "lea@example.org",
            "display_name": "Léa Petit",
            "password1": "un-mot-de-passe-solide-42",
            "password2": "un-mot-de-passe-solide-42",
        },
    )
    assert signup.status_code == 302 and signup.url == join_url
    assert visitor.post(join_url, {"note": "Bonjour"}).status_code == 302
    membership = Membership.objects.get(amap=amap, email="lea@example.org")
    assert membership.status == Membership.Status.PENDING
    assert any(admin.email in m.to for m in mail.outbox)  # the team is told

    team_client = Client()
    team_client.force_login(admin)
    team_client.post(reverse("members:membership_decide", args=[membership.pk]), {"decision": "accept"})
    membership.refresh_from_db()
    assert membership.status == Membership.Status.ACTIVE and membership.joined_at


def test_a_full_amap_offers_its_waiting_list(team):
    amap, _admin = team
    Amap.objects.filter(pk=amap.pk).update(accepting_members=Amap.Accepting.WAITING_LIST)
    page = Client().get(reverse("directory:amap_detail", args=[amap.pk])).content.decode()
    assert "S'inscrire sur la liste d'attente" in page
    person = UserFactory()
    client = Client()
    client.force_login(person)
    client.post(reverse("members:join", args=[amap.pk]))
    assert Membership.objects.get(user=person).status == Membership.Status.WAITING


def test_an_invitation_link_makes_a_member_directly(team):
    amap, admin = team
    [membership] = services.membership_invite(actor=admin, amap=amap, emails=["nouveau@example.org"])
    assert "/adherents/invitation/" in mail.outbox[-1].body
    person = UserFactory(email="nouveau@example.org")
    client = Client()
    client.force_login(person)
    url = reverse("members:invitation_accept", args=[services.invitation_token(membership)])
    assert client.post(url).status_code == 302
    membership.refresh_from_db()
    assert membership.status == Membership.Status.ACTIVE and membership.user == person
    assert client.get(reverse("members:invitation_accept", args=["faux"])).status_code == 404


def _season(amap, admin, **fields):
    values = {"label": "2026-2027", "starts_on": dt.date(2026, 9, 1), "ends_on": dt.date(2027, 12, 31)}
    values.update(fields)
    return services.season_create(actor=admin, amap=amap, **values)


def test_sliding_scale_and_free_price_fees(team):
    amap, admin = team
    with pytest.raises(ValidationError):
        _season(amap, admin, fee_kind="sliding", tiers=[("seul", Decimal("5"))])
    season = _season(amap, admin, fee_kind="sliding", tiers=[("modeste", Decimal("5")), ("aisé", Decimal("20"))])
    person = UserFactory()
    membership = Membership.objects.create(amap=amap, user=person, email=person.email, status="active")
    tier = season.tiers.get(label="aisé")
    adhesion = services.adhesion_create(
        user=person, membership=membership, season=season, payment_mode="cheque", tier_id=str(tier.pk)
    )
    assert adhesion.amount == Decimal("20.00")
    free = _season(
        amap,
        admin,
        label="2028",
        starts_on=dt.date(2028, 1, 1),
        ends_on=dt.date(2028, 12, 31),
        fee_kind="free",
        amount=Decimal("10"),
    )
    with pytest.raises(ValidationError, match="minimum"):
        services.adhesion_create(user=person, membership=membership, season=free, payment_mode="cash", amount="8")
    assert services.adhesion_create(
        user=person, membership=membership, season=free, payment_mode="cash", amount="12,5"
    ).amount == Decimal("12.50")


def test_a_paid_adhesion_has_a_receipt_and_opens_a_contract_that_requires_it(team):
    amap, admin = team
    _season(amap, admin, fee_kind="fixed", amount=Decimal("15"))
    contract = ContractFactory(amap=amap, requires_membership=True)
    product = ContractProductFactory(contract=contract)
    weekly_deliveries(contract)
    person = UserFactory(display_name="Éloïse Martin")
    membership = Membership.objects.create(
        amap=amap, user=person, email=person.email, first_name="Éloïse", last_name="Martin", status="active"
    )
    with pytest.raises(ValidationError, match="adhésion"):
        subscription_create(user=person, contract=contract, quantities={product.pk: 1})

    client = Client()
    client.force_login(person)
    assert (
        client.post(reverse("members:adhesion_create", args=[amap.pk]), {"payment_mode": "cheque"}).status_code == 302
    )
    adhesion = Adhesion.objects.get(membership=membership)
    assert client.get(reverse("members:adhesion_receipt", args=[adhesion.pk])).status_code == 403  # not paid yet

    team_client = Client()
    team_client.force_login(admin)
    team_client.post(reverse("members:adhesion_mark", args=[adhesion.pk]), {"paid": "1"})
    adhesion.refresh_from_db()
    assert adhesion.status == Adhesion.Status.PAID and adhesion.receipt_number

    pdf = client.get(reverse("members:adhesion_receipt", args=[adhesion.pk]))
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    import io

    from pypdf import PdfReader

    text = PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()
    assert "Éloïse Martin" in text and "15,00 €" in text and adhesion.receipt_number in text
    assert client.get(reverse("members:adhesion_receipt", args=[adhesion.pk])).content == pdf.content  # same bytes

    assert subscription_create(user=person, contract=contract, quantities={product.pk: 1}).pk


def test_unpaid_adhesions_get_a_reminder_every_two_weeks_three_times_at_most(team):
    from django.utils import timezone

    amap, admin = team
    today = timezone.localdate()
    season = _season(
        amap,
        admin,
        starts_on=today - dt.timedelta(days=60),
        ends_on=today + dt.timedelta(days=300),
        amount=Decimal("10"),
    )
    membership = Membership.objects.create(amap=amap, email="lent@example.org", status="active")
    adhesion = Adhesion.objects.create(
        membership=membership, season=season, amount=Decimal("10"), payment_mode="cheque"
    )
    Adhesion.objects.filter(pk=adhesion.pk).update(created_at=timezone.now() - dt.timedelta(days=30))
    now = timezone.now()
    assert services.adhesions_remind_unpaid(now=now) == 1
    assert services.adhesions_remind_unpaid(now=now) == 0  # not twice in two weeks
    for week in (3, 6, 9):
        services.adhesions_remind_unpaid(now=now + dt.timedelta(weeks=week))
    adhesion.refresh_from_db()
    assert adhesion.reminders_sent == 3
    assert [m.to for m in mail.outbox] == [["lent@example.org"]] * 3


def test_the_member_list_costs_the_same_number_of_queries_for_30_and_300_members(team, django_assert_max_num_queries):
    amap, admin = team
    contract = ContractFactory(amap=amap)
    season = _season(amap, admin, starts_on=dt.date(2020, 1, 1), ends_on=dt.date(2099, 1, 1))
    client = Client()
    client.force_login(admin)
    url = reverse("members:member_list", args=[amap.pk])

    def grow(to: int):
        for n in range(Membership.objects.filter(amap=amap).count(), to):
            user = UserFactory(email=f"m{n}@example.org")
            membership = Membership.objects.create(amap=amap, user=user, email=user.email, status="active")
            SubscriptionFactory(contract=contract, member=user, status=Subscription.Status.SIGNED)
            if n % 2:
                Adhesion.objects.create(membership=membership, season=season, amount=Decimal("10"), payment_mode="cash")

    grow(30)
    client.get(url)  # warm caches (sessions, content types)
    with django_assert_max_num_queries(12) as small:
        assert client.get(url).status_code == 200
    grow(300)
    with django_assert_max_num_queries(len(small.captured_queries)):
        page = client.get(url)
    # One page of 100 rows (+ the header), counted over all 300.
    assert page.content.decode().count("<tr>") == 101 and "300 personnes" in page.content.decode()
    assert ProcrastinateJob.objects.count() >= 0


def test_the_member_list_shows_100_a_page_and_searches_over_all(team):
    amap, admin = team
    Membership.objects.bulk_create(
        Membership(amap=amap, email=f"membre{n}@example.org", last_name=f"Nom{n:03d}", status="active")
        for n in range(1, 251)
    )
    client = Client()
    client.force_login(admin)
    url = reverse("members:member_list", args=[amap.pk])
    first = client.get(url).content.decode()
    assert "250 personnes" in first and "Page 1 sur 3" in first
    assert "membre100@example.org" in first and "membre101@example.org" not in first
    last = client.get(url, {"page": "3"}).content.decode()
    assert "membre250@example.org" in last and "membre200@example.org" not in last
    found = client.get(url, {"q": "Nom250"}).content.decode()
    assert "1 personne" in found and "membre250@example.org" in found and "Page 1 sur" not in found
