"""Issue 14, first half: contacts that always reach someone (or say so), private addresses, claiming a
listing, moderation of declared AMAPs and proposed changes, and the history with revert."""

import datetime as dt
import html
import re

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.urls import reverse

from directory import contacts
from directory import services as directory_services
from directory import services_moderation as moderation
from directory.models import Amap, AmapManager, ChangeRequest, ClaimChallenge, Partnership
from matching import threads
from matching.models import Message
from tests.factories import BORDEAUX, AmapFactory, FarmFactory, NetworkFactory, UserFactory, commune, product

pytestmark = pytest.mark.django_db

PRIVATE = "secret-amap@example.net"


@pytest.fixture(autouse=True)
def _mail_leaves_at_once(monkeypatch):
    """E-mails leave on commit; tests run inside one transaction, so they leave at once here."""
    monkeypatch.setattr("django.db.transaction.on_commit", lambda func, *args, **kwargs: func())


@pytest.fixture
def gironde():
    """A départemental network of Gironde with one coordinator."""
    network = NetworkFactory(name="AMAP Gironde", slug="amap-gironde", departments=["33"])
    coordinator = UserFactory(email="coord@gironde.example", display_name="Coline Coordinatrice")
    network.admins.add(coordinator)
    return network, coordinator


def test_a_message_to_an_amap_without_account_or_address_goes_to_its_territory_s_network(gironde):
    network, coordinator = gironde
    amap = AmapFactory(name="AMAP le Pré de Carignan", source="import", external_id="1")
    farmer = UserFactory(display_name="Paul Paysan")

    route = contacts.contact_route(amap, exclude_user=farmer)
    assert route.kind == contacts.NETWORK
    assert "votre message ira au réseau AMAP Gironde, qui fera suivre" in route.notice()

    thread = threads.thread_start(user=farmer, recipient=amap, body="Bonjour, je livre des œufs.")
    first = thread.messages.get()
    assert first.delivery == Message.Delivery.NETWORK
    assert first.delivery_label == "transmis au réseau AMAP Gironde"
    assert list(thread.relayed_to.all()) == [network]
    # The coordinator reads it and answers; the farmer is told, and his message shows « lu ».
    assert [m.to for m in mail.outbox] == [[coordinator.email]]
    assert "n'a ni compte ni adresse" in mail.outbox[0].body
    threads.thread_mark_read(thread=thread, user=coordinator)
    threads.thread_reply(user=coordinator, thread=thread, body="Je transmets à l'AMAP.")
    assert mail.outbox[-1].to == [farmer.email]
    first.refresh_from_db()
    assert first.read_at is not None


def test_a_message_that_reaches_nobody_is_refused_and_never_shown_as_sent():
    amap = AmapFactory(name="AMAP isolée", location=BORDEAUX)  # no account, no address, no network
    farmer = UserFactory()
    route = contacts.contact_route(amap)
    assert not route.reachable
    assert "ne peut pas être envoyé" in route.notice()
    with pytest.raises(ValidationError):
        threads.thread_start(user=farmer, recipient=amap, body="Bonjour")
    assert not Message.objects.exists()
    assert mail.outbox == []


def test_a_message_to_an_amap_with_a_private_address_reaches_it_with_a_signed_reply_link(client):
    amap = AmapFactory(name="AMAP des Capucins", private_email=PRIVATE)
    farmer = UserFactory(display_name="Paul Paysan")
    thread = threads.thread_start(user=farmer, recipient=amap, body="Des œufs le mardi ?")
    assert thread.messages.get().delivery_label == "envoyé à l'adresse de « AMAP des Capucins »"
    (sent,) = mail.outbox
    assert sent.to == [PRIVATE]
    link = re.search(r"http://[^\s]+/reponse/[^\s]+/", sent.body).group(0)
    path = link.split("127.0.0.1:8000", 1)[1] if "127.0.0.1:8000" in link else link
    page = client.get(path)
    assert page.status_code == 200
    assert PRIVATE not in page.content.decode()
    client.post(path, {"body": "Oui, avec plaisir !"})
    reply = thread.messages.last()
    assert reply.author is None and reply.author_name == "AMAP des Capucins"
    assert mail.outbox[-1].to == [farmer.email]
    # A forged token opens nothing.
    assert client.get(reverse("matching:thread_reply_link", args=[thread.pk, "faux"])).status_code == 404


def test_the_private_address_never_appears_in_pages_api_or_exports(client):
    amap = AmapFactory(name="AMAP des Capucins", private_email=PRIVATE, contact_email="public@example.org")
    farm = FarmFactory(name="Ferme secrète", private_email="ferme-privee@example.net")
    for url in (
        reverse("directory:amap_detail", args=[amap.pk]),
        reverse("directory:farm_detail", args=[farm.pk]),
        "/api/v1/amaps/",
        f"/api/v1/amaps/{amap.pk}/",
        "/api/v1/farms/",
    ):
        body = client.get(url).content.decode()
        assert PRIVATE not in body and "ferme-privee" not in body, url
    import io

    from directory import exporters

    out = io.StringIO()
    exporters.export_geojson(out=out)
    for kind in ("amap", "farm"):
        exporters.export_csv(out=out, kind=kind)
    assert "public@example.org" in out.getvalue()  # the public address is exported, the private never
    assert PRIVATE not in out.getvalue() and "ferme-privee" not in out.getvalue()


def test_claiming_an_imported_amap_with_the_emailed_code_makes_the_claimant_its_admin():
    amap = AmapFactory(name="AMAP importée", source="import", external_id="42", private_email=PRIVATE)
    claimant = UserFactory()
    challenge = moderation.claim_send_code(user=claimant, entry=amap)
    (sent,) = mail.outbox
    assert sent.to == [PRIVATE]
    code = re.search(r"(\d{6})", sent.body).group(1)
    assert code not in challenge.code_hash  # only a salted HMAC is kept
    with pytest.raises(ValidationError):
        moderation.claim_confirm(user=claimant, entry=amap, code="000000" if code != "000000" else "111111")
    moderation.claim_confirm(user=claimant, entry=amap, code=code)
    assert AmapManager.objects.get(amap=amap, user=claimant).role == AmapManager.Role.ADMIN
    with pytest.raises(ValidationError):  # once
        moderation.claim_confirm(user=claimant, entry=amap, code=code)


def test_a_claim_code_allows_five_attempts():
    amap = AmapFactory(private_email=PRIVATE)
    claimant = UserFactory()
    moderation.claim_send_code(user=claimant, entry=amap)
    code = re.search(r"(\d{6})", mail.outbox[0].body).group(1)
    wrong = "000000" if code != "000000" else "111111"
    for _attempt in range(5):
        with pytest.raises(ValidationError):
            moderation.claim_confirm(user=claimant, entry=amap, code=wrong)
    with pytest.raises(ValidationError, match="Trop d'essais"):
        moderation.claim_confirm(user=claimant, entry=amap, code=code)
    assert not amap.managers.filter(pk=claimant.pk).exists()
    assert ClaimChallenge.objects.get().attempts == 5


def test_a_coordinator_grants_a_claim_request(gironde):
    network, coordinator = gironde
    amap = AmapFactory(name="AMAP sans adresse")
    claimant = UserFactory()
    request = moderation.change_request_submit(
        user=claimant, kind=ChangeRequest.Kind.CLAIM, entry_type="amap", data={}, entry=amap
    )
    assert moderation.pending_for_network(network) == [request]
    moderation.change_request_approve(user=coordinator, request=request)
    assert amap.managers.filter(pk=claimant.pk).exists()


def _declare(client, name="AMAP du Nouveau Monde"):
    return client.post(
        reverse("accounts:amap_create"),
        {
            "name": name,
            "address": "Place de la Comédie, 33000 Bordeaux",
            "delivery_frequency": "weekly",
            "accepting_members": "open",
        },
    )


def test_a_declared_amap_waits_out_of_public_search_until_a_coordinator_approves_it(client, gironde):
    network, coordinator = gironde
    declarant = UserFactory(display_name="Dora Déclarante")
    client.force_login(declarant)
    response = _declare(client)
    assert response.status_code == 302
    assert not Amap.objects.filter(name="AMAP du Nouveau Monde").exists()
    request = ChangeRequest.objects.get()
    assert request.kind == ChangeRequest.Kind.CREATE and request.commune_id == "33063"
    assert [m.to for m in mail.outbox] == [[coordinator.email]]

    client.force_login(coordinator)
    queue = client.get(reverse("directory:network_moderation", args=[network.slug]))
    assert "AMAP du Nouveau Monde" in queue.content.decode()
    client.post(reverse("directory:change_request_detail", args=[request.pk]), {"action": "approve"})
    amap = Amap.objects.get(name="AMAP du Nouveau Monde")
    assert amap.manager_roles.get().user == declarant
    assert mail.outbox[-1].to == [declarant.email]


def test_a_refusal_needs_a_reason_and_tells_the_declarant(client, gironde):
    network, coordinator = gironde
    declarant = UserFactory()
    client.force_login(declarant)
    _declare(client, name="<script>alert(1)</script>")
    request = ChangeRequest.objects.get()
    with pytest.raises(ValidationError):
        moderation.change_request_refuse(user=coordinator, request=request, reason="")
    moderation.change_request_refuse(user=coordinator, request=request, reason="Fiche de test.")
    assert "Fiche de test." in mail.outbox[-1].body
    assert mail.outbox[-1].to == [declarant.email]
    assert not Amap.objects.exists()


def test_a_coordinator_declares_an_amap_in_their_territory_at_once(client, gironde):
    _network, coordinator = gironde
    client.force_login(coordinator)
    _declare(client)
    assert Amap.objects.filter(name="AMAP du Nouveau Monde").exists()
    assert not ChangeRequest.objects.exists()


def test_a_coordinator_of_another_network_cannot_moderate(gironde):
    _network, _coordinator = gironde
    other = NetworkFactory(name="AMAP Landes", slug="amap-landes", departments=["40"])
    stranger = UserFactory()
    other.admins.add(stranger)
    amap = AmapFactory()
    request = moderation.change_request_submit(
        user=UserFactory(), kind=ChangeRequest.Kind.CLAIM, entry_type="amap", data={}, entry=amap
    )
    assert moderation.pending_for_network(other) == []
    with pytest.raises(Exception, match="coordinateur"):
        moderation.change_request_approve(user=stranger, request=request)


def test_a_proposed_edit_is_applied_only_on_approval(client, gironde):
    network, coordinator = gironde
    amap = AmapFactory(name="AMAP des Chartrons", address="Place de la Comédie", commune=commune("33063"))
    client.force_login(UserFactory())
    client.post(
        reverse("directory:amap_propose", args=[amap.pk]),
        {
            "name": "AMAP des Chartrons (nouveau nom)",
            "address": "Place de la Comédie, 33000 Bordeaux",
            "delivery_frequency": "weekly",
            "accepting_members": "open",
        },
    )
    amap.refresh_from_db()
    assert amap.name == "AMAP des Chartrons"
    request = ChangeRequest.objects.get(kind=ChangeRequest.Kind.EDIT)
    moderation.change_request_approve(
        user=coordinator,
        request=request,
        cleaned={"name": "AMAP des Chartrons (nouveau nom)"},
    )
    amap.refresh_from_db()
    assert amap.name == "AMAP des Chartrons (nouveau nom)"


def test_history_records_who_changed_what_and_a_revert_is_itself_recorded(client, gironde):
    _network, coordinator = gironde
    amap = AmapFactory(name="AMAP d'origine")
    amap.name = "AMAP vandalisée"
    amap.save()
    client.force_login(coordinator)
    page = client.get(reverse("directory:entry_history", args=["amap", amap.pk]))
    assert "AMAP vandalisée" in page.content.decode()
    first = amap.history.order_by("history_date").first()
    client.post(reverse("directory:entry_history_revert", args=["amap", amap.pk, first.history_id]))
    amap.refresh_from_db()
    assert amap.name == "AMAP d'origine"
    latest = amap.history.first()
    assert latest.history_user == coordinator
    assert latest.history_change_reason.startswith("Rétablissement de la version du")
    assert amap.history.count() == 3


def test_a_farm_s_history_never_shows_its_exact_location(client):
    farm = FarmFactory(name="Ferme cachée")
    manager = UserFactory()
    farm.managers.add(manager)
    farm.location = BORDEAUX  # its exact point moves (was Libourne)
    farm.save()
    client.force_login(manager)
    body = client.get(reverse("directory:entry_history", args=["ferme", farm.pk])).content.decode()
    assert "-0.5792" not in body and "44.8378" not in body


def test_partnership_changes_are_in_the_history_of_the_amap_and_of_the_farm(client, gironde):
    _network, coordinator = gironde
    amap = AmapFactory(name="AMAP des Chartrons")
    farm = FarmFactory(name="Ferme du Grand Pré")
    legumes = product("legumes")
    (started,) = directory_services.partnerships_upsert(
        source="manual",
        changes=[
            directory_services.PartnershipChange(amap=amap, farm=farm, product=legumes, since=dt.date(2024, 4, 2))
        ],
    )
    started = started.obj
    directory_services.partnerships_upsert(
        source="manual",
        changes=[
            directory_services.PartnershipChange(
                amap=amap, farm=farm, product=legumes, is_active=False, until=dt.date(2026, 9, 29)
            )
        ],
    )
    Partnership.objects.get(pk=started.pk).delete()
    assert [r.history_type for r in Partnership.history.filter(amap_id=amap.pk).order_by("history_date")] == [
        "+",
        "~",
        "-",
    ]

    client.force_login(coordinator)
    page = html.unescape(client.get(reverse("directory:entry_history", args=["amap", amap.pk])).content.decode())
    section = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", page.split('id="partnership-history"')[1]))
    assert "(création) : Ferme du Grand Pré · Légumes · en cours, depuis le 2 avril 2024" in section
    ended = "(modification) : Ferme du Grand Pré · Légumes · terminé, depuis le 2 avril 2024, jusqu'au"
    ended += " 29 septembre 2026"
    assert ended in section
    assert "(suppression) : Ferme du Grand Pré" in section
    page = html.unescape(client.get(reverse("directory:entry_history", args=["ferme", farm.pk])).content.decode())
    assert "(création) : AMAP des Chartrons · Légumes" in re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", page))
