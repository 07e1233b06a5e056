"""Health endpoints and the request log."""

import json
import logging
import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.db import connection

pytestmark = pytest.mark.django_db


def test_healthz_answers_ok_without_touching_the_database(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.content.decode().strip() == "ok"
    assert "no-cache" in response["Cache-Control"]


def test_readyz_answers_ok_when_the_database_and_the_queue_answer(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.content.decode().strip() == "ok"


def test_readyz_is_503_with_the_reason_when_the_queue_tables_are_missing(client):
    # Inside the test's transaction, rolled back afterwards.
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE procrastinate_jobs RENAME TO procrastinate_jobs_hidden")
    response = client.get("/readyz")
    assert response.status_code == 503
    assert "file de tâches injoignable" in response.content.decode()
    with connection.cursor() as cursor:  # the check left no aborted transaction behind
        cursor.execute("SELECT 1")


def test_with_the_database_down_healthz_is_ok_and_readyz_is_503():
    # A separate process whose database is a port where nothing listens.
    script = (
        "import django, json; django.setup();"
        "from django.test import Client; c = Client();"
        "print(json.dumps({p: [r.status_code, r.content.decode().strip()]"
        " for p in ('/healthz', '/readyz') for r in [c.get(p)]}))"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "1",
        "DATABASE_URL": "postgis://atlas@127.0.0.1:9/atlas",
        "LOG_LEVEL": "CRITICAL",
        "ALLOWED_HOSTS": "testserver",
    }
    result = subprocess.run(  # noqa: S603 (our own interpreter)
        [sys.executable, "-c", script], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    answers = json.loads(result.stdout.strip().splitlines()[-1])
    assert answers["/healthz"] == [200, "ok"]
    assert answers["/readyz"] == [503, "base de données injoignable"]


def test_each_request_writes_one_log_line_with_method_path_status_and_duration(client, caplog):
    with caplog.at_level(logging.INFO, logger="atlas.requests"):
        client.get("/healthz?token=secret")
        client.post("/healthz")
        client.get("/cette-page-n-existe-pas/")
    lines = [record for record in caplog.records if record.name == "atlas.requests"]
    assert [(r.method, r.path, r.status) for r in lines] == [
        ("GET", "/healthz", 200),
        ("POST", "/healthz", 405),
        ("GET", "/cette-page-n-existe-pas/", 404),
    ]
    assert all(record.duration_ms >= 0 for record in lines)
    message = lines[0].getMessage()
    assert message.startswith("GET /healthz 200 ") and message.endswith("ms")
    assert "secret" not in message  # no query strings in the logs


def test_production_uses_hashed_compressed_static_files_collected_beforehand():
    # DEBUG=0 pages name static files through collectstatic's manifest (whitenoise serves them).
    env = {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": "x" * 50,
        "LOCATION_MASK_KEY": "m" * 50,
        "ALLOWED_HOSTS": "atlas.example.org",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    script = "import django; django.setup(); from django.conf import settings; print(settings.STORAGES['staticfiles'])"
    result = subprocess.run(  # noqa: S603 (our own interpreter)
        [sys.executable, "-c", script], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "whitenoise.storage.CompressedManifestStaticFilesStorage" in result.stdout
    assert "whitenoise.middleware.WhiteNoiseMiddleware" in settings.MIDDLEWARE
