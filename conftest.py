"""Test set-up shared by every test: real PostGIS with France's territories loaded once."""

import pytest
from django.core.management import call_command


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings):
    """A second alias, `replica`, mirrors the test database (the router's tests read through it).

    Nothing reads it unless a test sets DATABASE_READ_REPLICA and asks for databases=[…, "replica"].
    """
    import copy

    from django.db import connections

    if "replica" not in connections.settings:
        replica = copy.deepcopy(connections.settings["default"])
        replica["TEST"]["MIRROR"] = "default"
        connections.settings["replica"] = replica


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """The test database gets the real territories once per run (about 20 s)."""
    with django_db_blocker.unblock():
        call_command("load_territories", if_empty=True, verbosity=0)


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    """Hashing a real password takes about a second here; tests need accounts, not hash strength."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="session", autouse=True)
def _no_real_ban_in_subprocesses():
    """Servers, workers and commands that tests start never reach the real Base Adresse Nationale."""
    import os

    before = os.environ.get("GEOCODER_BAN_ENABLED")
    os.environ["GEOCODER_BAN_ENABLED"] = "0"
    yield
    if before is None:
        os.environ.pop("GEOCODER_BAN_ENABLED", None)
    else:
        os.environ["GEOCODER_BAN_ENABLED"] = before


@pytest.fixture(autouse=True)
def _no_real_ban(settings):
    """The BAN adapter is on by default; tests never reach the real service (tests/geo/test_ban.py turns it
    on against a local fake, tests/geo/test_addresses.py against a local Addok)."""
    settings.GEOCODER_BAN_ENABLED = False


@pytest.fixture(autouse=True)
def _no_page_cache(settings):
    """Anonymous pages are not kept whole (directory.page_cache) unless a test asks for it.

    The public version they are keyed by changes when a transaction commits, and a test's own
    transaction never commits: tests/directory/test_page_cache.py checks the cache with real commits.
    """
    settings.PAGE_CACHE_SECONDS = 0


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Each test starts with an empty cache: no throttling counts or cached figures leak between tests."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture
def live_url(db):
    """Base URL of the app served inside this test's transaction (see tests/support.py)."""
    from tests.support import live_server_in_test_transaction

    with live_server_in_test_transaction() as url:
        yield url


@pytest.fixture
def browser_page(live_url):
    """A Playwright page in Debian's Chromium; records every request host it makes."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        page = browser.new_page()
        page.requested_urls = []
        page.on("request", lambda request: page.requested_urls.append(request.url))
        try:
            yield page
        finally:
            browser.close()
