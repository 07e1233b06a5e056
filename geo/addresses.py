"""The BAN's address files into a self-hosted Addok (`manage.py load_addresses`, `make addresses`).

The Base Adresse Nationale publishes, per département, its streets, localities and communes in
Addok's own format (`adresses-addok-33.ndjson.gz`: one JSON document a line, house numbers nested in
their street). A file is checked whole before anything is written, then fed to `addok batch` (the
project-local Redis of scripts/addok.sh, configured by config/addok.conf), then `addok ngrams`
builds the prefix index. Addok answers the BAN's /search/ API: `geo.ban` needs no change.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from django.conf import settings
from django.core.management.base import OutputWrapper

from geo.progress import Progress

DOCUMENT_TYPES = ("street", "locality", "municipality")
MAX_REPORTED_ERRORS = 20
DOWNLOAD_TIMEOUT = 30  # seconds without a byte before a download gives up
_MB = 1_000_000
# Which file loaded what, beside Addok's own keys (`addok reset` forgets it with them).
LOADED_KEY = "atlas|loaded"
_FILE_NAME = re.compile(r"adresses-addok-(?P<departement>\w+)\.ndjson(\.gz)?$")


class AddressesError(Exception):
    """A message for the person running the command, in French (nothing was loaded)."""


@dataclass(frozen=True)
class LoadedFile:
    label: str
    source: str
    documents: int
    housenumbers: int
    loaded_at: str


# --- files ----------------------------------------------------------------------------------


def addresses_file_url(departement: str) -> str:
    return settings.ADDRESSES_FILES_URL.format(departement=departement)


def addresses_label(source: str) -> str:
    """« 33 » for …/adresses-addok-33.ndjson.gz, else the file's name."""
    name = source.rstrip("/").rsplit("/", 1)[-1]
    match = _FILE_NAME.search(name)
    return match.group("departement") if match else name


def addresses_download(*, url: str, folder: Path, stream: TextIO | OutputWrapper | None = None) -> Path:
    """The file at `url`, saved in `folder` (whole, or not at all); AddressesError if it cannot be had."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / (url.rstrip("/").rsplit("/", 1)[-1] or "adresses.ndjson.gz")
    if not url.startswith(("http://", "https://")):
        raise AddressesError(f"Adresse de téléchargement non prise en charge : {url}")
    request = urllib.request.Request(url, headers={"User-Agent": "amap-atlas"})  # noqa: S310 (scheme checked)
    handle, partial = tempfile.mkstemp(dir=folder, prefix=".download-")
    try:
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT) as answer:  # noqa: S310
            size = answer.headers.get("Content-Length")
            progress = Progress(int(size) // _MB if size and size.isdigit() else None, "Mo téléchargés", stream)
            done = 0
            while chunk := answer.read(_MB):
                out.write(chunk)
                progress.advance((done + len(chunk)) // _MB - done // _MB)
                done += len(chunk)
            progress.finish()
        os.replace(partial, target)
    except urllib.error.HTTPError as error:
        raise AddressesError(
            f"Téléchargement impossible de {url} : le serveur répond « {error.code} {error.reason} »."
            + (" Vérifiez le code du département." if error.code == 404 else "")
        ) from error
    except (OSError, ValueError) as error:
        raise AddressesError(
            f"Téléchargement impossible de {url} ({_download_problem(error)}). Si cette machine n'a pas Internet, "
            "téléchargez ce fichier depuis une autre, puis donnez-le avec --file."
        ) from error
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return target


def _download_problem(error: Exception) -> str:
    """The cause of a failed download in plain French (the system's own words last)."""
    reason = getattr(error, "reason", None) or error
    if isinstance(reason, socket.gaierror):
        return "nom de serveur inconnu : cette machine n'a sans doute pas accès à Internet"
    if isinstance(reason, ConnectionRefusedError):
        return "connexion refusée"
    if isinstance(reason, TimeoutError | socket.timeout):
        return f"pas de réponse en {DOWNLOAD_TIMEOUT} s"
    return f"erreur réseau : {reason}"


def _open_lines(path: Path) -> Iterator[str]:
    with open(path, "rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    opener = gzip.open if gzipped else open
    with opener(path, "rt", encoding="utf-8") as handle:
        yield from handle


def addresses_check(path: Path, *, stream: TextIO | OutputWrapper | None = None) -> tuple[int, int]:
    """(documents, house numbers) of a BAN address file; AddressesError naming each bad line."""
    if not path.is_file():
        raise AddressesError(f"Fichier introuvable : {path}")
    errors: list[str] = []
    documents = housenumbers = 0
    progress = Progress(None, "lieux vérifiés", stream)
    try:
        for number, line in enumerate(_open_lines(path), start=1):
            if not line.strip():
                continue
            problem, numbers = _document_problem(line)
            if problem:
                errors.append(f"ligne {number} : {problem}")
                continue
            documents += 1
            housenumbers += numbers
            progress.advance()
    except (OSError, EOFError, zlib.error) as error:
        raise AddressesError(f"Fichier illisible ou tronqué : {path} ({error}).") from error
    except UnicodeDecodeError as error:
        raise AddressesError(f"Le fichier {path} n'est pas en UTF-8 ({error.reason}).") from error
    if errors:
        shown = errors[:MAX_REPORTED_ERRORS]
        more = len(errors) - len(shown)
        raise AddressesError(
            f"{path} n'est pas un fichier d'adresses au format Addok de la BAN ; rien n'a été chargé.\n  "
            + "\n  ".join(shown)
            + (f"\n  … et {more} autres lignes." if more else "")
        )
    if not documents:
        raise AddressesError(f"Aucune adresse dans {path} : rien n'a été chargé.")
    progress.finish()
    return documents, housenumbers


def _document_problem(line: str) -> tuple[str, int]:
    """(what is wrong with one line of a BAN address file or '', how many house numbers it holds)."""
    try:
        doc = json.loads(line)
    except json.JSONDecodeError:
        return "ce n'est pas un document JSON", 0
    if not isinstance(doc, dict):
        return "ce n'est pas un objet JSON", 0
    if doc.get("type") not in DOCUMENT_TYPES:
        return f"type « {doc.get('type')} » inconnu (attendu : street, locality ou municipality)", 0
    if not doc.get("id"):
        return "identifiant (id) manquant", 0
    if not doc.get("name"):
        return "nom (name) manquant", 0
    problem = _point_problem(doc)
    if problem:
        return problem, 0
    numbers = doc.get("housenumbers") or {}
    if not isinstance(numbers, dict):
        return "numéros (housenumbers) : un objet {numéro: {lat, lon}} est attendu", 0
    for housenumber, point in numbers.items():
        problem = _point_problem(point) if isinstance(point, dict) else "position manquante"
        if problem:
            return f"numéro {housenumber} : {problem}", 0
    return "", len(numbers)


def _point_problem(doc: dict) -> str:
    try:
        lat, lon = float(doc["lat"]), float(doc["lon"])
    except (KeyError, TypeError, ValueError):
        return "position (lat, lon) manquante ou illisible"
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
        return f"position hors du globe ({lat}, {lon})"
    return ""


# --- Addok --------------------------------------------------------------------------------


def _addok_command(*args: str) -> list[str]:
    # The console script installed beside this Python (the project's venv), else the one on PATH.
    beside = Path(sys.executable).with_name("addok")
    program = str(beside) if beside.exists() else shutil.which("addok")
    if not program:
        raise AddressesError(
            "Addok n'est pas installé : lancez `make addok` (il installe requirements-addok.txt et démarre le serveur)."
        )
    return [program, "--config", str(settings.ADDOK_CONFIG), *args]


def _addok_environment() -> dict[str, str]:
    return {
        **os.environ,
        "ADDOK_CONFIG_MODULE": str(settings.ADDOK_CONFIG),
        "ADDOK_VAR": str(settings.ADDOK_VAR),
        "ADDOK_REDIS_SOCKET": str(settings.ADDOK_REDIS_SOCKET),
    }


def _redis():
    """The project-local Redis of Addok, or AddressesError when it is not running."""
    try:
        import redis  # installed with addok (requirements-addok.txt)
    except ImportError as error:
        raise AddressesError("Addok n'est pas installé : lancez `make addok`.") from error
    client = redis.Redis(unix_socket_path=str(settings.ADDOK_REDIS_SOCKET), db=0, socket_timeout=30)
    try:
        client.ping()
    except redis.RedisError as error:
        raise AddressesError(
            "Le serveur d'adresses (Addok) ne tourne pas : lancez `make addok` "
            f"(ou bash scripts/addok.sh start). Socket attendu : {settings.ADDOK_REDIS_SOCKET}"
        ) from error
    return client


def addresses_loaded() -> dict[str, LoadedFile]:
    """What has been loaded into the running Addok, by label (département code or file name)."""
    raw = _redis().hgetall(LOADED_KEY)
    return {key.decode(): LoadedFile(**json.loads(value)) for key, value in raw.items()}


def addresses_reset() -> None:
    """Forget every address loaded (Addok's indexes and documents)."""
    _redis()
    _run_addok("reset", "--force")


def addresses_load(*, path: Path, label: str, source: str, stream: TextIO | OutputWrapper | None = None) -> LoadedFile:
    """Check `path` whole, then index it into the running Addok; a file loaded again overwrites itself."""
    client = _redis()
    documents, housenumbers = addresses_check(path, stream=stream)
    progress = Progress(documents, "lieux chargés", stream)
    log_path = Path(settings.ADDOK_VAR) / "load.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(  # noqa: S603 (our own console script, fixed arguments)
            _addok_command("batch"),
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_addok_environment(),
        )
        # A broken pipe means addok stopped early: its exit status and log say why.
        with contextlib.suppress(BrokenPipeError):
            for line in _open_lines(path):
                if line.strip():
                    process.stdin.write(line.encode("utf-8"))
                    progress.advance()
        with contextlib.suppress(BrokenPipeError):
            process.stdin.close()
        status = process.wait()
    if status != 0:
        raise AddressesError(f"Addok a refusé le fichier (code {status}) :\n{_tail(log_path)}")
    progress.finish()
    _run_addok("ngrams")
    loaded = LoadedFile(
        label=label,
        source=source,
        documents=documents,
        housenumbers=housenumbers,
        loaded_at=time.strftime("%Y-%m-%d %H:%M"),
    )
    client.hset(LOADED_KEY, label, json.dumps(loaded.__dict__))
    client.save()  # on disk now: a restart of Redis keeps the addresses
    return loaded


def _run_addok(*args: str) -> None:
    result = subprocess.run(  # noqa: S603 (our own console script, fixed arguments)
        _addok_command(*args), capture_output=True, text=True, env=_addok_environment(), check=False
    )
    if result.returncode != 0:
        raise AddressesError(f"Addok a échoué ({' '.join(args)}) :\n{(result.stdout + result.stderr)[-2000:]}")


def _tail(path: Path, size: int = 2000) -> str:
    text = path.read_bytes()[-size:].decode("utf-8", errors="replace")
    return text.replace("\r", "\n").strip()
