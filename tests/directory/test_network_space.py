"""A network's space: counts that agree, the coordinators' table and team, web imports, announcements, freshness."""

import csv
import datetime as dt
import html
import io
import re

import pytest
from django.contrib.auth.hashers import make_password
from django.contrib.gis.geos import MultiPolygon, Point, Polygon
from django.core import mail
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from accounts import permissions
from accounts.models import User
from coverage import figures
from directory import services_coordination as services
from directory.models import (
    Amap,
    AmapManager,
    Announcement,
    AnnouncementDelivery,
    AnnouncementOptOut,
    ChangeRequest,
    Farm,
    ImportRun,
    Network,
    ProductCategory,
)
from directory.selectors.announcements import announcement_recipients
from directory.selectors.network import network_counts, pending_requests
from directory.tasks import announcement_deliver, freshness_remind_due
from geo.models import Department, Region
from tests.factories import AmapFactory, FarmFactory, NetworkFactory, UserFactory, commune
from tests.test_jobs import run_worker

pytestmark = pytest.mark.django_db


def run_jobs_here(queue: str) -> int:
    """Run the queue's waiting jobs on the test's connection (its rows are not committed).

    A real worker runs sync tasks in pool threads with connections of their own, which cannot
    see this test's transaction; jobs that only send mail go through `run_worker` instead.
    """
    from procrastinate.contrib.django import app
    from procrastinate.contrib.django.models import ProcrastinateJob

    ran = 0
    while jobs := list(ProcrastinateJob.objects.filter(queue_name=queue, status="todo").order_by("pk")):
        for job in jobs:
            app.tasks[job.task_name](**job.args)
            ProcrastinateJob.objects.filter(pk=job.pk).update(status="succeeded")
            ran += 1
    return ran


@pytest.fixture
def queued_mail(settings):
    """Production's set-up: e-mails become jobs that a worker sends (locmem behind it here)."""
    settings.EMAIL_BACKEND = "accounts.mail.QueuedEmailBackend"
    settings.EMAIL_DELIVERY_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


@pytest.fixture
def gironde():
    """A Gironde network: 2 member AMAPs (one closed), 3 active AMAPs and 2 farms in its territory, 1 elsewhere."""
    network = NetworkFactory(name="AMAP Gironde", slug="amap-gironde", departments=[Department.objects.get(code="33")])
    members = [AmapFactory(name="AMAP des Chartrons"), AmapFactory(name="AMAP fermée", status=Amap.Status.CLOSED)]
    network.amaps.add(*members)
    AmapFactory(name="AMAP de Mérignac")
    AmapFactory(name="AMAP de Talence")
    FarmFactory(name="Ferme de Libourne")
    network.farms.add(FarmFactory(name="Ferme membre"))
    from django.contrib.gis.geos import Point

    AmapFactory(name="AMAP de Lyon", location=Point(4.8357, 45.7640, srid=4326), commune=commune("69123"))
    coordinator = UserFactory(email="coordination@amap33.org", display_name="Coordination 33")
    network.admins.add(coordinator)
    return network


def test_network_page_coverage_and_space_say_the_same_counts(client, gironde):
    counts = network_counts(network=gironde)
    # Members: the two attached AMAPs (any status) and the one attached farm.
    assert (counts.member_amaps, counts.member_farms) == (2, 1)
    # Territory: active AMAPs of Gironde (the closed member is not active; Lyon is elsewhere), active farms.
    assert (counts.territory_amaps, counts.territory_farms) == (3, 2)
    result = figures.coverage_for_network(network=gironde, radius_km=10, use_cache=False)
    assert (result["figures"]["amaps"], result["figures"]["farms"]) == (counts.territory_amaps, counts.territory_farms)

    client.force_login(User.objects.get(email="coordination@amap33.org"))
    pages = {
        "network": reverse("directory:network_detail", args=[gironde.slug]),
        "coverage": reverse("coverage:network_coverage", args=[gironde.slug]),
        "space": reverse("directory:network_space", args=[gironde.slug]),
    }
    for name, url in pages.items():
        page = html.unescape(client.get(url).content.decode())
        block = re.search(r'<div class="space-figures" id="network-counts">(.*?)</div>', page, re.S).group(1)
        text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", block))
        assert "Membres du réseau : 2 AMAP, 1 ferme" in text, name
        assert "Dans son territoire : 3 AMAP actives, 2 fermes en activité" in text, name


def test_space_lists_territory_entries_stale_first_with_missing_contacts(client, gironde):
    fresh = Amap.objects.get(name="AMAP de Talence")
    fresh.verified_at = timezone.now()
    fresh.contact_email = "talence@example.org"
    fresh.save()
    client.force_login(User.objects.get(email="coordination@amap33.org"))
    page = client.get(reverse("directory:network_space", args=[gironde.slug])).content.decode()
    table = re.search(r'<table class="space-table" id="space-amaps">(.*?)</table>', page, re.S).group(1)
    names = re.findall(r'href="/amap/\d+/">([^<]+)</a>', table)
    assert "AMAP de Lyon" not in names
    assert names[-1] == "AMAP de Talence"  # the only verified one comes last
    assert table.count("manquant") == 3
    only_missing = client.get(reverse("directory:network_space", args=[gironde.slug]), {"sans_contact": "1"})
    assert "AMAP de Talence" not in only_missing.content.decode()
    assert reverse("accounts:amap_edit", args=[fresh.pk]) in page
    assert "/reseau/amap-gironde/moderation/" in page
    assert reverse("coverage:network_coverage", args=[gironde.slug]) in page
    assert "<iframe" in html.unescape(page)


def test_space_export_is_formula_safe_and_never_has_coordinates(client, gironde):
    AmapFactory(name='=HYPERLINK("http://x")')
    client.force_login(User.objects.get(email="coordination@amap33.org"))
    response = client.get(reverse("directory:network_export", args=[gironde.slug, "amaps"]))
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0][:3] == ["id", "nom", "commune"]
    assert any(row[1] == '\'=HYPERLINK("http://x")' for row in rows[1:])
    farms = client.get(reverse("directory:network_export", args=[gironde.slug, "fermes"])).content.decode()
    farm = Farm.objects.get(name="Ferme de Libourne")
    assert f"{farm.location.x:.4f}" not in farms and "Ferme de Libourne" in farms


def test_coordinators_add_and_remove_each_other_but_keep_one(client, gironde):
    coordinator = User.objects.get(email="coordination@amap33.org")
    colleague = UserFactory(email="colleague@amap33.org")
    client.force_login(coordinator)
    url = reverse("directory:network_team", args=[gironde.slug])
    client.post(url, {"email": "Colleague@amap33.org"})
    assert set(gironde.admins.all()) == {coordinator, colleague}
    unknown = client.post(url, {"email": "nobody@example.org"}, follow=True)
    assert "doit d'abord s'inscrire" in html.unescape(unknown.content.decode())
    client.post(url, {"remove": colleague.pk})
    last = client.post(url, {"remove": coordinator.pk}, follow=True)
    assert list(gironde.admins.all()) == [coordinator]
    assert "au moins un·e coordinateur·rice" in html.unescape(last.content.decode())


def test_creating_a_network_confirms_and_opens_its_space(client, db):
    staff = UserFactory(email="staff@example.org", is_staff=True)
    client.force_login(staff)
    dashboard = client.get(reverse("accounts:dashboard")).content.decode()
    assert reverse("coverage:network_new") in dashboard
    response = client.post(
        reverse("coverage:network_new"),
        {"name": "AMAP des Landes", "level": "departmental", "status": "emerging", "departments": ["40"]},
        follow=True,
    )
    network = Network.objects.get(name="AMAP des Landes")
    assert response.redirect_chain[-1][0] == reverse("directory:network_space", args=[network.slug])
    assert "créé : voici son espace de coordination" in html.unescape(response.content.decode())
    assert (
        reverse("directory:network_space", args=[network.slug])
        in client.get(reverse("accounts:dashboard")).content.decode()
    )


# --- imports from the web --------------------------------------------------------------------

CSV = (
    "id,nom,ville,code_postal,jour,produits\n"
    "G1,AMAP du Jardin Public,Bordeaux,33000,mardi,légumes\n"
    'G2,AMAP de Pessac,Pessac,33600,jeudi,"œufs, pain"\n'
)


def test_a_coordinator_uploads_checks_then_commits_an_import_through_the_worker(client, gironde):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client.force_login(User.objects.get(email="coordination@amap33.org"))
    upload = SimpleUploadedFile("amaps.csv", CSV.encode(), content_type="text/csv")
    response = client.post(reverse("directory:network_import", args=[gironde.slug]), {"file": upload, "kind": "amap"})
    run = ImportRun.objects.get()
    assert response.url == reverse("directory:network_import_run", args=[gironde.slug, run.pk])
    status_url = reverse("directory:network_import_status", args=[gironde.slug, run.pk])
    assert client.get(status_url).json()["status"] == "queued"

    assert run_jobs_here("imports") == 1
    status = client.get(status_url).json()
    assert status["finished"] and status["percent"] == 100 and status["status"] == "checked"
    page = html.unescape(client.get(response.url).content.decode())
    assert "2 lignes lues" in page and "AMAP : 2 à créer" in page
    assert not Amap.objects.filter(name="AMAP de Pessac").exists()  # a dry run

    client.post(response.url)
    assert run_jobs_here("imports") == 1
    run.refresh_from_db()
    assert run.status == ImportRun.Status.DONE and run.report["committed"]
    pessac = Amap.objects.get(name="AMAP de Pessac")
    assert gironde.amaps.filter(pk=pessac.pk).exists()  # imported into this network
    assert "Import enregistré" in html.unescape(client.get(response.url).content.decode())


def test_a_web_import_shows_its_progress_chunk_by_chunk_then_its_report(client, gironde, monkeypatch):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from directory import importing, tasks

    written = []

    class Recorded(tasks._RunProgress):
        """What the job writes to the run's row (on a connection of its own) for the page to poll."""

        def __call__(self, phase, done, total):
            super().__call__(phase, done, total)
            written.append((phase, done, total))

    monkeypatch.setattr(tasks, "_RunProgress", Recorded)
    monkeypatch.setattr(tasks, "PROGRESS_EVERY_S", 0)
    monkeypatch.setattr(importing, "CHUNK_ROWS", 2)
    client.force_login(User.objects.get(email="coordination@amap33.org"))
    rows = "".join(f"P{n},AMAP {n},Pessac,33600,jeudi,légumes\n" for n in range(5))
    upload = SimpleUploadedFile("cinq.csv", ("id,nom,ville,code_postal,jour,produits\n" + rows).encode())
    page_url = client.post(
        reverse("directory:network_import", args=[gironde.slug]), {"file": upload, "kind": "amap"}
    ).url
    run = ImportRun.objects.get()
    status_url = reverse("directory:network_import_status", args=[gironde.slug, run.pk])

    # Half-way through, as the job leaves the row after its first chunk: the bar and the numbers.
    ImportRun.objects.filter(pk=run.pk).update(status=ImportRun.Status.CHECKING, phase="check", done=2, total=5)
    assert client.get(status_url).json() | {"status_label": ""} == {
        "status": "checking",
        "status_label": "",
        "phase": "check",
        "done": 2,
        "total": 5,
        "percent": 40,
        "finished": False,
    }
    page = html.unescape(client.get(page_url).content.decode())
    assert 'value="40"' in page and "vérification en cours — 2/5" in page

    assert run_jobs_here("imports") == 1
    # The job told the page after each chunk of rows, not after each row.
    assert written == [("read", 0, 0), ("check", 0, 5), ("check", 2, 5), ("check", 4, 5), ("check", 5, 5)]
    assert client.get(status_url).json()["percent"] == 100
    page = html.unescape(client.get(page_url).content.decode())
    assert "5 lignes lues" in page and "AMAP : 5 à créer" in page and 'id="import-commit"' in page


def test_an_import_with_errors_shows_them_by_row_and_column_and_cannot_be_committed(client, gironde):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client.force_login(User.objects.get(email="coordination@amap33.org"))
    bad = "id,nom,ville\nX1,AMAP sans lieu,\n"
    client.post(
        reverse("directory:network_import", args=[gironde.slug]),
        {"file": SimpleUploadedFile("bad.csv", bad.encode()), "kind": "amap"},
    )
    run_jobs_here("imports")
    run = ImportRun.objects.get()
    assert run.status == ImportRun.Status.FAILED and not run.ok
    assert any("ligne 2" in e and "ville" in e for e in run.report["errors"])
    with pytest.raises(Exception, match="vérifié sans erreur"):
        services.import_run_commit(user=User.objects.get(email="coordination@amap33.org"), run=run)


def test_import_directory_prints_progress_with_rows_per_second_and_time_left(tmp_path, db):
    path = tmp_path / "amaps.csv"
    path.write_text(CSV, encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    call_command("import_directory", str(path), "--kind", "amap", stdout=out, stderr=err)
    assert "lecture du fichier" in err.getvalue()
    assert re.search(r"vérification : 2/2 lignes, [\d\u202f]+ lignes/s, terminé en", err.getvalue())
    assert "Simulation" in out.getvalue() and "lignes/s" not in out.getvalue()


def test_progress_line_says_time_left():
    from directory.importing.progress import ProgressLine

    line = ProgressLine(lambda text: None).line("write", 12_500, 50_000, 25.0)
    assert line == "écriture : 12\u202f500/50\u202f000 lignes, 500 lignes/s, reste ~75 s"


# --- announcements ---------------------------------------------------------------------------


def _people(count: int, prefix: str) -> list[User]:
    password = make_password("x")
    User.objects.bulk_create(
        [User(email=f"{prefix}{i}@example.org", display_name=f"{prefix} {i}", password=password) for i in range(count)]
    )
    return list(User.objects.filter(email__startswith=prefix).order_by("pk"))


def test_an_announcement_reaches_a_thousand_people_once_each_and_unsubscribes_are_honoured(
    client, gironde, queued_mail
):
    amaps = list(Amap.objects.filter(commune__department_id="33", status=Amap.Status.ACTIVE))
    admins = _people(700, "admin")
    AmapManager.objects.bulk_create(
        [AmapManager(amap=amaps[i % len(amaps)], user=u, role=AmapManager.Role.ADMIN) for i, u in enumerate(admins)]
    )
    farmers = _people(300, "paysan")
    farm = Farm.objects.get(name="Ferme de Libourne")
    farm.managers.add(*farmers)
    # Outside the territory: never written to.
    lyon_admin = UserFactory(email="lyon@example.org")
    AmapManager.objects.create(amap=Amap.objects.get(name="AMAP de Lyon"), user=lyon_admin)
    coordinator = User.objects.get(email="coordination@amap33.org")
    client.force_login(coordinator)
    url = reverse("directory:network_announcements", args=[gironde.slug])
    data = {"subject": "Assemblée générale", "body": "Rendez-vous le 12 à Bègles.", "audiences": ["admins", "farmers"]}
    response = client.post(url, data, follow=True)
    page = html.unescape(response.content.decode())
    assert "1000 destinataires" in page, re.findall(r"(?:message[^>]*|error[^>]*)>([^<]*)<", page)
    announcement = Announcement.objects.get()
    assert mail.outbox == []  # nothing leaves in the request

    run_jobs_here("announcements")  # the fan-out: 1,000 e-mail jobs queued
    assert mail.outbox == []
    run_worker("emails")  # a real worker sends them
    assert len(mail.outbox) == 1000
    for message in mail.outbox:
        assert len(message.to) == 1 and not message.cc and not message.bcc  # nobody sees another address
    assert len({m.to[0] for m in mail.outbox}) == 1000
    assert "lyon@example.org" not in {m.to[0] for m in mail.outbox}
    assert AnnouncementDelivery.objects.filter(announcement=announcement).count() == 1000

    # The job run again (a retry) sends nothing twice.
    announcement_deliver.defer(announcement_id=announcement.pk)
    run_jobs_here("announcements")
    run_worker("emails")
    assert len(mail.outbox) == 1000
    announcement.refresh_from_db()
    assert announcement.sent_at is not None and announcement.recipient_count == 1000

    # Unsubscribe links, without logging in: one from this network, one from every network.
    client.logout()
    body = mail.outbox[0].body
    network_link, all_link = re.findall(r"http://[^\s]+/annonces-reseau/desinscription/[^\s]+/", body)
    assert mail.outbox[0].extra_headers["List-Unsubscribe"] == f"<{network_link}>"
    first = User.objects.get(email=mail.outbox[0].to[0])
    path = network_link.split("://", 1)[1].split("/", 1)[1]
    assert "Me désinscrire" in html.unescape(client.get("/" + path).content.decode())
    assert not AnnouncementOptOut.objects.exists()  # a GET changes nothing
    client.post("/" + path)
    second = User.objects.get(email=mail.outbox[1].to[0])
    all_path = re.findall(r"http://[^\s]+/annonces-reseau/desinscription/[^\s]+/", mail.outbox[1].body)[1]
    client.post("/" + all_path.split("://", 1)[1].split("/", 1)[1])
    assert client.get("/annonces-reseau/desinscription/forged/").status_code == 404

    mail.outbox.clear()
    client.force_login(coordinator)
    client.post(url, {**data, "subject": "Deuxième"})
    run_jobs_here("announcements")
    run_worker("emails")
    recipients = {m.to[0] for m in mail.outbox}
    assert len(recipients) == 998 and first.email not in recipients and second.email not in recipients
    archive = html.unescape(client.get(url).content.decode())
    assert "Assemblée générale" in archive and "Deuxième" in archive


def test_an_announcement_that_reaches_nobody_is_refused(client, gironde):
    client.force_login(User.objects.get(email="coordination@amap33.org"))
    url = reverse("directory:network_announcements", args=[gironde.slug])
    response = client.post(url, {"subject": "Test", "body": "…", "audiences": ["referents"]})
    assert response.status_code == 400
    assert "Personne ne recevrait ce message" in html.unescape(response.content.decode())
    assert not Announcement.objects.exists()


def test_announcements_filter_by_department_and_product(gironde):
    chartrons = Amap.objects.get(name="AMAP des Chartrons")
    chartrons.products.add(ProductCategory.objects.get(slug="miel"))
    honey, other = UserFactory(), UserFactory()
    AmapManager.objects.create(amap=chartrons, user=honey)
    AmapManager.objects.create(amap=Amap.objects.get(name="AMAP de Mérignac"), user=other)

    announcement = Announcement(network=gironde, subject="s", body="b", audiences=["admins"])
    assert set(announcement_recipients(announcement=announcement)) == {honey, other}
    announcement.product = ProductCategory.objects.get(slug="miel")
    assert list(announcement_recipients(announcement=announcement)) == [honey]
    announcement.product, announcement.department = None, Department.objects.get(code="69")
    assert list(announcement_recipients(announcement=announcement)) == []


# --- freshness -------------------------------------------------------------------------------


def test_a_year_old_entry_gets_one_reminder_and_one_click_marks_it_verified(client, gironde):
    amap = Amap.objects.get(name="AMAP de Talence")
    admin = UserFactory(email="talence@example.org")
    AmapManager.objects.create(amap=amap, user=admin)
    Amap.objects.filter(pk=amap.pk).update(created_at=timezone.now() - dt.timedelta(days=400))
    mail.outbox.clear()
    assert freshness_remind_due() == 1
    assert freshness_remind_due() == 0  # once a year, not every day
    [message] = mail.outbox
    assert message.to == ["talence@example.org"]
    link = re.search(r"http://\S+/fiche/verifier/\S+/", message.body).group(0)
    path = "/" + link.split("://", 1)[1].split("/", 1)[1]
    page = html.unescape(client.get(path).content.decode())
    assert "Tout est juste : je confirme" in page and "Fiche jamais vérifiée" in page
    client.post(path)
    amap.refresh_from_db()
    assert amap.verified_at is not None
    detail = html.unescape(client.get(reverse("directory:amap_detail", args=[amap.pk])).content.decode())
    assert "Fiche vérifiée le" in detail
    assert client.get("/fiche/verifier/altered/").status_code == 404


def _request(kind, name, *, where="33063", point=None, status="pending", **entry):
    return ChangeRequest.objects.create(
        kind=kind,
        entry_type="farm" if "farm" in entry else "amap",
        name=name,
        commune=commune(where),
        location=point or Point(-0.5792, 44.8378, srid=4326),
        author=UserFactory(),
        status=status,
        **entry,
    )


def test_the_space_counts_what_waits_in_its_moderation_queue_and_links_to_it(client, gironde):
    lyon = Point(4.8357, 45.7640, srid=4326)
    _request("create", "AMAP du Nouveau Monde")
    _request("edit", "AMAP de Talence (nouveau nom)", amap=Amap.objects.get(name="AMAP de Talence"))
    member_far_away = FarmFactory(name="Ferme lyonnaise membre", commune=commune("69123"), location=lyon)
    gironde.farms.add(member_far_away)
    _request("claim", "Ferme lyonnaise membre", where="69123", point=lyon, farm=member_far_away)
    # Not this network's: decided already, or elsewhere and about no member.
    _request("create", "AMAP déjà refusée", status="refused")
    _request("create", "AMAP de la Croix-Rousse", where="69123", point=lyon)

    client.force_login(User.objects.get(email="coordination@amap33.org"))
    page = html.unescape(client.get(reverse("directory:network_space", args=[gironde.slug])).content.decode())
    block = re.search(r'<p id="moderation-pending"[^>]*>(.*?)</p>', page, re.S).group(1)
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", block)).strip()
    assert text == (
        "3 demandes attendent votre modération (1 nouvelle fiche, 1 modification de fiche, 1 revendication) "
        "Ouvrir la file de modération"
    )
    assert f'href="{reverse("directory:network_moderation", args=[gironde.slug])}"' in block
    # The queue behind the link lists the same three.
    queue = html.unescape(client.get(reverse("directory:network_moderation", args=[gironde.slug])).content.decode())
    listed = re.findall(r'<li class="change-request">\s*<h2><a [^>]+>[^:]+: ([^<]+)</a>', queue)
    assert sorted(listed) == ["AMAP de Talence (nouveau nom)", "AMAP du Nouveau Monde", "Ferme lyonnaise membre"]

    # Once decided, nothing waits: the space says so.
    ChangeRequest.objects.update(status="approved")
    page = html.unescape(client.get(reverse("directory:network_space", args=[gironde.slug])).content.decode())
    assert "Aucune demande en attente de modération." in page


def test_the_queue_holds_what_the_coordinators_may_decide_whatever_the_kind_of_territory(gironde):
    lyon = Point(4.8357, 45.7640, srid=4326)
    merignac = Point(-0.6440, 44.8386, srid=4326)  # Mérignac centre (33281)
    bordeaux_box = MultiPolygon(Polygon.from_bbox((-0.60, 44.82, -0.55, 44.86)), srid=4326)
    drawn = NetworkFactory(name="Réseau émergent", slug="emergent", custom_territory=bordeaux_box)
    regional = NetworkFactory(name="AMAP Nouvelle-Aquitaine", slug="amap-na", level=Network.Level.REGIONAL)
    regional.regions.add(Region.objects.get(code="75"))
    national = NetworkFactory(name="Mouvement national", slug="national", level=Network.Level.NATIONAL)
    member = AmapFactory(name="AMAP membre à Lyon", commune=commune("69123"), location=lyon)
    national.amaps.add(member)
    _request("create", "Bordeaux centre")
    _request("create", "Mérignac", where="33281", point=merignac)
    _request("claim", "Lyon membre", where="69123", point=lyon, amap=member)
    _request("create", "Lyon", where="69123", point=lyon)
    _request("create", "Bordeaux refusée", status="refused")

    for network in (gironde, drawn, regional, national):
        by_rule = {r.name for r in ChangeRequest.objects.pending() if permissions.network_covers_entry(network, r)}
        assert {r.name for r in pending_requests(network=network)} == by_rule, network.slug
    assert {r.name for r in pending_requests(network=drawn)} == {"Bordeaux centre"}
    assert {r.name for r in pending_requests(network=national)} == {"Lyon membre"}
    assert {r.name for r in pending_requests(network=regional)} == {"Bordeaux centre", "Mérignac"}
