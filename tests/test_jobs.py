"""The job queue on the real test database: e-mails through the queue, retries, the schedule.

Workers run in-process through `async_to_sync`, so Procrastinate's Django connector (which
uses Django's connection) works inside the test's transaction: the test sees the jobs it
defers and nothing is left behind. The two-worker test, which needs committed rows, lives in
tests/test_two_workers.py.
"""

import datetime as dt
import json
import re
import socket
from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync
from django.core import mail
from django.core.mail import EmailMultiAlternatives, send_mail
from django.db import connection, transaction
from django.utils import timezone
from procrastinate import periodic
from procrastinate.contrib.django import app
from procrastinate.contrib.django.django_connector import DjangoConnector
from procrastinate.contrib.django.models import ProcrastinateJob

from accounts.mail import email_from_json
from accounts.tasks import EMAIL_RETRY
from config.jobs.models import JobError
from contracts.documents import contract_pdf
from contracts.models import Signature, Subscription
from contracts.signing import signature_confirm, signature_request_code
from tests.contracts.factories import (
    ContractFactory,
    ContractProductFactory,
    SubscriptionFactory,
    subscribe_same_every_time,
    weekly_deliveries,
)
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

SEND_EMAIL = "accounts.tasks.send_email"


@pytest.fixture
def queued_mail(settings):
    """The production set-up: the queued backend in front, the real one behind (locmem here)."""
    settings.EMAIL_BACKEND = "accounts.mail.QueuedEmailBackend"
    settings.EMAIL_DELIVERY_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


class SameConnectionConnector(DjangoConnector):
    """Django's own connection, so the worker sees this test's uncommitted jobs.

    Production workers use a psycopg connector of their own; Django's connection hands jsonb
    columns back as text (JSONField decodes them itself), which the worker wants decoded.
    """

    def _dictfetch(self, cursor):
        for row in super()._dictfetch(cursor):
            if isinstance(row.get("args"), str):
                row["args"] = json.loads(row["args"])
            yield row


def close_connection_after(call_next, context, worker):
    """Sync tasks run in pool threads with connections of their own: close them, or they outlive the test."""
    try:
        return call_next()
    finally:
        connection.close()


def run_worker(*queues: str) -> None:
    """One pass of a real worker over the queues, until nothing is left to do now."""
    with app.replace_connector(SameConnectionConnector()):
        async_to_sync(app.run_worker_async)(
            queues=list(queues) or None,
            wait=False,
            listen_notify=False,
            install_signal_handlers=False,
            task_middleware=[close_connection_after],
        )


def email_jobs():
    return ProcrastinateJob.objects.filter(task_name=SEND_EMAIL).order_by("pk")


@pytest.fixture
def subscription():
    contract = ContractFactory(title="Légumes saison 2027")
    basket = ContractProductFactory(contract=contract, name="Petit panier", unit_price=Decimal("12.50"))
    weekly_deliveries(contract)
    member = UserFactory(display_name="Éloïse Martin")
    sub = SubscriptionFactory(
        contract=contract, member=member, member_name="Éloïse Martin", status=Subscription.Status.PENDING
    )
    subscribe_same_every_time(sub, {basket: 1})
    return sub


def test_a_signature_code_becomes_a_job_and_the_worker_sends_it_exactly_once(queued_mail, subscription):
    member = subscription.member
    signature_request_code(user=member, subscription=subscription, role=Signature.Role.MEMBER, charter_accepted=True)

    assert mail.outbox == []  # nothing leaves inside the request
    [job] = email_jobs()
    assert job.status == "todo" and job.queue_name == "emails"
    queued = email_from_json(job.args["message"])
    assert queued.to == [member.email]

    run_worker("emails")

    assert len(mail.outbox) == 1
    sent = mail.outbox[0]
    assert (sent.subject, sent.body, sent.from_email, sent.to) == (
        queued.subject,
        queued.body,
        queued.from_email,
        queued.to,
    )
    assert "Légumes saison 2027" in sent.subject
    assert "valable 15 minutes" in sent.body
    job.refresh_from_db()
    assert job.status == "succeeded"

    run_worker("emails")  # a second pass finds nothing more to send
    assert len(mail.outbox) == 1

    # The code that went through the queue signs the contract.
    code = re.search(r"^\s+(\d{6})\s*$", sent.body, re.MULTILINE).group(1)
    signature = signature_confirm(
        user=member,
        subscription=subscription,
        role=Signature.Role.MEMBER,
        code=code,
        ip_address="192.0.2.10",
        user_agent="Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0",
    )
    assert signature.pk


def test_every_part_of_a_message_survives_the_queue_pdf_bytes_included(queued_mail, subscription):
    pdf = contract_pdf(subscription=subscription)
    message = EmailMultiAlternatives(
        subject="Votre contrat « Légumes saison 2027 »",
        body="Bonjour,\n\nVotre contrat est joint.\n— AMAP Atlas",
        from_email="AMAP Atlas <noreply@example.org>",
        to=["eloise@example.org"],
        cc=["referent@example.org"],
        bcc=["archives@example.org"],
        reply_to=["amap@example.org"],
        headers={"X-Atlas-Contract": "42"},
    )
    message.attach_alternative("<p>Bonjour,</p><p>Votre contrat est joint.</p>", "text/html")
    message.attach("contrat.pdf", pdf, "application/pdf")
    message.attach("lisez-moi.txt", "Conservez ce contrat.", "text/plain")
    assert message.send() == 1
    assert mail.outbox == []

    run_worker("emails")

    [sent] = mail.outbox
    assert sent.subject == message.subject and sent.body == message.body
    assert sent.from_email == message.from_email
    assert (sent.to, sent.cc, sent.bcc, sent.reply_to) == (message.to, message.cc, message.bcc, message.reply_to)
    assert sent.extra_headers == {"X-Atlas-Contract": "42"}
    assert list(sent.alternatives) == [("<p>Bonjour,</p><p>Votre contrat est joint.</p>", "text/html")]
    assert [tuple(attachment) for attachment in sent.attachments] == [
        ("contrat.pdf", pdf, "application/pdf"),
        ("lisez-moi.txt", "Conservez ce contrat.", "text/plain"),
    ]
    assert sent.attachments[0][1][:5] == b"%PDF-"
    # The rebuilt message renders to the same MIME parts as the original.
    assert sent.message().get_payload()[1].get_payload(decode=True) == pdf


def test_a_rolled_back_transaction_enqueues_nothing(queued_mail):
    before = email_jobs().count()
    with pytest.raises(RuntimeError), transaction.atomic():
        send_mail("Bienvenue", "Bonjour", None, ["nouveau@example.org"])
        assert email_jobs().count() == before + 1  # enqueued inside the transaction…
        raise RuntimeError("the request failed after asking for the e-mail")
    assert email_jobs().count() == before  # …and gone with it
    run_worker("emails")
    assert mail.outbox == []


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_failing_delivery_is_retried_with_growing_delays_then_failed_with_its_error_shown_to_staff(settings, client):
    settings.EMAIL_BACKEND = "accounts.mail.QueuedEmailBackend"
    # A real SMTP backend aimed at a port where nothing listens: connection refused.
    settings.EMAIL_DELIVERY_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", _closed_port(), 2
    send_mail("Alerte", "Une nouvelle AMAP près de chez vous.", None, ["alerte@example.org"])
    [job] = email_jobs()

    delays = []
    for _attempt in range(20):
        before = timezone.now()
        run_worker("emails")
        job.refresh_from_db()
        if job.status == "failed":
            break
        assert job.status == "todo"
        delays.append((job.scheduled_at - before).total_seconds())
        # Let the backoff elapse (the database's clock decides when a job is due).
        with connection.cursor() as cursor:
            cursor.execute("UPDATE procrastinate_jobs SET scheduled_at = now() WHERE id = %s", [job.pk])

    assert job.status == "failed"
    # Exponential backoff: 3 s, 9 s, 27 s… (a second of slack for the time a pass takes).
    expected = [EMAIL_RETRY.exponential_wait ** (n + 1) for n in range(EMAIL_RETRY.max_attempts)]
    assert len(delays) == len(expected) == 7
    assert all(want - 1 <= got <= want + 1 for got, want in zip(delays, expected, strict=True)), delays
    errors = JobError.objects.filter(job_id=job.pk).order_by("attempt")
    assert [error.attempt for error in errors] == list(range(1, 9))
    assert all("ConnectionRefusedError" in error.error for error in errors)
    assert "smtplib" in errors.last().traceback
    assert mail.outbox == []

    # Staff see the failed job and why in the admin.
    staff = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(staff)
    listing = client.get("/admin/procrastinate/procrastinatejob/", {"status": "failed"})
    assert listing.status_code == 200
    page = listing.content.decode()
    assert "send_email" in page and "ConnectionRefusedError" in page
    detail = client.get(f"/admin/procrastinate/procrastinatejob/{job.pk}/change/")
    assert detail.status_code == 200
    assert "ConnectionRefusedError" in detail.content.decode()


def test_a_bug_in_a_message_is_not_retried(queued_mail):
    job_id = app.configure_task(SEND_EMAIL).defer(message={"subject": "incomplet"})
    run_worker("emails")
    job = ProcrastinateJob.objects.get(pk=job_id)
    assert job.status == "failed"
    assert JobError.objects.get(job_id=job_id).error.startswith("KeyError")


# --------------------------------------------------------------------------------------------
# The schedule


def test_the_schedule_is_declared_in_code():
    schedule = {periodic_task.task.name: periodic_task.cron for periodic_task in _periodic_tasks().values()}
    assert schedule == {
        "matching.tasks.train_matching": "30 0 * * 0",
        "matching.tasks.match_all": "30 1 * * *",
        "matching.tasks.send_digest": "0 5 * * *",
        "contracts.tasks.apply_retention": "30 2 * * *",
        "members.tasks.remind_unpaid_adhesions": "0 7 * * *",
        "coverage.tasks.coverage_refresh_nightly": "15 3 * * *",
        "events.tasks.remind_shifts": "0 7 * * *",
        "directory.tasks.freshness_remind": "0 8 * * *",
    }


def _periodic_tasks():
    return app.periodic_registry.periodic_tasks


def _defer_due(at: float) -> None:
    """What one scheduler (a worker's periodic deferrer) does when it wakes up at `at`."""
    deferrer = periodic.PeriodicDeferrer(registry=app.periodic_registry)
    async_to_sync(deferrer.defer_jobs)(list(deferrer.get_previous_tasks(at=at)))


def _utc(*args) -> float:
    return dt.datetime(*args, tzinfo=dt.UTC).timestamp()


def test_two_schedulers_defer_each_periodic_job_once_per_period():
    def jobs(name):
        return ProcrastinateJob.objects.filter(task_name=name).order_by("pk")

    # Two schedulers wake up a few seconds after 01:30 UTC (match_all's time), one after the other.
    _defer_due(_utc(2027, 3, 1, 1, 30, 5))
    _defer_due(_utc(2027, 3, 1, 1, 30, 7))
    [first] = jobs("matching.tasks.match_all")
    assert first.args == {"timestamp": int(_utc(2027, 3, 1, 1, 30))}

    # Even once that run is over (no queueing lock to stop it), the period is not run again…
    with connection.cursor() as cursor:
        cursor.execute("UPDATE procrastinate_jobs SET status = 'succeeded' WHERE id = %s", [first.pk])
    _defer_due(_utc(2027, 3, 1, 1, 31))
    assert jobs("matching.tasks.match_all").count() == 1

    # …and the next day is a new period: one more job.
    _defer_due(_utc(2027, 3, 2, 1, 30, 3))
    _defer_due(_utc(2027, 3, 2, 1, 30, 4))
    assert [job.args["timestamp"] for job in jobs("matching.tasks.match_all")] == [
        int(_utc(2027, 3, 1, 1, 30)),
        int(_utc(2027, 3, 2, 1, 30)),
    ]
    # The other periodic jobs were not due at those times.
    assert not jobs("matching.tasks.send_digest").exists()
    assert not jobs("contracts.tasks.apply_retention").exists()


def test_periodic_jobs_run_the_same_service_code_as_the_commands():
    # The tasks run in the worker's threads, on connections of their own: they see the
    # committed test database (territories, no contracts), not this test's transaction.
    _defer_due(_utc(2027, 3, 1, 1, 30, 5))
    _defer_due(_utc(2027, 3, 1, 2, 30, 5))
    _defer_due(_utc(2027, 3, 1, 5, 0, 5))
    run_worker("periodic")
    statuses = dict(ProcrastinateJob.objects.filter(queue_name="periodic").values_list("task_name", "status"))
    assert statuses == {
        "matching.tasks.match_all": "succeeded",
        "contracts.tasks.apply_retention": "succeeded",
        "matching.tasks.send_digest": "succeeded",
    }
    assert not JobError.objects.exists()


def test_the_logs_name_the_job_but_never_show_its_arguments(queued_mail, caplog):
    from config.jobs.log_filters import HideJobArguments

    send_mail("Votre code", "Code : 123456", None, ["eloise@example.org"])
    with caplog.at_level("INFO", logger="procrastinate"):
        caplog.handler.addFilter(HideJobArguments())
        run_worker("emails")
    lines = [record.getMessage() for record in caplog.records if record.name.startswith("procrastinate")]
    assert any(line.startswith("Starting job accounts.tasks.send_email[") for line in lines)
    assert any("ended with status: Success" in line for line in lines)
    assert not any("123456" in line or "eloise@example.org" in line for line in lines)
    assert len(mail.outbox) == 1
