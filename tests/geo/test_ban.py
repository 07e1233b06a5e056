"""The BAN adapter, against a local fake of api-adresse.data.gouv.fr (never the real service)."""

import datetime as dt
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine

from geo.ban import BanError, BanPaused, ban_search
from geo.geocoding import geocode, geocode_parts

pytestmark = pytest.mark.django_db


def feature(label, lon, lat, *, type_="housenumber", score=0.95, citycode="33063", postcode="33000"):
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": {
            "label": label,
            "score": score,
            "type": type_,
            "citycode": citycode,
            "postcode": postcode,
            "city": "Bordeaux",
        },
    }


RUE_SAINTE_CATHERINE = feature("12 Rue Sainte-Catherine 33000 Bordeaux", -0.5735, 44.8396)


class FakeBan:
    """What the fake server answers next, and the requests it received."""

    def __init__(self):
        self.status = 200
        self.body: bytes = json.dumps({"type": "FeatureCollection", "features": []}).encode()
        self.delay = 0.0
        self.content_length: int | None = None  # announce more bytes than sent: a cut-off answer
        self.requests: list[dict] = []

    def answer(self, *features, status=200):
        self.status = status
        self.body = json.dumps({"type": "FeatureCollection", "features": list(features)}).encode()


@pytest.fixture
def fake_ban(settings):
    state = FakeBan()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            url = urlsplit(self.path)
            state.requests.append({"path": url.path, **{k: v[0] for k, v in parse_qs(url.query).items()}})
            time.sleep(state.delay)
            self.send_response(state.status)
            self.send_header("Content-Type", "application/json")
            if state.content_length is not None:
                self.send_header("Content-Length", str(state.content_length))
            self.end_headers()
            self.wfile.write(state.body)

        def log_message(self, *args):
            pass

    class Server(ThreadingHTTPServer):
        def handle_error(self, request, client_address):
            pass  # a client that gave up (timeout test) leaves a broken pipe behind: expected

    server = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    settings.GEOCODER_BAN_ENABLED = True
    settings.GEOCODER_BAN_URL = f"http://127.0.0.1:{server.server_address[1]}"
    settings.GEOCODER_BAN_TIMEOUT = 2.0
    settings.GEOCODER_BAN_RETRY_AFTER = 0  # every test call reaches the fake; the pause has its own tests
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_street_address_is_placed_at_the_house_number(fake_ban):
    fake_ban.answer(
        RUE_SAINTE_CATHERINE, feature("Rue Sainte-Catherine 33000 Bordeaux", -0.574, 44.838, type_="street")
    )
    candidates = geocode("12 rue Sainte-Catherine 33000 Bordeaux")
    first = candidates[0]
    assert first.label == "12 Rue Sainte-Catherine 33000 Bordeaux"
    assert (first.point.x, first.point.y) == pytest.approx((-0.5735, 44.8396))
    assert first.point.srid == 4326
    assert first.precision == "address"
    assert first.score == pytest.approx(0.95)
    assert first.commune.code == "33063"
    assert candidates[1].precision == "street"
    [request] = fake_ban.requests
    assert request["path"] == "/search/"
    assert request["q"] == "12 rue Sainte-Catherine 33000 Bordeaux"
    assert request["postcode"] == "33000"
    assert request["limit"] == "10"


def test_weak_ban_guesses_give_way_to_the_commune(fake_ban):
    fake_ban.answer(feature("Rue de Nulle Part 75001 Paris", 2.34, 48.86, score=0.2, citycode="75101"))
    [candidate] = geocode("3 rue des Vignes 33700 Mérignac")
    assert candidate.commune.code == "33281"
    assert candidate.precision == "commune"


def test_commune_names_never_reach_the_ban(fake_ban):
    assert geocode("Bordeaux")[0].commune.code == "33063"
    assert geocode("33000")[0].commune.code == "33063"
    assert fake_ban.requests == []


def test_ban_is_not_called_when_disabled(fake_ban, settings):
    settings.GEOCODER_BAN_ENABLED = False
    first = geocode("12 rue Sainte-Catherine 33000 Bordeaux")[0]
    assert (first.commune.code, first.label, first.precision) == ("33063", "Bordeaux (33000)", "commune")
    assert fake_ban.requests == []


def test_geocode_parts_sends_the_street_address_to_the_ban(fake_ban):
    fake_ban.answer(feature("1 Route de Blaye 33920 Civrac-de-Blaye", -0.44, 45.11, citycode="33126", postcode="33920"))
    first = geocode_parts(address="1 route de Blaye", postal_code="33920", commune="Civrac de Blaye")[0]
    assert (first.commune.code, first.precision) == ("33126", "address")
    assert fake_ban.requests[0]["q"] == "1 route de Blaye 33920 Civrac de Blaye"


def test_unreachable_ban_falls_back_to_the_gazetteer(fake_ban, settings, caplog):
    settings.GEOCODER_BAN_URL = f"http://127.0.0.1:{closed_port()}"
    first = geocode("12 rue Sainte-Catherine 33000 Bordeaux")[0]
    assert (first.commune.code, first.precision) == ("33063", "commune")
    assert "BAN geocoder unavailable" in caplog.text


def test_slow_ban_times_out_and_falls_back(fake_ban, settings):
    settings.GEOCODER_BAN_TIMEOUT = 0.2
    fake_ban.delay = 1.0
    fake_ban.answer(RUE_SAINTE_CATHERINE)
    started = time.monotonic()
    first = geocode("12 rue Sainte-Catherine 33000 Bordeaux")[0]
    assert time.monotonic() - started < 0.9
    assert first.precision == "commune"


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (200, b"<html>maintenance</html>"),
        (200, b'{"type": "FeatureCollection"}'),
        (200, b'{"features": [{"properties": {"label": "x"}}]}'),
        (200, b'{"features": [{"geometry": {"coordinates": ["a", "b"]}, "properties": {"label": "x"}}]}'),
        (200, b"\xff\xfe\x00garbage"),
        (500, b'{"error": "boom"}'),
        (429, b'{"error": "too many requests"}'),
    ],
)
def test_malformed_or_failed_answers_fall_back_to_the_gazetteer(fake_ban, status, body, caplog):
    fake_ban.status, fake_ban.body = status, body
    with pytest.raises(BanError):
        ban_search(query="12 rue Sainte-Catherine 33000 Bordeaux")
    first = geocode("12 rue Sainte-Catherine, 33000 Bordeaux")[0]
    assert (first.commune.code, first.precision) == ("33063", "commune")
    assert "falling back to the gazetteer" in caplog.text


def test_cut_off_answer_falls_back_to_the_gazetteer(fake_ban):
    fake_ban.answer(RUE_SAINTE_CATHERINE)
    fake_ban.content_length = len(fake_ban.body)
    fake_ban.body = fake_ban.body[: len(fake_ban.body) // 2]  # the connection drops half-way
    with pytest.raises(BanError):
        ban_search(query="12 rue Sainte-Catherine 33000 Bordeaux")
    assert geocode("12 rue Sainte-Catherine 33000 Bordeaux")[0].precision == "commune"


def test_ban_points_out_of_range_are_dropped(fake_ban):
    fake_ban.answer(feature("Nowhere", 200.0, 44.8), RUE_SAINTE_CATHERINE)
    candidates = geocode("12 rue Sainte-Catherine 33000 Bordeaux")
    assert [c.label for c in candidates] == ["12 Rue Sainte-Catherine 33000 Bordeaux"]


def test_ban_search_parses_features(fake_ban):
    fake_ban.answer(RUE_SAINTE_CATHERINE)
    [result] = ban_search(query="12 rue Sainte-Catherine Bordeaux", limit=5)
    assert (result.label, result.type, result.citycode, result.postcode) == (
        "12 Rue Sainte-Catherine 33000 Bordeaux",
        "housenumber",
        "33063",
        "33000",
    )
    assert fake_ban.requests[0]["limit"] == "5"
    assert "postcode" not in fake_ban.requests[0]


# --- a server without Internet pays once, then answers from the gazetteer -------------------------


def test_after_a_failure_the_ban_is_left_alone_for_a_while(fake_ban, settings, caplog):
    settings.GEOCODER_BAN_RETRY_AFTER = 300
    fake_ban.answer(status=503)
    with time_machine.travel(dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC), tick=True) as clock:
        for _ in range(3):
            first = geocode("12 rue Sainte-Catherine 33000 Bordeaux")[0]
            assert (first.commune.code, first.precision) == ("33063", "commune")
        assert len(fake_ban.requests) == 1
        assert caplog.text.count("BAN geocoder unavailable") == 1
        assert "next try in 300 s" in caplog.text
        with pytest.raises(BanPaused):
            ban_search(query="12 rue Sainte-Catherine Bordeaux")
        # Five minutes later the service is asked again, and its answer is used.
        clock.shift(301)
        fake_ban.answer(RUE_SAINTE_CATHERINE)
        assert geocode("12 rue Sainte-Catherine 33000 Bordeaux")[0].precision == "address"
        assert len(fake_ban.requests) == 2


def test_an_unreachable_ban_costs_one_timeout_not_one_per_search(fake_ban, settings):
    settings.GEOCODER_BAN_RETRY_AFTER = 300
    settings.GEOCODER_BAN_TIMEOUT = 0.3
    fake_ban.delay = 1.0
    fake_ban.answer(RUE_SAINTE_CATHERINE)
    geocode("12 rue Sainte-Catherine 33000 Bordeaux")
    for number in range(2, 12):
        assert geocode(f"{number} rue Sainte-Catherine 33000 Bordeaux")[0].precision == "commune"
    # The ten searches after the first never waited for the BAN: none of them asked it.
    assert len(fake_ban.requests) == 1


def test_a_refused_query_does_not_pause_the_ban(fake_ban, settings):
    settings.GEOCODER_BAN_RETRY_AFTER = 300
    fake_ban.answer(status=400)
    assert geocode("12 rue Sainte-Catherine 33000 Bordeaux")[0].precision == "commune"
    fake_ban.answer(RUE_SAINTE_CATHERINE)
    assert geocode("12 rue Sainte-Catherine 33000 Bordeaux")[0].precision == "address"
    assert len(fake_ban.requests) == 2


def test_pointing_at_another_server_starts_afresh(fake_ban, settings):
    settings.GEOCODER_BAN_RETRY_AFTER = 300
    settings.GEOCODER_BAN_URL, working = f"http://127.0.0.1:{closed_port()}", settings.GEOCODER_BAN_URL
    assert geocode("12 rue Sainte-Catherine 33000 Bordeaux")[0].precision == "commune"
    settings.GEOCODER_BAN_URL = working  # e.g. a self-hosted Addok
    fake_ban.answer(RUE_SAINTE_CATHERINE)
    assert geocode("12 rue Sainte-Catherine 33000 Bordeaux")[0].precision == "address"
