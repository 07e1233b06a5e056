"""Browsers ask every site for /favicon.ico: it answers (issue 17: it was a 404 on every page)."""

from django.contrib.staticfiles import finders


def test_favicon_ico_leads_to_the_served_icon_and_pages_name_it(client, db):
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response.url.endswith("favicon.ico")
    assert finders.find("favicon.ico") and finders.find("favicon.svg")
    page = client.get("/").content.decode()
    assert 'rel="icon"' in page and "favicon.svg" in page
