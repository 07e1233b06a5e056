"""Anonymous pages kept whole (directory.page_cache): what a visitor sees is never stale nor someone else's.

The kept pages are keyed by the public data's version, which database triggers bump when a change
commits; the test's own transaction never commits, so every write here happens in a thread of its
own, committed (tests.support.in_own_connection), and the rows it made are deleted at the end.
"""

import re

import pytest
from django.urls import reverse

from directory.models import Amap
from directory.page_cache import HIT_HEADER
from directory.selectors import public_version
from tests.factories import AmapFactory, UserFactory, product
from tests.support import in_own_connection

MARK = "(test du cache de pages)"


def _cleanup() -> None:
    Amap.objects.filter(name__endswith=MARK).delete()


@pytest.fixture
def committed_amap(db, settings):
    """An AMAP at Bordeaux, committed; pages kept ten minutes."""
    settings.PAGE_CACHE_SECONDS = 600
    in_own_connection(_cleanup)
    amap = in_own_connection(lambda: AmapFactory(name=f"AMAP de la Comédie {MARK}"))
    yield amap
    in_own_connection(_cleanup)


def nonces(response) -> tuple[set[str], str]:
    """The nonces of the page's scripts, and the one its Content-Security-Policy allows."""
    in_page = set(re.findall(r'nonce="([^"]+)"', response.content.decode()))
    allowed = re.search(r"'nonce-([^']+)'", response["Content-Security-Policy"]).group(1)
    return in_page, allowed


def test_a_change_in_the_directory_shows_on_the_next_search(client, committed_amap):
    url = reverse("directory:search") + "?q=Bordeaux"
    first = client.get(url)
    assert first.status_code == 200
    assert "AMAP de la Comédie" in first.content.decode()
    again = client.get(url)
    assert again[HIT_HEADER] == "hit"  # the same search is answered from the kept page
    assert again.content.decode().count("AMAP de la Comédie") == first.content.decode().count("AMAP de la Comédie")

    # A bulk update sends no signal: the database's trigger still moves the version on at the commit.
    in_own_connection(lambda: Amap.objects.filter(pk=committed_amap.pk).update(name=f"AMAP des Chartrons {MARK}"))
    after = client.get(url).content.decode()
    assert "AMAP des Chartrons" in after
    assert "AMAP de la Comédie" not in after


def test_an_amap_page_follows_its_products(client, committed_amap):
    url = reverse("directory:amap_detail", args=[committed_amap.pk])
    assert "Miel" not in client.get(url).content.decode()
    assert client.get(url)[HIT_HEADER] == "hit"
    version = public_version()
    in_own_connection(lambda: Amap.objects.get(pk=committed_amap.pk).products.add(product("miel")))
    assert public_version() != version
    assert "Miel" in client.get(url).content.decode()


def test_a_logged_in_member_never_gets_the_anonymous_page_nor_leaves_theirs(client, committed_amap):
    url = reverse("directory:amap_detail", args=[committed_amap.pk])
    anonymous = client.get(url)
    assert "Connexion" in anonymous.content.decode()

    member = UserFactory(display_name="Camille Dupont")
    member_client = type(client)()
    member_client.force_login(member)
    theirs = member_client.get(url)
    assert HIT_HEADER not in theirs  # drawn for them, never taken from nor put in the cache
    assert "Mon espace" in theirs.content.decode()
    assert ">Connexion<" not in theirs.content.decode()

    later_anonymous = type(client)().get(url)
    assert later_anonymous[HIT_HEADER] == "hit"
    assert "Mon espace" not in later_anonymous.content.decode()
    assert later_anonymous["Vary"].count("Cookie") == 1  # a shared cache keeps it apart from sessions


def test_a_page_drawn_for_a_member_is_not_kept_for_visitors(client, committed_amap):
    url = reverse("directory:amap_detail", args=[committed_amap.pk])
    member_client = type(client)()
    member_client.force_login(UserFactory())
    assert "Mon espace" in member_client.get(url).content.decode()
    visitor = client.get(url)
    assert visitor[HIT_HEADER] == "miss"
    assert "Mon espace" not in visitor.content.decode()


def test_each_replayed_page_carries_a_fresh_nonce_that_its_policy_allows(client, committed_amap):
    url = reverse("directory:amap_detail", args=[committed_amap.pk])
    first, second = client.get(url), client.get(url)
    assert (first[HIT_HEADER], second[HIT_HEADER]) == ("miss", "hit")
    first_in_page, first_allowed = nonces(first)
    second_in_page, second_allowed = nonces(second)
    assert first_in_page == {first_allowed}  # the map's script runs
    assert second_in_page == {second_allowed}
    assert first_allowed != second_allowed


def test_the_home_page_revalidates_with_its_etag(client, committed_amap):
    first = client.get("/")
    etag = first["ETag"]
    not_modified = client.get("/", headers={"If-None-Match": etag})
    assert not_modified.status_code == 304
    assert not_modified.content == b""
    in_own_connection(lambda: AmapFactory(name=f"AMAP de Pessac {MARK}"))
    changed = client.get("/", headers={"If-None-Match": etag})
    assert changed.status_code == 200  # one more AMAP: the count changed
    assert changed["ETag"] != etag


def test_a_search_answered_with_an_error_is_not_kept(client, committed_amap):
    url = reverse("directory:search") + "?q=Bordeaux&radius_km=0"
    for _ in range(2):
        response = client.get(url)
        assert response.status_code == 400
        assert HIT_HEADER not in response


def test_a_visitor_with_a_session_is_answered_by_the_view_and_one_with_the_csrf_cookie_alone_from_the_cache(
    client, committed_amap, settings
):
    url = reverse("directory:amap_detail", args=[committed_amap.pk])
    assert client.get(url)[HIT_HEADER] == "miss"

    with_session = type(client)()
    with_session.cookies[settings.SESSION_COOKIE_NAME] = "une-session-quelconque"
    assert HIT_HEADER not in with_session.get(url)

    with_csrf_cookie = type(client)()
    with_csrf_cookie.cookies[settings.CSRF_COOKIE_NAME] = "x" * 32
    response = with_csrf_cookie.get(url)
    assert response[HIT_HEADER] == "hit"
    assert "AMAP de la Comédie" in response.content.decode()
