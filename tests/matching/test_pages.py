"""The board, annonce pages, contact through the platform, partnerships concluded, alerts and digests."""

import datetime

import psycopg
import pytest
from django.core import mail
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from directory.models import Amap, Partnership
from matching import bulk, services
from matching.models import Annonce, Match, SavedSearch, Thread
from matching.selectors import matches_for_annonce
from tests.factories import BORDEAUX, LIBOURNE, AmapFactory, FarmFactory, PartnershipFactory, UserFactory, product

from .conftest import amap_annonce, farm_annonce, point_at

pytestmark = pytest.mark.django_db


def test_board_lists_open_annonces_with_filters_and_a_map(client):
    farm = FarmFactory(location=LIBOURNE, products=["oeufs"])
    eggs = farm_annonce(farm, offered=("oeufs",))
    amap = AmapFactory(location=BORDEAUX)
    bread = amap_annonce(amap, wanted=("pain",))
    old = amap_annonce(AmapFactory(location=BORDEAUX), wanted=("miel",))
    Annonce.objects.filter(pk=old.pk).update(expires_on=timezone.localdate() - datetime.timedelta(days=1))

    page = client.get(reverse("matching:board")).content.decode()
    assert str(eggs) in page and str(bread) in page and str(old) not in page
    assert "2 annonces" in page
    assert "atlas-map" in page  # the map of the annonces

    page = client.get(reverse("matching:board"), {"produit": "pain"}).content.decode()
    assert str(bread) in page and str(eggs) not in page
    page = client.get(reverse("matching:board"), {"type": "paysan_cherche_amap", "departement": "33"}).content.decode()
    assert str(eggs) in page and str(bread) not in page
    response = client.get(reverse("matching:board"), {"departement": "999"})
    assert response.status_code == 200
    assert "Sélectionnez un choix valide" in response.content.decode()


def test_owner_sees_ranked_matches_with_reasons_others_do_not(client):
    user = UserFactory()
    farm = FarmFactory(location=LIBOURNE)
    AmapFactory(name="AMAP des Quais", location=point_at(LIBOURNE, km=12))
    annonce = farm_annonce(farm, user=user)

    client.force_login(user)
    page = client.get(annonce.get_absolute_url()).content.decode()
    assert "AMAP des Quais" in page
    assert "aucun producteur d&#x27;œufs actuellement" in page
    assert "Partenariat conclu" in page and "Contacter" in page

    client.force_login(UserFactory())
    page = client.get(annonce.get_absolute_url()).content.decode()
    assert "AMAP des Quais" not in page
    assert "Contacter" in page  # a stranger may write to the publisher


def test_publishing_through_the_page(client):
    user = UserFactory()
    amap = AmapFactory(location=BORDEAUX, delivery_weekdays=[2])
    amap.managers.add(user)
    client.force_login(user)
    response = client.post(
        reverse("matching:annonce_create") + f"?amap={amap.pk}",
        {"products": [product("oeufs").pk], "radius_km": 40, "shares": 25, "delivery_place": ""},
    )
    annonce = Annonce.objects.get()
    assert response.status_code == 302 and response.url == annonce.get_absolute_url()
    assert annonce.amap == amap and annonce.delivery_weekdays == [2]  # the AMAP's day by default
    assert annonce.location == amap.location

    response = client.post(
        reverse("matching:annonce_create") + f"?amap={amap.pk}",
        {"products": [product("pain").pk], "radius_km": 40, "delivery_place": "zzqx wwk"},
    )
    assert response.status_code == 200
    assert Annonce.objects.count() == 1


def test_contact_reaches_the_counterparts_managers_without_revealing_emails(client, django_capture_on_commit_callbacks):
    farmer = UserFactory(email="paysan.secret@example.org", display_name="Paul")
    farm = FarmFactory(location=LIBOURNE)
    annonce = farm_annonce(farm, user=farmer)
    amap = AmapFactory(name="AMAP des Quais", location=point_at(LIBOURNE, km=12))
    referent = UserFactory(email="referente.secret@example.org")
    amap.managers.add(referent)
    unrelated = AmapFactory(name="Hors de portée", location=point_at(LIBOURNE, km=90))

    client.force_login(farmer)
    refused = client.post(  # a counterpart that is not among the matches
        reverse("matching:annonce_contact", args=[annonce.pk]),
        {"recipient_type": "amap", "recipient_id": unrelated.pk, "body": "Bonjour"},
    )
    assert refused.status_code == 403
    with django_capture_on_commit_callbacks(execute=True):  # e-mails leave once the message is saved
        response = client.post(
            reverse("matching:annonce_contact", args=[annonce.pk]),
            {"recipient_type": "amap", "recipient_id": amap.pk, "body": "Bonjour, je produis des œufs."},
        )
    thread = Thread.objects.get()
    assert response.status_code == 302 and response.url == thread.get_absolute_url()
    assert thread.recipient_amap == amap and thread.sender_farm == farm
    assert [m.to for m in mail.outbox] == [["referente.secret@example.org"]]
    assert "paysan.secret@example.org" not in mail.outbox[0].body
    assert "Bonjour, je produis des œufs." in mail.outbox[0].body
    page = client.get(thread.get_absolute_url()).content.decode()
    assert "referente.secret@example.org" not in page

    # The référente answers on the platform; the farmer is told by e-mail.
    client.force_login(referent)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(thread.get_absolute_url(), {"body": "Avec plaisir, venez mardi."})
    assert mail.outbox[-1].to == ["paysan.secret@example.org"]
    assert "referente.secret@example.org" not in mail.outbox[-1].body
    # Anyone else gets a 404 on the thread.
    client.force_login(UserFactory())
    assert client.get(thread.get_absolute_url()).status_code == 404


def test_partnership_concluded_decrements_then_closes_the_annonce(client):
    user = UserFactory()
    farm = FarmFactory(location=LIBOURNE)
    first = AmapFactory(name="Première", location=point_at(LIBOURNE, km=8))
    second = AmapFactory(name="Seconde", location=point_at(LIBOURNE, km=9, azimuth=10))
    annonce = farm_annonce(farm, user=user, shares=50)
    client.force_login(user)

    url = reverse("matching:annonce_partnership", args=[annonce.pk])
    client.post(url, {"counterpart_type": "amap", "counterpart_id": first.pk, "shares": 30})
    annonce.refresh_from_db()
    assert annonce.shares == 20 and annonce.status == "open"
    assert Partnership.objects.filter(amap=first, farm=farm, product=product("oeufs"), is_active=True).exists()
    # The new partner no longer lacks eggs: it drops out of the matches.
    page = client.get(annonce.get_absolute_url()).content.decode()
    assert f'data-counterpart="amap-{first.pk}"' not in page
    assert f'data-counterpart="amap-{second.pk}"' in page
    assert "vous livrez déjà « Première »" in page  # now part of the farm's tour

    client.post(url, {"counterpart_type": "amap", "counterpart_id": second.pk, "shares": 20})
    annonce.refresh_from_db()
    assert annonce.shares == 0 and annonce.status == "fulfilled"


def test_match_all_stores_ranked_matches_and_the_digest_sends_them_once(client):
    farmer = UserFactory(email="paysan@example.org")
    farm = FarmFactory(location=LIBOURNE)
    here = farm.public_location  # matching measures from the farm's public point (issue 12)
    annonce = farm_annonce(farm, user=farmer)
    AmapFactory(name="AMAP Alpha", location=point_at(here, km=5))
    AmapFactory(name="AMAP Bravo", location=point_at(here, km=15, azimuth=30))
    # A name with the characters COPY and JSON escape, on the farm's existing tour.
    odd = AmapFactory(name='AMAP "Les Bios" \\ Nord\tEst', location=point_at(here, km=14, azimuth=30))
    PartnershipFactory(amap=odd, farm=farm, product=product("oeufs"))

    call_command("match_all", k=10, verbosity=0)
    stored = list(Match.objects.filter(annonce=annonce).order_by("rank"))
    # Bravo, 1 km from an AMAP the farm already delivers, outranks the nearer Alpha.
    assert [m.amap.name for m in stored] == ["AMAP Bravo", "AMAP Alpha"]
    assert f"vous livrez déjà « {odd.name} » à 1,0 km" in stored[0].reasons
    assert stored[1].reasons[0].startswith("à 5,0 km") and stored[0].score >= stored[1].score
    # What is stored is what the annonce's page computes.
    live = {m.counterpart_id: m for m in matches_for_annonce(annonce=annonce, with_drive_times=False)}
    for match in stored:
        assert match.components == pytest.approx(live[match.amap_id].components, abs=1e-4)
        assert match.reasons == live[match.amap_id].reasons
        assert match.score == pytest.approx(live[match.amap_id].score, abs=1e-4)
    first_seen = stored[1].first_seen_at

    call_command("send_digest", verbosity=0)
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["paysan@example.org"]
    assert "AMAP Alpha" in mail.outbox[0].body and "AMAP Bravo" in mail.outbox[0].body
    call_command("send_digest", verbosity=0)
    assert len(mail.outbox) == 1  # nothing new: nothing sent

    # Recomputing keeps what was already announced; a new AMAP is announced alone.
    AmapFactory(name="AMAP Charlie", location=point_at(here, km=3, azimuth=200))
    call_command("match_all", verbosity=0)
    assert Match.objects.get(annonce=annonce, amap__name="AMAP Alpha").first_seen_at == first_seen
    call_command("send_digest", verbosity=0)
    assert len(mail.outbox) == 2
    assert "AMAP Charlie" in mail.outbox[1].body and "AMAP Alpha" not in mail.outbox[1].body

    # Matches are derived data without database foreign keys: deleting an AMAP still removes its matches.
    Amap.objects.get(name="AMAP Charlie").delete()
    assert not Match.objects.filter(amap__name="AMAP Charlie").exists()
    assert Match.objects.filter(annonce=annonce).count() == 2


def test_saved_search_digest_tells_about_new_annonces_nearby_once(client):
    user = UserFactory(email="amap@example.org")
    client.force_login(user)
    response = client.post(
        reverse("matching:alerts"),
        {"target": "farm_annonces", "products": [product("oeufs").pk], "place": "Libourne", "radius_km": 20},
    )
    assert response.status_code == 302
    search = SavedSearch.objects.get()
    assert search.place == "Libourne (33500)"

    near = farm_annonce(FarmFactory(name="Ferme proche", location=point_at(LIBOURNE, km=8)), offered=("oeufs",))
    farm_annonce(FarmFactory(name="Ferme lointaine", location=point_at(LIBOURNE, km=60)), offered=("oeufs",))
    farm_annonce(FarmFactory(name="Ferme à pain", location=point_at(LIBOURNE, km=5)), offered=("pain",))

    report = services.digest_send()
    assert report.alerts == 1
    mine = [m for m in mail.outbox if m.to == ["amap@example.org"]]
    assert len(mine) == 1
    assert str(near) in mine[0].body and "Ferme lointaine" not in mine[0].body and "Ferme à pain" not in mine[0].body
    services.digest_send()
    assert len([m for m in mail.outbox if m.to == ["amap@example.org"]]) == 1


def test_alert_with_an_unknown_place_is_refused_in_french(client):
    client.force_login(UserFactory())
    response = client.post(reverse("matching:alerts"), {"target": "amaps", "place": "zzqx wwk", "radius_km": 20})
    assert response.status_code == 200
    assert not SavedSearch.objects.exists()


def test_expired_annonces_are_marked_and_leave_the_board(client):
    farm = FarmFactory(location=LIBOURNE)
    annonce = farm_annonce(farm)
    Annonce.objects.filter(pk=annonce.pk).update(expires_on=timezone.localdate() - datetime.timedelta(days=1))
    assert client.get(annonce.get_absolute_url()).status_code == 404
    assert services.annonce_expire_due() == 1
    annonce.refresh_from_db()
    assert annonce.status == "expired"


def test_match_all_that_fails_while_writing_leaves_the_stored_matches_as_they_were(monkeypatch):
    farm = FarmFactory(location=LIBOURNE)
    annonce = farm_annonce(farm)
    for km in (4, 9, 13):
        AmapFactory(location=point_at(LIBOURNE, km=km, azimuth=km * 20))
    call_command("match_all", verbosity=0)
    before = list(Match.objects.filter(annonce=annonce).order_by("rank").values_list("pk", "amap_id", "score"))
    assert len(before) == 3

    AmapFactory(location=point_at(LIBOURNE, km=2))
    monkeypatch.setattr(bulk.storage, "binary_rows", lambda result: b"not a COPY row")
    with pytest.raises(psycopg.Error):
        call_command("match_all", verbosity=0)

    after = list(Match.objects.filter(annonce=annonce).order_by("rank").values_list("pk", "amap_id", "score"))
    assert after == before


@pytest.mark.parametrize(("stated", "shown"), [(45, "45"), (None, "30")])
def test_new_annonce_starts_from_the_farms_radius_or_the_forms_default_when_unknown(client, stated, shown):
    user = UserFactory()
    farm = FarmFactory(location=LIBOURNE, delivery_radius_km=stated)
    farm.managers.add(user)
    client.force_login(user)

    page = client.get(reverse("matching:annonce_create") + f"?ferme={farm.pk}").content.decode()

    assert f'name="radius_km" value="{shown}"' in page
