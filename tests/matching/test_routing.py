"""Drive times: the labelled estimate, and the OSRM adapter against a local fake server (with fallback)."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from matching import routing
from matching.selectors import matches_for_annonce
from tests.factories import LIBOURNE, AmapFactory, FarmFactory

from .conftest import farm_annonce, point_at


class FakeOsrm(BaseHTTPRequestHandler):
    """Answers /table/v1/driving/…: 100 s per destination index, or `null` for the second one."""

    requests: list[str] = []
    status = 200

    def do_GET(self):  # noqa: N802 - http.server's naming
        FakeOsrm.requests.append(self.path)
        parsed = urlsplit(self.path)
        coordinates = parsed.path.rsplit("/", 1)[-1].split(";")
        assert parse_qs(parsed.query)["sources"] == ["0"]
        durations = [0.0] + [100.0 * i for i in range(1, len(coordinates))]
        if len(durations) > 2:
            durations[2] = None
        body = json.dumps({"code": "Ok", "durations": [durations]}).encode()
        self.send_response(FakeOsrm.status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_osrm():
    FakeOsrm.requests = []
    FakeOsrm.status = 200
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeOsrm)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_estimate_is_distance_times_circuity_over_speed(settings):
    settings.ROUTING_CIRCUITY_FACTOR = 1.25
    settings.ROUTING_SPEED_KMH = 50
    drive = routing.estimate(20_000)
    assert drive.minutes == pytest.approx(20 * 1.25 / 50 * 60)  # 30 min
    assert drive.is_estimate
    assert routing.describe(drive) == "environ 30 min de route (estimation)"


def test_osrm_durations_replace_the_estimate(settings, fake_osrm):
    settings.ROUTING_BACKEND = "osrm"
    settings.ROUTING_OSRM_URL = fake_osrm
    drives = routing.drive_times(
        origin=(-0.24, 44.91),
        destinations=[(-0.58, 44.84), (-0.64, 44.84), (-0.5, 44.9)],
        distances_m=[30_000, 35_000, 20_000],
    )
    assert [d.source for d in drives] == ["osrm", "estimation", "osrm"]  # OSRM had no route to the second
    assert drives[0].minutes == pytest.approx(100 / 60, abs=0.05)
    assert drives[2].minutes == pytest.approx(300 / 60, abs=0.05)
    assert drives[1].minutes == pytest.approx(35 * 1.3, abs=0.1)
    assert FakeOsrm.requests[0].startswith("/table/v1/driving/-0.240000,44.910000;-0.580000,44.840000")


def test_unreachable_routing_service_falls_back_to_the_estimate(settings):
    settings.ROUTING_BACKEND = "osrm"
    settings.ROUTING_OSRM_URL = "http://127.0.0.1:9"  # discard port: nothing listens
    settings.ROUTING_TIMEOUT = 0.5
    drives = routing.drive_times(origin=(0, 45), destinations=[(0.1, 45)], distances_m=[8000])
    assert drives == [routing.estimate(8000)]


def test_routing_error_status_falls_back(settings, fake_osrm):
    settings.ROUTING_BACKEND = "osrm"
    settings.ROUTING_OSRM_URL = fake_osrm
    FakeOsrm.status = 500
    drives = routing.drive_times(origin=(0, 45), destinations=[(0.1, 45)], distances_m=[8000])
    assert drives[0].is_estimate


@pytest.mark.django_db
def test_matches_show_routed_times_when_enabled(settings, fake_osrm):
    settings.ROUTING_BACKEND = "osrm"
    settings.ROUTING_OSRM_URL = fake_osrm
    farm = FarmFactory(location=LIBOURNE)
    # Matching measures from the farm's public point (issue 12).
    AmapFactory(name="Proche", location=point_at(farm.public_location, km=5))
    annonce = farm_annonce(farm)

    (match,) = matches_for_annonce(annonce=annonce)

    assert match.drive_source == "osrm", FakeOsrm.requests
    assert match.reasons[0] == "à 5,0 km, 2 min de route (itinéraire calculé)"
