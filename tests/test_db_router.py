"""The read-replica router (config/db_router.py) against a second alias, `replica`.

In tests `replica` is a TEST mirror of the default database (conftest.py): it reads the same
committed rows, such as France's communes loaded once per run, through a connection of its own.
"""

import pytest
from django.db import connections, router, transaction
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from config.db_router import public_reads
from directory.models import Amap
from geo.models import Commune

pytestmark = pytest.mark.django_db(databases=["default", "replica"])


@pytest.fixture(autouse=True)
def _close_replica():
    yield
    connections["replica"].close()  # an open session would keep the test database from being dropped


@pytest.fixture
def replica_on(settings):
    settings.DATABASE_READ_REPLICA = "replica"


def test_a_public_read_of_the_directory_goes_to_the_replica(replica_on):
    with public_reads(), CaptureQueriesContext(connections["replica"]) as on_replica:
        assert router.db_for_read(Amap) == "replica"
        assert router.db_for_read(Commune) == "replica"
        bordeaux = Commune.objects.get(code="33063")
    assert bordeaux.name == "Bordeaux"
    assert bordeaux._state.db == "replica"
    assert any('"geo_commune"' in query["sql"] for query in on_replica.captured_queries)


def test_writes_go_to_the_primary_and_pin_the_rest_of_the_request_there(replica_on):
    with public_reads():
        bordeaux = Commune.objects.get(code="33063")
        assert router.db_for_write(Commune, instance=bordeaux) == "default"
        # After a write the same request reads its own write from the primary.
        assert router.db_for_read(Commune) == "default"
        assert router.db_for_read(Amap) == "default"


def test_private_models_and_transactions_read_the_primary(replica_on):
    with public_reads():
        assert router.db_for_read(User) == "default"
        with transaction.atomic():
            assert router.db_for_read(Commune) == "default"
        assert router.db_for_read(Commune) == "replica"


def test_without_a_replica_or_outside_a_public_request_everything_reads_the_primary(settings):
    settings.DATABASE_READ_REPLICA = None
    with public_reads():
        assert router.db_for_read(Commune) == "default"
    settings.DATABASE_READ_REPLICA = "replica"
    assert router.db_for_read(Commune) == "default"  # a command, a job: not a public request


def test_an_anonymous_map_page_reads_the_replica_and_a_logged_in_one_the_primary(client, replica_on):
    # /carte/ lists the product categories and networks through the ORM (its filters).
    with CaptureQueriesContext(connections["replica"]) as on_replica:
        response = client.get("/carte/")
    assert response.status_code == 200
    assert any('"directory_productcategory"' in query["sql"] for query in on_replica.captured_queries)

    client.cookies["sessionid"] = "no-such-session"
    with CaptureQueriesContext(connections["replica"]) as on_replica:
        response = client.get("/carte/")
    assert response.status_code == 200
    assert on_replica.captured_queries == []


def test_migrations_only_run_on_the_primary():
    assert router.allow_migrate("default", "directory")
    assert not router.allow_migrate("replica", "directory")
