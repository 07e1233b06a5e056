"""Background jobs of the directory: web imports (check, then commit), announcements, freshness reminders."""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import connections, transaction
from django.urls import reverse
from django.utils import timezone
from procrastinate.contrib.django import app

from .importing import ImportReport, directory_import
from .models import Amap, AmapManager, Announcement, AnnouncementDelivery, Farm, ImportRun
from .selectors.announcements import announcement_recipients
from .selectors.network import STALE_AFTER
from .services_coordination import network_members_add_source, optout_token, verify_token

logger = logging.getLogger(__name__)

ANNOUNCEMENT_BATCH = 200  # recipients per transaction: a crash redoes at most one batch's check
REPORT_ISSUES_KEPT = 500  # errors and warnings kept for the page (the counts are exact)
PROGRESS_EVERY_S = 0.5


def _site() -> str:
    return getattr(settings, "SITE_URL", "http://127.0.0.1:8000").rstrip("/")


# --- imports from the web -----------------------------------------------------------------


class _RunProgress:
    """Writes an import's progress to its row through a connection of its own.

    The importer writes inside one transaction: progress saved through the job's connection
    would stay invisible to the page polling it until the very end.
    """

    def __init__(self, run_id: int):
        self.run_id = run_id
        self.last, self.phase = 0.0, ""
        self.connection = connections.create_connection("default")

    def __call__(self, phase: str, done: int, total: int) -> None:
        now = time.monotonic()
        if phase == self.phase and done < total and now - self.last < PROGRESS_EVERY_S:
            return
        self.last, self.phase = now, phase
        with self.connection.cursor() as cursor:
            cursor.execute(
                "UPDATE directory_importrun SET phase = %s, done = %s, total = %s, updated_at = now() WHERE id = %s",
                [phase, done, total, self.run_id],
            )

    def close(self) -> None:
        self.connection.close()


def _report_data(report: ImportReport) -> dict:
    return {
        "rows_read": report.rows_read,
        "errors": [str(issue) for issue in report.errors[:REPORT_ISSUES_KEPT]],
        "error_count": report.error_count,
        "warnings": [str(issue) for issue in report.warnings[:REPORT_ISSUES_KEPT]],
        "warning_count": report.warning_count,
        "notes": report.notes,
        "summary": report.summary_lines(),
        "committed": report.committed,
    }


def _run_import(run_id: int, *, commit: bool) -> None:
    run = ImportRun.objects.select_related("network").defer("content").get(pk=run_id)
    progress = _RunProgress(run_id)

    def join_network() -> None:
        # « Importer dans ce réseau »: what the file holds joins the network's members, in the same transaction.
        network_members_add_source(network=run.network, kind=run.kind, source=run.source)

    try:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"import{Path(run.filename).suffix.lower()}"
            # On disk, and out of memory, while the rows are streamed from it.
            path.write_bytes(ImportRun.objects.values_list("content", flat=True).get(pk=run_id))
            report = directory_import(
                path=path,
                kind=run.kind,
                source=run.source,
                commit=commit,
                progress=progress,
                on_written=join_network if run.kind in {"amap", "farm"} else None,
            )
    except Exception:
        ImportRun.objects.filter(pk=run_id).update(status=ImportRun.Status.FAILED, updated_at=timezone.now())
        raise
    finally:
        progress.close()
    report.path = run.filename
    with transaction.atomic():
        status = (
            ImportRun.Status.FAILED if not report.ok else ImportRun.Status.DONE if commit else ImportRun.Status.CHECKED
        )
        ImportRun.objects.filter(pk=run_id).update(
            status=status,
            ok=report.ok,
            report=_report_data(report),
            report_text=report.as_text(details=False),
            done=report.rows_read,
            total=report.rows_read,
            updated_at=timezone.now(),
        )


@app.task(queue="imports")
def import_check(*, run_id: int) -> None:
    """Dry run of an uploaded file: the row/column report, nothing written."""
    ImportRun.objects.filter(pk=run_id).update(status=ImportRun.Status.CHECKING)
    _run_import(run_id, commit=False)


@app.task(queue="imports")
def import_commit(*, run_id: int) -> None:
    """Write a checked file, in one transaction (all or nothing)."""
    _run_import(run_id, commit=True)


# --- announcements ------------------------------------------------------------------------


def _announcement_email(announcement: Announcement, user) -> EmailMessage:
    network = announcement.network
    here = _site() + reverse(
        "directory:announcement_optout", args=[optout_token(user_id=user.pk, network_id=network.pk)]
    )
    everywhere = _site() + reverse(
        "directory:announcement_optout", args=[optout_token(user_id=user.pk, network_id=None)]
    )
    body = (
        f"{announcement.body}\n\n"
        f"-- \n{network.name}, via AMAP Atlas\n"
        f"Ne plus recevoir les annonces de {network.name} : {here}\n"
        f"Ne plus recevoir aucune annonce de réseau : {everywhere}\n"
    )
    # One message per person, addressed to them alone: nobody sees anyone else's address.
    return EmailMessage(
        subject=f"[{network.name}] {announcement.subject}",
        body=body,
        to=[user.email],
        headers={"List-Unsubscribe": f"<{here}>", "Precedence": "bulk"},
    )


@app.task(queue="announcements")
def announcement_deliver(*, announcement_id: int) -> None:
    """Send an announcement to each recipient once, in batches; safe to retry.

    Each recipient's delivery row and e-mail job are committed together (the queued mail
    backend defers in the same transaction), and the unique (announcement, user) pair skips
    everyone already served when the job runs again.
    """
    announcement = Announcement.objects.select_related("network").get(pk=announcement_id)
    recipients = announcement_recipients(announcement=announcement).only("pk", "email")
    sent = 0
    last_pk = 0
    while True:
        batch = list(recipients.filter(pk__gt=last_pk)[:ANNOUNCEMENT_BATCH])
        if not batch:
            break
        last_pk = batch[-1].pk
        with transaction.atomic():
            served = set(
                AnnouncementDelivery.objects.filter(announcement=announcement, user__in=batch).values_list(
                    "user_id", flat=True
                )
            )
            fresh = [user for user in batch if user.pk not in served]
            AnnouncementDelivery.objects.bulk_create(
                [AnnouncementDelivery(announcement=announcement, user=user) for user in fresh], ignore_conflicts=True
            )
            messages = [_announcement_email(announcement, user) for user in fresh]
            if messages:
                messages[0].get_connection().send_messages(messages)
            sent += len(fresh)
    total = AnnouncementDelivery.objects.filter(announcement=announcement).count()
    Announcement.objects.filter(pk=announcement_id).update(sent_at=timezone.now(), recipient_count=total)
    logger.info("announcement %s: %d e-mails sent now, %d recipients in all", announcement_id, sent, total)


# --- freshness ----------------------------------------------------------------------------


def _entry_admins(entry: Amap | Farm) -> list:
    if isinstance(entry, Amap):
        return [
            m.user
            for m in AmapManager.objects.filter(
                amap=entry, role=AmapManager.Role.ADMIN, user__is_active=True
            ).select_related("user")
        ]
    return list(entry.managers.filter(is_active=True))


def _reminder(entry: Amap | Farm, person) -> EmailMessage:
    link = _site() + reverse("directory:entry_verify", args=[verify_token(entry)])
    what = "AMAP" if isinstance(entry, Amap) else "ferme"
    body = (
        f"Bonjour,\n\nLa fiche de votre {what} « {entry.name} » sur AMAP Atlas n'a pas été vérifiée depuis un an.\n"
        f"Est-elle toujours juste ? Un clic pour la confirmer ou la mettre à jour :\n{link}\n\n"
        "Merci, et bonne saison !\n"
    )
    return EmailMessage(subject=f"Votre fiche « {entry.name} » est-elle à jour ?", body=body, to=[person.email])


def freshness_remind_due(*, now=None, limit: int = 2000) -> int:
    """Ask the admins of entries unconfirmed for a year to confirm them; once a year each. Returns e-mails sent."""
    now = now or timezone.now()
    before = now - STALE_AFTER
    sent = 0
    for model in (Amap, Farm):
        due = (
            model.objects.filter(is_demo=False)
            .exclude(verified_at__gte=before)
            .filter(created_at__lt=before)
            .exclude(verification_asked_at__gte=before)
            .order_by("pk")[:limit]
        )
        for entry in due:
            with transaction.atomic():
                admins = [p for p in _entry_admins(entry) if p.email]
                if admins:
                    messages = [_reminder(entry, person) for person in admins]
                    messages[0].get_connection().send_messages(messages)
                    sent += len(messages)
                model.objects.filter(pk=entry.pk).update(verification_asked_at=now)
    return sent


@app.periodic(cron="0 8 * * *")  # 09:00 or 10:00 in France; each entry is asked at most once a year
@app.task(queue="periodic", queueing_lock="directory.freshness_remind")
def freshness_remind(timestamp: int) -> None:
    sent = freshness_remind_due()
    logger.info("freshness_remind: %d e-mails", sent)
