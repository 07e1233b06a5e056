"""A coordinator's space in a real browser: no sideways scroll on a phone or a laptop, and an
uploaded spreadsheet's progress bar that ends on the row/column report."""

import os
from contextlib import contextmanager

import pytest
from django.db import connections
from playwright.sync_api import expect

from geo.models import Department
from tests.directory.test_network_space import CSV, run_jobs_here
from tests.factories import AmapFactory, FarmFactory, NetworkFactory, UserFactory
from tests.maps.test_browser import csp_violations

pytestmark = pytest.mark.browser

PASSWORD = "motdepasse-test"  # tests.factories.UserFactory


@contextmanager
def allow_async_unsafe():
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        yield
    finally:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


@pytest.fixture
def space(db):
    network = NetworkFactory(name="AMAP Gironde", slug="amap-gironde", departments=[Department.objects.get(code="33")])
    for i in range(12):
        AmapFactory(name=f"AMAP au nom assez long pour tenir sur deux lignes numéro {i}")
    FarmFactory(name="Ferme de Libourne")
    coordinator = UserFactory(email="coordination@amap33.org")
    network.admins.add(coordinator)
    network.test_connection = connections["default"]  # before Playwright's event loop hides it
    return network


def log_in(page, live_url, next_path: str) -> None:
    page.goto(f"{live_url}/comptes/connexion/?next={next_path}")
    page.fill("input[name=username]", "coordination@amap33.org")
    page.fill("input[name=password]", PASSWORD)
    page.locator("main form button[type=submit]").click()
    page.wait_for_url(f"**{next_path}")


@pytest.mark.parametrize("width,height", [(390, 844), (1366, 900)])
def test_the_space_fits_the_screen(space, browser_page, live_url, width, height):
    page = browser_page
    page.set_viewport_size({"width": width, "height": height})
    violations = csp_violations(page)
    log_in(page, live_url, "/reseau/amap-gironde/gestion/")
    expect(page.get_by_role("heading", level=1)).to_have_text("AMAP Gironde")
    expect(page.locator("#space-amaps tbody tr")).to_have_count(12)
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    page.goto(live_url + "/reseau/amap-gironde/gestion/annonces/")
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    page.goto(live_url + "/reseau/amap-gironde/gestion/import/")
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    assert violations == []


def test_an_uploaded_file_shows_its_progress_then_its_report(space, browser_page, live_url, tmp_path):
    page = browser_page
    page.set_viewport_size({"width": 390, "height": 844})
    violations = csp_violations(page)
    path = tmp_path / "amaps.csv"
    path.write_text(CSV, encoding="utf-8")
    log_in(page, live_url, "/reseau/amap-gironde/gestion/import/")
    page.set_input_files("input[name=file]", str(path))
    page.select_option("select[name=kind]", "amap")
    page.get_by_role("button", name="Vérifier le fichier").click()
    expect(page.locator("#import-progress")).to_be_visible()
    expect(page.locator("#import-state")).to_contain_text("en attente")

    # The deferred job runs here, on the test's connection (its rows are not committed).
    # Playwright's event loop makes Django refuse database calls from this thread unless told.
    with allow_async_unsafe():
        connections["default"] = space.test_connection
        assert run_jobs_here("imports") == 1  # the job the upload deferred
    # The page polls the status, sees the check done and shows the report.
    expect(page.locator("#import-report")).to_be_visible(timeout=15000)
    expect(page.locator("#report-summary")).to_contain_text("AMAP : 2 à créer")
    assert page.locator("#import-progress").get_attribute("value") == "100"
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert violations == []
