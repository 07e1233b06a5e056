"""Guessing passwords: every door (form, admin, API) locks the account, and one IP over many accounts.

Limits from config/settings.py: 10 failures per account and per IP, a 15-minute cool-down.
Each request below comes from its own address unless the test is about the IP.
"""

import datetime as dt
import itertools
from urllib.parse import urlsplit

import pytest
import time_machine
from django.core import mail
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "motdepasse-test"  # tests.factories.UserFactory
LOGIN = reverse("accounts:login")
ADMIN_LOGIN = "/admin/login/"
RESET = reverse("accounts:password_reset")
_addresses = (f"198.51.100.{n}" for n in itertools.count(1))  # TEST-NET-2, one per request


def new_ip() -> str:
    return next(_addresses)


def login_form(client, email, password, *, ip=None, url=LOGIN):
    return client.post(url, {"username": email, "password": password}, REMOTE_ADDR=ip or new_ip())


def assert_locked_page(response):
    assert response.status_code == 429
    text = response.content.decode()
    assert "Connexion bloquée" in text
    assert "15 minutes" in text
    assert reverse("accounts:password_reset") in text
    assert response.has_header("Content-Security-Policy")


@pytest.fixture(autouse=True)
def fresh_cache():
    """The reset counters live in the cache, which outlives each test's transaction."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def person():
    return UserFactory(email="camille@example.org")


def test_the_right_password_logs_in_from_the_form(client, person):
    response = login_form(client, "camille@example.org", PASSWORD)
    assert response.status_code == 302
    assert client.get(reverse("accounts:dashboard")).status_code == 200


def test_thirty_wrong_passwords_on_the_form_lock_the_account_until_the_cool_down(client, person):
    statuses = [login_form(client, person.email, f"devine-{n}").status_code for n in range(30)]
    assert statuses[:9] == [200] * 9  # the form again, "adresse ou mot de passe incorrect"
    assert set(statuses[10:]) == {429}

    # The right password, from an address never seen before: the account itself is locked.
    response = login_form(client, person.email, PASSWORD)
    assert_locked_page(response)
    assert "_auth_user_id" not in client.session

    # Case and spaces do not make a fresh account for the counter.
    assert login_form(client, "  Camille@Example.org ", PASSWORD).status_code == 429

    # After the cool-down the right password works again.
    with time_machine.travel(timezone.now() + dt.timedelta(minutes=16), tick=False):
        assert login_form(client, person.email, PASSWORD).status_code == 302


def test_thirty_wrong_passwords_on_the_admin_login_lock_the_account(client):
    admin = UserFactory(email="admin@example.org", is_staff=True, is_superuser=True)
    for n in range(30):
        login_form(client, admin.email, f"devine-{n}", url=ADMIN_LOGIN)
    response = login_form(client, admin.email, PASSWORD, url=ADMIN_LOGIN)
    assert_locked_page(response)
    # The lock is the account's: the site's own form refuses it too.
    assert login_form(client, admin.email, PASSWORD).status_code == 429


def test_a_lock_earned_on_the_admin_login_blocks_the_form_and_the_reverse(client, person):
    for n in range(10):
        login_form(client, person.email, f"devine-{n}")
    assert login_form(client, person.email, PASSWORD, url=ADMIN_LOGIN).status_code == 429


def test_the_api_takes_no_password_so_thirty_guesses_learn_nothing(client, person):
    """HTTP Basic is off: the API authenticates with the session only (and a login through the form)."""
    import base64

    guesses = []
    for n in [*range(30), "right"]:
        password = PASSWORD if n == "right" else f"devine-{n}"
        token = base64.b64encode(f"{person.email}:{password}".encode()).decode()
        guesses.append(
            client.post(
                "/api/v1/annonces/",
                {},
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Basic {token}",
                REMOTE_ADDR=new_ip(),
            )
        )
    # Not even the right password opens the API through Basic (it would get a 400 for the empty
    # annonce): the door is shut, not guarded, and no password hash is computed.
    assert {response.status_code for response in guesses} == {403}
    assert not any("basic" in response.get("WWW-Authenticate", "").lower() for response in guesses)


def test_a_locked_account_cannot_open_the_api_either(client, person):
    for n in range(30):
        login_form(client, person.email, f"devine-{n}")
    login_form(client, person.email, PASSWORD)
    # No session was opened, so the API answers as to a stranger.
    response = client.post("/api/v1/annonces/", {}, content_type="application/json")
    assert response.status_code in (401, 403)


def test_one_ip_over_many_accounts_is_locked_too(client):
    people = [UserFactory(email=f"voisin{n}@example.org") for n in range(12)]
    ip = "203.0.113.7"
    # One wrong password for each of ten accounts: no account reaches its own limit, the IP does.
    statuses = [login_form(client, someone.email, "Printemps2026!", ip=ip).status_code for someone in people[:10]]
    assert statuses == [200] * 9 + [429]
    # The eleventh account, even with its right password, is refused from that address...
    assert_locked_page(login_form(client, people[10].email, PASSWORD, ip=ip))
    # ...and works from another one: the accounts themselves are not locked.
    assert login_form(client, people[11].email, PASSWORD).status_code == 302


def test_choosing_a_new_password_lifts_the_lock(client, person):
    for n in range(10):
        login_form(client, person.email, f"devine-{n}")
    assert login_form(client, person.email, PASSWORD).status_code == 429

    client.post(RESET, {"email": person.email}, REMOTE_ADDR=new_ip())
    link = next(line for line in mail.outbox[-1].body.splitlines() if "/mot-de-passe/nouveau/" in line).strip()
    path = urlsplit(link).path
    form_page = client.get(path, REMOTE_ADDR=new_ip())
    assert form_page.status_code == 302  # to the same page without the token in the address
    response = client.post(
        form_page["Location"],
        {"new_password1": "Nouveau-mot-2026", "new_password2": "Nouveau-mot-2026"},
    )
    assert response.status_code == 302
    assert login_form(client, person.email, "Nouveau-mot-2026").status_code == 302


def test_reset_emails_are_capped_per_address(client, person):
    ip_pages = [client.post(RESET, {"email": person.email}, REMOTE_ADDR=new_ip()) for _ in range(10)]
    # The page says the same thing every time (it must not reveal whether the address has an account).
    assert {response.status_code for response in ip_pages} == {302}
    assert {response["Location"] for response in ip_pages} == {reverse("accounts:password_reset_done")}
    assert len(mail.outbox) == 3

    # An hour later, the address gets mail again.
    with time_machine.travel(timezone.now() + dt.timedelta(minutes=61), tick=False):
        client.post(RESET, {"email": person.email}, REMOTE_ADDR=new_ip())
    assert len(mail.outbox) == 4


def test_reset_emails_are_capped_per_ip(client):
    people = [UserFactory(email=f"membre{n}@example.org") for n in range(15)]
    ip = "203.0.113.9"
    for someone in people:
        response = client.post(RESET, {"email": someone.email}, REMOTE_ADDR=ip)
        assert response.status_code == 302
    assert len(mail.outbox) == 10
    # Another address is not held back by that one.
    client.post(RESET, {"email": people[-1].email}, REMOTE_ADDR=new_ip())
    assert len(mail.outbox) == 11
