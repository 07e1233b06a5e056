"""Backups that restore: one tar archive per backup holding

- `database.dump`: `pg_dump --format=custom` of the whole database (signed contract PDFs
  included: `ContractDocument.pdf` is a column, not a file);
- `media/…`: the files under MEDIA_ROOT (none today; kept so future uploads are not forgotten);
- `manifest.json`: when, which server, the row count of every table and the SHA-256 of every member.

The counts and the dump come from one snapshot (`pg_export_snapshot` + `pg_dump --snapshot`), so a
backup taken while the site is in use still matches its manifest exactly. A restore checks every
SHA-256 before touching anything, restores in one transaction, then compares each table's rows
with the manifest.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg
from django.conf import settings
from django.db import connections
from django.utils import timezone
from psycopg import sql

FORMAT = 1
DUMP_NAME = "database.dump"
MANIFEST_NAME = "manifest.json"
MEDIA_DIR = "media"
ARCHIVE_RE = re.compile(r"^atlas-(\d{8}-\d{6})(?:-(\d+))?\.tar$")
# libpq keys a DATABASES entry may carry in OPTIONS, and their environment variables.
_LIBPQ_ENV = {
    "host": "PGHOST",
    "port": "PGPORT",
    "user": "PGUSER",
    "password": "PGPASSWORD",
    "dbname": "PGDATABASE",
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "connect_timeout": "PGCONNECT_TIMEOUT",
}
# Tables the application owns: not PostgreSQL's, not an extension's (PostGIS' spatial_ref_sys).
_USER_TABLES = """
SELECT n.nspname, c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
  AND NOT EXISTS (
    SELECT 1 FROM pg_depend d
    WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
  )
ORDER BY 1, 2
"""


class BackupError(Exception):
    """A backup or restore that cannot go on; the message is for the person running it (French)."""


@dataclass(frozen=True)
class BackupReport:
    path: Path
    size: int
    tables: int
    rows: int
    media_files: int


@dataclass(frozen=True)
class RestoreReport:
    database: str
    created: bool
    tables: int
    rows: int
    media_files: int
    backup_created_at: str


def libpq_params(*, alias: str = "default", dbname: str | None = None) -> dict[str, str]:
    """Connection settings of a Django database (DATABASE_URL or the local cluster) for libpq."""
    db = connections[alias].settings_dict
    params = {
        "dbname": dbname or db["NAME"],
        "host": db.get("HOST") or "",
        "port": str(db.get("PORT") or ""),
        "user": db.get("USER") or "",
        "password": db.get("PASSWORD") or "",
    }
    options = db.get("OPTIONS") or {}
    params.update({key: str(options[key]) for key in _LIBPQ_ENV if key in options and key not in params})
    return {key: value for key, value in params.items() if value}


def _pg_env(params: dict[str, str]) -> dict[str, str]:
    # The password travels in the environment, never on a command line that `ps` shows.
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env.update({_LIBPQ_ENV[key]: value for key, value in params.items()})
    return env


def _pg_tool(name: str, server_version: int) -> str:
    """pg_dump/pg_restore of the server's major version: an older one refuses a newer server."""
    major = server_version // 10000
    folders = [Path(settings.PG_BIN_DIR)] if settings.PG_BIN_DIR else []
    folders.append(Path(f"/usr/lib/postgresql/{major}/bin"))
    for folder in folders:
        if os.access(folder / name, os.X_OK):
            return str(folder / name)
    found = shutil.which(name)
    if found:
        return found
    raise BackupError(
        f"{name} introuvable : installez le client PostgreSQL {major} (paquet postgresql-client-{major}) "
        "ou indiquez son dossier dans la variable PG_BIN_DIR."
    )


def _run(command: list[str], params: dict[str, str]) -> None:
    result = subprocess.run(command, env=_pg_env(params), capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        tool = Path(command[0]).name
        raise BackupError(f"{tool} a échoué : {result.stderr.strip()[-2000:]}")


def _connect(params: dict[str, str], **kwargs) -> psycopg.Connection:
    try:
        return psycopg.connect(**params, **kwargs)
    except psycopg.OperationalError as error:
        raise BackupError(
            f"Connexion impossible à la base « {params.get('dbname')} » : {str(error).strip()}"
        ) from error


def _user_tables(conn: psycopg.Connection) -> list[tuple[str, str]]:
    return conn.execute(_USER_TABLES).fetchall()


def table_counts(conn: psycopg.Connection) -> dict[str, int]:
    """Exact row count of every application table, as `schema.table`."""
    counts = {}
    for schema, table in _user_tables(conn):
        query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, table))
        counts[f"{schema}.{table}"] = conn.execute(query).fetchone()[0]
    return counts


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _media_files(media_root: Path) -> list[Path]:
    if not media_root.is_dir():
        return []
    return sorted(path for path in media_root.rglob("*") if path.is_file() and not path.is_symlink())


def _archive_path(directory: Path, stamp: str) -> Path:
    path = directory / f"atlas-{stamp}.tar"
    number = 2
    while path.exists():  # two backups in the same second
        path = directory / f"atlas-{stamp}-{number}.tar"
        number += 1
    return path


def backups_prune(*, directory: Path, keep: int) -> list[Path]:
    """Delete all but the `keep` newest archives of `directory`; returns the deleted paths."""
    archives = []
    for path in directory.iterdir():
        match = ARCHIVE_RE.match(path.name)
        if match and path.is_file():
            archives.append(((match[1], int(match[2] or 1)), path))
    archives.sort(reverse=True)
    deleted = [path for _, path in archives[keep:]]
    for path in deleted:
        path.unlink()
    return deleted


def backup_create(
    *, directory: Path, alias: str = "default", media_root: Path | None = None, now: dt.datetime | None = None
) -> BackupReport:
    """Write `atlas-YYYYmmdd-HHMMSS.tar` into `directory` (created, readable by its owner only)."""
    media_root = Path(media_root if media_root is not None else settings.MEDIA_ROOT)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    params = libpq_params(alias=alias)
    stamp = timezone.localtime(now or timezone.now()).strftime("%Y%m%d-%H%M%S")
    with tempfile.TemporaryDirectory(dir=directory, prefix=".en-cours-") as work:
        dump = Path(work) / DUMP_NAME
        with _connect(params) as conn:
            # One snapshot for the dump and the counts: writes during the backup are in neither.
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            conn.read_only = True
            snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
            server_version = conn.info.server_version
            pg_dump = _pg_tool("pg_dump", server_version)
            _run([pg_dump, "--format=custom", f"--snapshot={snapshot}", f"--file={dump}"], params)
            counts = table_counts(conn)
            conn.rollback()
        media = _media_files(media_root)
        files = {DUMP_NAME: {"size": dump.stat().st_size, "sha256": _sha256(dump)}}
        for path in media:
            name = f"{MEDIA_DIR}/{path.relative_to(media_root).as_posix()}"
            files[name] = {"size": path.stat().st_size, "sha256": _sha256(path)}
        manifest = {
            "format": FORMAT,
            "created_at": timezone.localtime().isoformat(timespec="seconds"),
            "database": params["dbname"],
            "server_version": server_version,
            "tables": counts,
            "files": files,
        }
        manifest_path = Path(work) / MANIFEST_NAME
        manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")

        target = _archive_path(directory, stamp)
        partial = Path(work) / target.name
        # Personal data inside: the archive is readable by its owner only.
        with (
            os.fdopen(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as raw,
            tarfile.open(fileobj=raw, mode="w") as tar,  # uncompressed: the dump already is
        ):
            tar.add(manifest_path, arcname=MANIFEST_NAME)
            tar.add(dump, arcname=DUMP_NAME)
            for path in media:
                tar.add(path, arcname=f"{MEDIA_DIR}/{path.relative_to(media_root).as_posix()}")
        os.replace(partial, target)  # never a half-written archive under the final name
    return BackupReport(
        path=target, size=target.stat().st_size, tables=len(counts), rows=sum(counts.values()), media_files=len(media)
    )


def _unpack(archive: Path, work: Path) -> dict:
    """Extract `archive` into `work` and check it against its manifest; returns the manifest."""
    if not archive.is_file():
        raise BackupError(f"Archive introuvable : {archive}")
    try:
        with tarfile.open(archive, mode="r") as tar:
            tar.extractall(work, filter="data")  # no absolute paths, no "..", no links outside
    except tarfile.ReadError as error:
        raise BackupError(f"« {archive} » n'est pas une archive de sauvegarde (tar illisible).") from error
    except (tarfile.TarError, OSError) as error:
        raise BackupError(f"« {archive} » n'a pas pu être extraite : {error}") from error
    try:
        manifest = json.loads((work / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise BackupError(f"« {archive} » n'a pas de manifeste lisible ({MANIFEST_NAME}).") from error
    if manifest.get("format") != FORMAT:
        raise BackupError(f"Format de sauvegarde inconnu ({manifest.get('format')}) : attendu {FORMAT}.")
    for name, meta in manifest["files"].items():
        path = work / name
        if not path.is_file() or _sha256(path) != meta["sha256"]:
            raise BackupError(f"Archive corrompue : « {name} » manque ou ne correspond pas à son empreinte SHA-256.")
    return manifest


def _media_conflicts(manifest: dict, work: Path, media_root: Path) -> list[str]:
    conflicts = []
    for name, meta in manifest["files"].items():
        if name.startswith(f"{MEDIA_DIR}/"):
            destination = media_root / name.removeprefix(f"{MEDIA_DIR}/")
            if destination.exists() and _sha256(destination) != meta["sha256"]:
                conflicts.append(str(destination))
    return conflicts


def _media_copy(manifest: dict, work: Path, media_root: Path) -> int:
    copied = 0
    for name in manifest["files"]:
        if name.startswith(f"{MEDIA_DIR}/"):
            destination = media_root / name.removeprefix(f"{MEDIA_DIR}/")
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(work / name, destination)
            copied += 1
    return copied


def backup_restore(
    *,
    archive: Path,
    database: str | None = None,
    replace: bool = False,
    alias: str = "default",
    media_root: Path | None = None,
) -> RestoreReport:
    """Restore `archive` into `database` (default: the configured one) on the configured server.

    A missing database is created; one that already holds tables is only overwritten with
    `replace=True`. The restore runs in one transaction: on error the database is left as it was.
    """
    media_root = Path(media_root if media_root is not None else settings.MEDIA_ROOT)
    params = libpq_params(alias=alias, dbname=database)
    name = params["dbname"]
    with tempfile.TemporaryDirectory(prefix="atlas-restauration-") as folder:
        work = Path(folder)
        manifest = _unpack(archive, work)
        conflicts = _media_conflicts(manifest, work, media_root)
        if conflicts and not replace:
            raise BackupError(
                f"{len(conflicts)} fichier(s) de {media_root} diffèrent de la sauvegarde (dont {conflicts[0]}) : "
                "relancez avec --replace pour les écraser, ou choisissez un autre dossier avec --media-dir."
            )

        created = False
        with _connect({**params, "dbname": "postgres"}, autocommit=True) as admin:
            server_version = admin.info.server_version
            exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
            if not exists:
                admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                created = True
        if not created:
            with _connect(params) as conn:
                tables = len(_user_tables(conn))
            if tables and not replace:
                raise BackupError(
                    f"La base « {name} » contient déjà {tables} tables : la restauration remplacerait leur contenu. "
                    "Relancez avec --replace pour l'écraser, ou restaurez dans une nouvelle base avec --into <nom>."
                )
        command = [
            _pg_tool("pg_restore", server_version),
            "--no-owner",  # the restoring role owns everything, whoever made the backup
            "--no-privileges",
            "--exit-on-error",
            "--single-transaction",  # all or nothing
            f"--dbname={name}",
        ]
        if not created and replace:
            command += ["--clean", "--if-exists"]
        try:
            _run([*command, str(work / DUMP_NAME)], params)
        except BackupError:
            if created:
                database_drop(name=name, alias=alias)
            raise

        with _connect(params) as conn:
            counts = {table: count for table, count in table_counts(conn).items() if table in manifest["tables"]}
        different = [
            f"{table} : {counts.get(table, 'absente')} lignes au lieu de {expected}"
            for table, expected in manifest["tables"].items()
            if counts.get(table) != expected
        ]
        if different:
            raise BackupError(
                f"La base « {name} » ne correspond pas à la sauvegarde ({len(different)} tables) : "
                + " ; ".join(different[:5])
            )
        media_files = _media_copy(manifest, work, media_root)
    return RestoreReport(
        database=name,
        created=created,
        tables=len(counts),
        rows=sum(counts.values()),
        media_files=media_files,
        backup_created_at=manifest["created_at"],
    )


def database_drop(*, name: str, alias: str = "default") -> None:
    """Drop database `name` on the configured server (a restore check's scratch database)."""
    params = libpq_params(alias=alias, dbname="postgres")
    with _connect(params, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
