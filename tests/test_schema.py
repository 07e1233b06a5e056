"""The OpenAPI schema tells the truth: schemathesis drives every operation of /api/v1/ in-process
(WSGI, on the test database), anonymous and logged in, and fails on any server error or any
response that breaks the schema (status code, content type, body).

Deterministic (fixed seed, no example database) and bounded: MAX_EXAMPLES cases per operation and
generation mode keep the whole run within a few minutes on two cores.
"""

import pytest
import schemathesis
from django.conf import settings as django_settings
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.middleware.csrf import _get_new_csrf_string
from django.test import Client
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from tests.contracts.roles import contract_world
from tests.factories import NetworkFactory

pytestmark = pytest.mark.django_db

MAX_EXAMPLES = 20
CHECKS = [
    schemathesis.checks.not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
SEED = 20260512


@pytest.fixture
def _unthrottled(settings):
    # The WSGI app would close the test's connection after each request (Django's test client
    # disconnects the same handlers); the test's transaction must outlive the requests.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield from _raised_rates(settings)
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def _raised_rates(settings):
    rates = {scope: "100000/minute" for scope in django_settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]}
    settings.REST_FRAMEWORK = {**django_settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    yield


def _api_schema():
    loaded = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())
    loaded.config.seed = SEED
    loaded.config.generation.update(
        modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
        max_examples=MAX_EXAMPLES,
        deterministic=True,
        database="none",
    )
    return loaded


# Loaded once at collection: the schema view is in-process and touches no database.
schema = _api_schema()
QUIET = settings(
    max_examples=MAX_EXAMPLES, derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)


@schema.parametrize()
@QUIET
def test_every_operation_keeps_to_the_schema_anonymously(case, _unthrottled):
    case.call_and_validate(checks=CHECKS)


@pytest.fixture
def manager_session():
    """A person who runs an AMAP, manages a farm and subscribes to a contract, with a session cookie."""
    world = contract_world()
    user = world.users["amap_admin"]
    world.farm.managers.add(user)
    NetworkFactory(slug="reseau-gironde", departments=[])
    client = Client()
    client.force_login(user)
    token = _get_new_csrf_string()
    cookie = f"{django_settings.SESSION_COOKIE_NAME}={client.cookies[django_settings.SESSION_COOKIE_NAME].value}"
    headers = {"Cookie": f"{cookie}; {django_settings.CSRF_COOKIE_NAME}={token}", "X-CSRFToken": token}
    ids = {"id": world.contract.pk, "pk": world.contract.pk, "slug": "reseau-gironde"}
    return world, headers, ids


@schema.parametrize()
@QUIET
def test_every_operation_keeps_to_the_schema_logged_in(case, manager_session, _unthrottled):
    _world, headers, _ids = manager_session
    case.call_and_validate(checks=CHECKS, headers=headers)
