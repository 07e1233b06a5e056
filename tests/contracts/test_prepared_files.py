"""Big summary PDFs off the request path (contracts/services/files.py): a job builds them, the page
says « en préparation » then « prêt » with the link, and only the person who asked may fetch it."""

import datetime as dt

import pytest
from asgiref.sync import async_to_sync
from django.db import connections
from django.urls import reverse
from django.utils import timezone
from procrastinate.contrib.django import app
from procrastinate.contrib.django.models import ProcrastinateJob

from contracts.models import PreparedFile
from tests.test_jobs import SameConnectionConnector

from .roles import contract_world

pytestmark = pytest.mark.django_db


def run_exports_worker() -> None:
    """One pass of a real worker over the exports queue, its task on the test's own connection.

    The task reads the rows this test wrote (not committed): it borrows the test's connection, as
    tests/support.py's live server does, instead of opening one of its own in the worker's thread.
    """
    shared = connections["default"]
    shared.inc_thread_sharing()

    def on_test_connection(call_next, context, worker):
        connections["default"] = shared
        try:
            return call_next()
        finally:
            del connections["default"]

    try:
        with app.replace_connector(SameConnectionConnector()):
            async_to_sync(app.run_worker_async)(
                queues=["exports"],
                wait=False,
                listen_notify=False,
                install_signal_handlers=False,
                task_middleware=[on_test_connection],
            )
    finally:
        shared.dec_thread_sharing()


@pytest.fixture
def world():
    return contract_world()


def test_a_large_amap_summary_pdf_is_prepared_by_a_job_for_its_owner_only(client, world, settings):
    settings.SUMMARY_PDF_INLINE_MAX_SUBSCRIPTIONS = 1  # the world's AMAP has two subscriptions
    client.force_login(world.users["amap_admin"])
    response = client.get(reverse("contracts:amap_summary_export", args=[world.amap.pk, "pdf"]), {"by": "member"})
    prepared = PreparedFile.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("contracts:prepared_file", args=[prepared.token])
    [job] = ProcrastinateJob.objects.filter(task_name="contracts.tasks.build_prepared_file")
    assert job.status == "todo" and job.args == {"file_id": prepared.pk}

    page = client.get(response["Location"])
    assert "Votre fichier est en préparation" in page.content.decode()
    assert '<meta http-equiv="refresh"' in page.content.decode()
    download = reverse("contracts:prepared_file_download", args=[prepared.token])
    assert client.get(download).status_code == 404  # not ready yet

    run_exports_worker()

    job.refresh_from_db()
    assert job.status == "succeeded"
    page = client.get(response["Location"]).content.decode()
    assert "Votre fichier est prêt" in page and download in page
    assert "refresh" not in page
    pdf = client.get(download)
    assert pdf.status_code == 200
    assert pdf["Content-Type"] == "application/pdf"
    assert pdf["Content-Disposition"] == 'attachment; filename="bilan-member.pdf"'
    assert pdf.content.startswith(b"%PDF")

    # Someone else, even one who may see the AMAP's summary, does not see this file.
    client.force_login(world.users["staff"])
    assert client.get(response["Location"]).status_code == 404
    assert client.get(download).status_code == 404

    # After its expiry the file is gone for its owner too, and the next job deletes it.
    client.force_login(world.users["amap_admin"])
    PreparedFile.objects.update(expires_at=timezone.now() - dt.timedelta(minutes=1))
    assert client.get(download).status_code == 404
    client.get(reverse("contracts:amap_summary_export", args=[world.amap.pk, "pdf"]))
    run_exports_worker()
    assert not PreparedFile.objects.filter(pk=prepared.pk).exists()
    assert PreparedFile.objects.get().status == PreparedFile.Status.READY


def test_a_small_summary_pdf_still_comes_straight_back(client, world):
    client.force_login(world.users["amap_admin"])
    response = client.get(reverse("contracts:amap_summary_export", args=[world.amap.pk, "pdf"]))
    assert response.status_code == 200
    assert response.content.startswith(b"%PDF")
    assert not PreparedFile.objects.exists()
