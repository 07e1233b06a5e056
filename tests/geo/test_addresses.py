"""A self-hosted Addok (scripts/addok.sh) loaded by `manage.py load_addresses`, then searched through the
site: a project-local Redis and Addok on a free port in a temporary folder, never the Internet."""

import gzip
import html
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.gis.geos import Point
from django.core.management import CommandError, call_command
from django.urls import reverse

from geo.addresses import addresses_loaded
from geo.ban import ban_is_paused
from geo.geocoding import geocode
from tests.factories import AmapFactory

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


def street(id_, name, lon, lat, numbers, *, postcode="33000", importance=0.6):
    """A street in the BAN's Addok format: the street's point, its house numbers nested."""
    return {
        "id": id_,
        "type": "street",
        "name": name,
        "postcode": postcode,
        "citycode": ["33063"],
        "lon": lon,
        "lat": lat,
        "city": ["Bordeaux"],
        "context": "33, Gironde, Nouvelle-Aquitaine",
        "importance": importance,
        "housenumbers": {
            number: {"id": f"{id_}_{int(number):05d}", "lon": x, "lat": y} for number, (x, y) in numbers.items()
        },
    }


# A few streets of Bordeaux; points read on OpenStreetMap (WGS84), rounded to about 10 m.
BORDEAUX = [
    {
        "id": "33063",
        "type": "municipality",
        "name": "Bordeaux",
        "postcode": ["33000", "33100", "33200", "33300", "33800"],
        "citycode": "33063",
        "lon": -0.5792,
        "lat": 44.8378,
        "city": "Bordeaux",
        "context": "33, Gironde, Nouvelle-Aquitaine",
        "importance": 0.7,
    },
    street(
        "33063_8145",
        "Rue Sainte-Catherine",
        -0.5733,
        44.8366,
        {"1": (-0.5738, 44.8418), "12": (-0.5736, 44.8409), "90": (-0.5731, 44.8355)},
        importance=0.65,
    ),
    street(
        "33063_4465", "Cours de l'Intendance", -0.5764, 44.8417, {"5": (-0.5749, 44.8420), "40": (-0.5780, 44.8414)}
    ),
    street("33063_6490", "Quai des Chartrons", -0.5693, 44.8528, {"30": (-0.5697, 44.8521)}, postcode="33300"),
]


def write_ndjson(path: Path, documents, *, compress=False) -> Path:
    text = "".join(json.dumps(doc, ensure_ascii=False) + "\n" for doc in documents)
    path.write_bytes(gzip.compress(text.encode()) if compress else text.encode())
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def addok_server():
    """Redis + Addok started by the project's own script, in a short temporary folder (Unix socket paths
    are limited to 107 characters), on a free port; stopped and removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="addok-"))
    port = free_port()
    env = {**os.environ, "ADDOK_VAR": str(folder), "ADDOK_PORT": str(port), "ADDOK_WORKERS": "1"}
    script = ["bash", str(ROOT / "scripts" / "addok.sh")]
    try:
        subprocess.run([*script, "start"], env=env, check=True, capture_output=True, timeout=60)
        yield {"var": folder, "url": f"http://127.0.0.1:{port}"}
    finally:
        subprocess.run([*script, "stop"], env=env, capture_output=True, timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def addok(addok_server, settings):
    """The running Addok, emptied, with the project's settings pointing at it."""
    settings.ADDOK_VAR = addok_server["var"]
    settings.ADDOK_REDIS_SOCKET = addok_server["var"] / "redis.sock"
    call_command("load_addresses", reset=True, stdout=StringIO())
    return addok_server


def load(*args, **options) -> str:
    """What the command prints: its report, then its progress lines."""
    out, progress = StringIO(), StringIO()
    call_command("load_addresses", *args, stdout=out, stderr=progress, **options)
    return out.getvalue() + progress.getvalue()


def search_page(client, q: str) -> str:
    response = client.get(reverse("directory:search"), {"q": q})
    assert response.status_code == 200
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", response.content.decode(), flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


def addok_search(url: str, q: str) -> list[dict]:
    query = urllib.parse.urlencode({"q": q, "limit": 10})
    with urllib.request.urlopen(f"{url}/search/?{query}", timeout=5) as answer:
        return [feature["properties"] for feature in json.load(answer)["features"]]


def test_a_street_address_is_found_at_its_house_number_by_a_self_hosted_addok(addok, settings, client, tmp_path):
    addresses = write_ndjson(tmp_path / "adresses-addok-33.ndjson.gz", BORDEAUX, compress=True)
    out = load(file=[str(addresses)])
    assert "33 : 4 voies, lieux-dits et communes (6 numéros) chargés." in out
    assert "4 / 4 lieux chargés" in out  # the progress line
    settings.GEOCODER_BAN_ENABLED = True
    settings.GEOCODER_BAN_URL = addok["url"]  # the Addok answers the BAN's own API
    AmapFactory(name="AMAP de la Comédie", location=Point(-0.5745, 44.8420, srid=4326))

    text = search_page(client, "12 rue Sainte-Catherine, Bordeaux")
    assert "AMAP les plus proches — 12 Rue Sainte-Catherine 33000 Bordeaux" in text
    assert "Adresse non trouvée" not in text
    assert "AMAP de la Comédie" in text
    best = geocode("12 rue Sainte-Catherine, Bordeaux")[0]
    assert best.precision == "address"
    assert (best.point.x, best.point.y) == pytest.approx((-0.5736, 44.8409))
    assert best.commune.code == "33063"
    # A street without a number is found at the street; a typo is forgiven (addok-fr's phonetics).
    assert geocode("cours de l'intendance, Bordeaux")[0].precision == "street"
    assert geocode("30 quai des Chartron 33300 Bordeaux")[0].label == "30 Quai des Chartrons 33300 Bordeaux"

    unknown = search_page(client, "7 rue Imaginaire, Bordeaux")
    assert "Adresse non trouvée : recherche autour du centre de Bordeaux" in unknown
    assert not ban_is_paused()  # Addok answered: the street is simply not in it


def test_loading_a_departement_twice_adds_nothing(addok, tmp_path):
    addresses = write_ndjson(tmp_path / "bordeaux.ndjson", BORDEAUX)
    load(file=[str(addresses)], departement=["33"])
    again = load(file=[str(addresses)], departement=["33"])
    assert "33 : déjà chargé le" in again and "--reload" in again
    load(file=[str(addresses)], departement=["33"], reload=True)
    streets = [p for p in addok_search(addok["url"], "rue Sainte-Catherine Bordeaux") if p["type"] == "street"]
    assert [p["label"] for p in streets] == ["Rue Sainte-Catherine 33000 Bordeaux"]
    assert list(addresses_loaded()) == ["33"]
    listing = load()
    assert "33 : 4 lieux, 6 numéros, chargés le" in listing


def test_a_bad_file_is_reported_by_line_and_nothing_is_loaded(addok, tmp_path):
    bad = [
        BORDEAUX[1],
        "not json",
        {**BORDEAUX[2], "type": "building"},
        {**BORDEAUX[3], "lat": 144.8},
        street("33063_1", "Rue Sans Point", -0.57, 44.84, {"3": (-0.57, None)}),
    ]
    path = tmp_path / "adresses-addok-33.ndjson"
    path.write_text("\n".join(doc if isinstance(doc, str) else json.dumps(doc) for doc in bad) + "\n")
    with pytest.raises(CommandError) as error:
        load(file=[str(path)])
    message = str(error.value)
    assert "rien n'a été chargé" in message
    assert "ligne 2 : ce n'est pas un document JSON" in message
    assert "ligne 3 : type « building » inconnu" in message
    assert "ligne 4 : position hors du globe (144.8, -0.5693)" in message
    assert "ligne 5 : numéro 3 : position (lat, lon) manquante ou illisible" in message
    assert addok_search(addok["url"], "rue Sainte-Catherine Bordeaux") == []
    assert addresses_loaded() == {}


# --- without a running Addok ----------------------------------------------------------------


@pytest.fixture
def ban_files(settings, tmp_path):
    """A local stand-in for adresse.data.gouv.fr's folder of addok files (never the real site)."""
    folder = tmp_path / "ban"
    folder.mkdir()
    write_ndjson(folder / "adresses-addok-33.ndjson.gz", BORDEAUX, compress=True)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            file = folder / self.path.lstrip("/")
            if not file.is_file():
                self.send_error(404)
                return
            body = file.read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    settings.ADDRESSES_FILES_URL = (
        f"http://127.0.0.1:{server.server_address[1]}/adresses-addok-{{departement}}.ndjson.gz"
    )
    settings.ADDOK_VAR = tmp_path / "addok"
    settings.ADDOK_REDIS_SOCKET = tmp_path / "addok" / "redis.sock"  # nothing listens there
    try:
        yield folder
    finally:
        server.shutdown()
        server.server_close()


def test_a_departement_file_is_downloaded_then_checked(ban_files, settings):
    out = load(departement=["33"], check=True)
    assert "33 : téléchargement de http://127.0.0.1:" in out
    assert "33 : fichier valable, 4 lieux, 6 numéros." in out
    assert (settings.ADDOK_VAR / "files" / "adresses-addok-33.ndjson.gz").is_file()


def test_a_failed_download_says_what_to_do_instead(ban_files, settings):
    with pytest.raises(CommandError, match=r"le serveur répond « 404 .*Vérifiez le code du département"):
        load(departement=["24"], check=True)
    with socket.socket() as sock:  # a port where nothing answers: a machine without Internet
        sock.bind(("127.0.0.1", 0))
        settings.ADDRESSES_FILES_URL = f"http://127.0.0.1:{sock.getsockname()[1]}/{{departement}}.ndjson.gz"
    with pytest.raises(CommandError) as error:
        load(departement=["33"], check=True)
    assert "Téléchargement impossible de http://127.0.0.1:" in str(error.value)
    assert "(connexion refusée)" in str(error.value)
    assert "téléchargez ce fichier depuis une autre, puis donnez-le avec --file" in str(error.value)
    assert not list((settings.ADDOK_VAR / "files").glob("*"))  # no half file left behind


def test_loading_without_a_running_addok_says_how_to_start_it(ban_files, tmp_path):
    path = write_ndjson(tmp_path / "adresses-addok-33.ndjson", BORDEAUX)
    with pytest.raises(CommandError, match=r"Le serveur d'adresses \(Addok\) ne tourne pas : lancez `make addok`"):
        load(file=[str(path)])


def test_unknown_departements_and_unreadable_files_are_refused(ban_files, tmp_path):
    with pytest.raises(CommandError, match="Département inconnu : « 99 »"):
        load(departement=["99"], check=True)
    with pytest.raises(CommandError, match="Autant de --file que de --departement"):
        load(departement=["33", "24"], file=["a.ndjson"], check=True)
    with pytest.raises(CommandError, match="Fichier introuvable"):
        load(file=[str(tmp_path / "absent.ndjson")], check=True)
    cut = tmp_path / "adresses-addok-33.ndjson.gz"
    cut.write_bytes((ban_files / "adresses-addok-33.ndjson.gz").read_bytes()[:-20])
    with pytest.raises(CommandError, match="Fichier illisible ou tronqué"):
        load(file=[str(cut)], check=True)
    empty = tmp_path / "vide.ndjson"
    empty.write_text("\n")
    with pytest.raises(CommandError, match="Aucune adresse dans"):
        load(file=[str(empty)], check=True)
