"""A backup restores: the test database, with AMAPs, farms and a signed contract, is backed up,
restored into a fresh database, and the copy holds the same rows, a verifying evidence chain and
the signed PDF byte for byte.

pg_dump sees committed rows only. A transactional test (`django_db(transaction=True)`) would
flush every table afterwards, France's communes included, which the rest of the suite needs. As
in tests/contracts/test_concurrency.py, the test's own connection only reads; the rows are
written and then deleted (marked by a name and an e-mail domain) on a connection of their own.
"""

import hashlib
import os
import subprocess
import sys
import tarfile
import uuid
from io import BytesIO, StringIO
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from psycopg import sql

from accounts.models import User
from contracts.evidence import evidence_verify
from contracts.models import (
    Absence,
    Charter,
    Contract,
    ContractDocument,
    Delivery,
    EvidenceEvent,
    Signature,
    SignatureChallenge,
    Subscription,
)
from directory.models import Amap, Farm
from geo.models import Commune
from ops.backup import database_drop, libpq_params, table_counts
from tests.contracts.factories import ContractFactory, ContractProductFactory, weekly_deliveries
from tests.contracts.signed_contracts import PDF, signed_subscription
from tests.contracts.test_concurrency import in_own_connection
from tests.factories import AmapFactory, FarmFactory, UserFactory

ROOT = Path(__file__).resolve().parents[2]
MARK = "Test de sauvegarde"
DOMAIN = "sauvegarde.example.org"
MAIN_MODELS = [Commune, User, Amap, Farm, Contract, Delivery, Subscription, ContractDocument, Signature, EvidenceEvent]


def person(name: str) -> User:
    return UserFactory(email=f"{name}@{DOMAIN}", password="!")


def _set_up() -> str:
    """Three AMAPs, two farms, a contract signed by both parties; returns the signed PDF's SHA-256."""
    amaps = [AmapFactory(name=f"{MARK} AMAP {index}") for index in range(3)]
    farms = [FarmFactory(name=f"{MARK} ferme {index}") for index in range(2)]
    contract = ContractFactory(title=MARK, amap=amaps[0], farm=farms[0], referent=person("referent"))
    weekly_deliveries(contract)
    ContractProductFactory(contract=contract, name="Petit panier", position=0)
    contract.farm.managers.add(person("paysan"))
    subscription = signed_subscription(contract, member=person("adherente"))
    return subscription.document.sha256


def _cleanup() -> None:
    contract_ids = list(Contract.objects.filter(title=MARK).values_list("pk", flat=True))
    EvidenceEvent.objects.filter(contract_id__in=contract_ids).delete()  # the chain's tail: it still verifies
    subscriptions = Subscription.objects.filter(contract_id__in=contract_ids)
    for model in (Signature, SignatureChallenge, ContractDocument, Absence):
        model.objects.filter(subscription__in=subscriptions).delete()
    subscriptions.delete()
    Contract.objects.filter(pk__in=contract_ids).delete()
    Amap.objects.filter(name__startswith=MARK).delete()
    Farm.objects.filter(name__startswith=MARK).delete()
    Charter.objects.filter(version="test-2027", signature__isnull=True).delete()
    User.objects.filter(email__endswith=f"@{DOMAIN}").delete()


def _environment_for(database: str) -> dict[str, str]:
    """This process's settings, pointed at another database of the same server."""
    env = dict(os.environ)
    if env.get("DATABASE_URL"):
        env["DATABASE_URL"] = urlunsplit(urlsplit(env["DATABASE_URL"])._replace(path=f"/{database}"))
    else:
        env["ATLAS_DB_NAME"] = database
    return env


def _counts(database: str, tables: list[str]) -> dict[str, int]:
    with psycopg.connect(**libpq_params(dbname=database)) as conn:
        return {
            table: conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()[0]
            for table in tables
        }


@pytest.mark.django_db
def test_a_backup_restores_into_a_fresh_database_with_its_rows_evidence_chain_and_signed_pdf(tmp_path, settings):
    in_own_connection(_cleanup)
    source = libpq_params()["dbname"]
    restored = f"{source}_restauration_{uuid.uuid4().hex[:8]}"
    # Nothing lives under MEDIA_ROOT today (signed PDFs are in the database); a file there must come back too.
    settings.MEDIA_ROOT = tmp_path / "media"
    (settings.MEDIA_ROOT / "exports").mkdir(parents=True)
    (settings.MEDIA_ROOT / "exports" / "adherents.csv").write_bytes("nom;commune\nAmélie;Bordeaux\n".encode())
    try:
        pdf_sha256 = in_own_connection(_set_up)
        assert pdf_sha256 == hashlib.sha256(PDF).hexdigest()
        assert evidence_verify().ok
        tables = [model._meta.db_table for model in MAIN_MODELS]
        before = _counts(source, tables)
        assert before["directory_amap"] >= 3 and before["contracts_signature"] >= 2 and before["geo_commune"] > 30000

        call_command("backup", dir=tmp_path / "sauvegardes", stdout=StringIO())
        [archive] = (tmp_path / "sauvegardes").glob("atlas-*.tar")
        assert oct(archive.stat().st_mode & 0o777) == "0o600"  # personal data inside
        out = StringIO()
        call_command("restore", str(archive), into=restored, media_dir=tmp_path / "media-restauré", stdout=out)
        assert f"Base « {restored} » créée et restaurée" in out.getvalue()

        # Every main table has the same rows; so has every other table of the application.
        assert _counts(restored, tables) == before
        with psycopg.connect(**libpq_params(dbname=source)) as conn:
            everything = table_counts(conn)
        with psycopg.connect(**libpq_params(dbname=restored)) as conn:
            assert table_counts(conn) == everything
            pdf, stored_sha256, signed_sha256 = conn.execute(
                "SELECT d.pdf, d.sha256, s.document_sha256 FROM contracts_contractdocument d"
                " JOIN contracts_subscription u ON u.id = d.subscription_id"
                " JOIN contracts_contract c ON c.id = u.contract_id"
                " JOIN contracts_signature s ON s.subscription_id = u.id WHERE c.title = %s LIMIT 1",
                [MARK],
            ).fetchone()
        # The signed PDF comes back byte for byte: its hash is the one both signatures bind to.
        assert hashlib.sha256(pdf).hexdigest() == stored_sha256 == signed_sha256 == pdf_sha256

        # The evidence chain verifies in the restored database, checked by a process of its own.
        verify = subprocess.run(
            [sys.executable, "manage.py", "verify_evidence"],
            cwd=ROOT,
            env=_environment_for(restored),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert verify.returncode == 0, verify.stderr
        assert f"{before['contracts_evidenceevent']} événements vérifiés" in verify.stdout

        restored_file = tmp_path / "media-restauré" / "exports" / "adherents.csv"
        assert restored_file.read_bytes() == (settings.MEDIA_ROOT / "exports" / "adherents.csv").read_bytes()

        # A database that holds data is not overwritten without --replace.
        with pytest.raises(CommandError, match=f"La base « {restored} » contient déjà .* --replace"):
            call_command("restore", str(archive), into=restored, media_dir=tmp_path / "media-restauré")
        # A damaged archive is refused before anything is touched.
        damaged = tmp_path / "abîmée.tar"
        with tarfile.open(archive) as original, tarfile.open(damaged, "w") as copy:
            for member in original.getmembers():
                data = original.extractfile(member).read()
                if member.name == "database.dump":
                    data = data[:-1] + bytes([data[-1] ^ 1])
                copy.addfile(member, BytesIO(data))
        with pytest.raises(CommandError, match="Archive corrompue : « database.dump »"):
            call_command("restore", str(damaged), into=f"{restored}_jamais")
    finally:
        database_drop(name=restored)
        database_drop(name=f"{restored}_jamais")
        in_own_connection(_cleanup)
    assert not Contract.objects.filter(title=MARK).exists()
    assert not User.objects.filter(email__endswith=f"@{DOMAIN}").exists()
