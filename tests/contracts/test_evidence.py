"""The evidence trail: any edit or deletion is detected, redaction keeps the chain valid."""

import datetime as dt
import threading
from decimal import Decimal

import pytest
from django.db import connection, transaction

from contracts.evidence import (
    REDACTED_KIND,
    canonical_json,
    chain_hash,
    evidence_append,
    evidence_head,
    evidence_redact,
    evidence_verify,
    payload_digest,
)
from contracts.models import EvidenceEvent

pytestmark = pytest.mark.django_db


def _trail(count: int = 5) -> list[EvidenceEvent]:
    return [
        evidence_append(
            kind="signature.signed",
            payload={"signer_name": f"Adhérente {n}", "role": "member", "amount": Decimal("12.50"), "n": n},
            contract_id=7,
            subscription_id=100 + n,
            actor_id=n,
        )
        for n in range(count)
    ]


def _sql(statement: str, params: list) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def test_canonical_json_is_stable_and_keeps_accents():
    payload = {"b": Decimal("1.10"), "a": dt.date(2027, 4, 6), "nom": "Éloïse"}
    assert canonical_json(payload) == '{"a":"2027-04-06","b":"1.10","nom":"Éloïse"}'


def test_untouched_trail_verifies():
    events = _trail()
    report = evidence_verify()
    assert report.ok, report.reason
    assert report.checked == len(events)
    assert events[1].previous_hash == events[0].hash
    assert events[0].previous_hash == "0" * 64


def test_payload_survives_the_database_round_trip():
    event = evidence_append(kind="test", payload={"price": Decimal("2.40"), "when": dt.datetime(2027, 4, 6, 18, 30)})
    event.refresh_from_db()
    assert event.payload == {"price": "2.40", "when": "2027-04-06T18:30:00"}
    assert evidence_verify().ok


def test_edited_payload_is_detected():
    events = _trail()
    _sql(
        "UPDATE contracts_evidenceevent SET payload = jsonb_set(payload, '{signer_name}', %s::jsonb) WHERE id = %s",
        ["\"Quelqu'un d'autre\"", events[2].pk],
    )
    report = evidence_verify()
    assert not report.ok
    assert report.first_bad_id == events[2].pk
    assert "contenu" in report.reason


def test_edited_payload_with_recomputed_digest_is_detected():
    """Someone who also recomputes the payload digest still breaks the row's hash."""
    events = _trail()
    forged = {**events[2].payload, "signer_name": "Faussaire"}
    _sql(
        "UPDATE contracts_evidenceevent SET payload = %s::jsonb, payload_sha256 = %s WHERE id = %s",
        [canonical_json(forged), payload_digest(forged), events[2].pk],
    )
    report = evidence_verify()
    assert not report.ok
    assert report.first_bad_id == events[2].pk


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE contracts_evidenceevent SET kind = 'signature.cancelled' WHERE id = %s",
        "UPDATE contracts_evidenceevent SET created_at = created_at - interval '1 day' WHERE id = %s",
        "UPDATE contracts_evidenceevent SET subscription_id = 999 WHERE id = %s",
        "UPDATE contracts_evidenceevent SET hash = repeat('a', 64) WHERE id = %s",
    ],
    ids=["kind", "date", "subscription", "hash"],
)
def test_edited_row_fields_are_detected(statement):
    events = _trail()
    _sql(statement, [events[3].pk])
    report = evidence_verify()
    assert not report.ok
    assert report.first_bad_id == events[3].pk


def test_deleted_middle_row_is_detected_at_the_next_row():
    events = _trail()
    _sql("DELETE FROM contracts_evidenceevent WHERE id = %s", [events[2].pk])
    report = evidence_verify()
    assert not report.ok
    assert report.first_bad_id == events[3].pk
    assert "supprimé" in report.reason


def test_deleted_last_rows_are_detected_only_against_an_anchor():
    events = _trail()
    head = evidence_head()
    assert head.count == 5 and head.last_hash == events[-1].hash
    _sql("DELETE FROM contracts_evidenceevent WHERE id >= %s", [events[3].pk])
    # The known limit: a truncated chain is still a valid chain...
    assert evidence_verify().ok
    # ...unless the head was kept elsewhere.
    report = evidence_verify(anchor=head.last_hash)
    assert not report.ok
    assert "ancre" in report.reason


def test_redaction_keeps_the_chain_valid_and_removes_personal_data():
    events = _trail()
    evidence_redact(event=events[1], reason="durée de conservation échue", keep=["role"])
    events[1].refresh_from_db()
    assert "signer_name" not in events[1].payload
    assert events[1].payload["role"] == "member"
    assert events[1].redacted_at is not None
    assert EvidenceEvent.objects.filter(kind=REDACTED_KIND).count() == 1
    report = evidence_verify()
    assert report.ok, report.reason
    assert report.checked == 6


def test_row_marked_redacted_by_hand_is_detected():
    """Setting redacted_at to hide an edited payload is not enough: redactions are recorded."""
    events = _trail()
    _sql(
        "UPDATE contracts_evidenceevent SET payload = '{}'::jsonb, redacted_at = now() WHERE id = %s",
        [events[2].pk],
    )
    report = evidence_verify()
    assert not report.ok
    assert report.first_bad_id == events[2].pk


def test_append_rolled_back_with_its_transaction_leaves_a_valid_chain():
    _trail(2)
    with pytest.raises(RuntimeError), transaction.atomic():
        evidence_append(kind="test", payload={})
        raise RuntimeError("the caller fails after appending")
    _trail(2)
    report = evidence_verify()
    assert report.ok and report.checked == 4


CONCURRENT_KIND = "test.concurrent"


def _in_own_connection(function) -> None:
    """Run `function` in a thread with its own autocommitting connection (closed at the end)."""
    errors = []

    def run():
        try:
            function()
        except Exception as error:  # noqa: BLE001 - handed back to the caller
            errors.append(error)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=120)
    if errors:
        raise errors[0]


def _delete_concurrent_rows() -> None:
    _in_own_connection(lambda: EvidenceEvent.objects.filter(kind=CONCURRENT_KIND).delete())


def test_concurrent_appends_keep_one_chain():
    """50 threads append at once, each on its own connection, committed; the chain stays one.

    Not a transactional test: that would flush every table (France's communes included) after
    it. The test's own connection only reads; the rows it made are deleted at the end.
    """
    threads_count, per_thread = 50, 4
    _delete_concurrent_rows()  # left by an interrupted run, if any
    barrier = threading.Barrier(threads_count)
    errors = []

    def worker(n: int) -> None:
        try:
            barrier.wait(timeout=60)
            for i in range(per_thread):
                with transaction.atomic():
                    evidence_append(kind=CONCURRENT_KIND, payload={"thread": n, "i": i})
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            connection.close()

    try:
        threads = [threading.Thread(target=worker, args=(n,)) for n in range(threads_count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert errors == []
        rows = list(EvidenceEvent.objects.filter(kind=CONCURRENT_KIND).order_by("id"))
        assert len(rows) == threads_count * per_thread
        assert {(row.payload["thread"], row.payload["i"]) for row in rows} == {
            (n, i) for n in range(threads_count) for i in range(per_thread)
        }
        # One chain: each row points at the one just before it, and every link recomputes.
        for before, after in zip(rows, rows[1:], strict=False):
            assert after.previous_hash == before.hash
        for row in rows:
            assert row.payload_sha256 == payload_digest(row.payload)
            assert row.hash == chain_hash(
                previous_hash=row.previous_hash,
                kind=row.kind,
                created_at=row.created_at,
                contract_id=row.contract_id,
                subscription_id=row.subscription_id,
                actor_id=row.actor_id,
                payload_sha256=row.payload_sha256,
            )
        report = evidence_verify()
        assert report.ok, report.reason
    finally:
        _delete_concurrent_rows()


def test_verify_command_prints_the_head_and_fails_on_tampering():
    from io import StringIO

    from django.core.management import CommandError, call_command

    events = _trail(3)
    out = StringIO()
    call_command("verify_evidence", stdout=out)
    assert "3 événements vérifiés" in out.getvalue()
    assert events[-1].hash in out.getvalue()
    call_command("verify_evidence", anchor=events[-1].hash, stdout=StringIO())
    _sql("DELETE FROM contracts_evidenceevent WHERE id = %s", [events[-1].pk])
    with pytest.raises(CommandError, match="ancre"):
        call_command("verify_evidence", anchor=events[-1].hash, stdout=StringIO())
    with pytest.raises(CommandError, match="64 caractères"):
        call_command("verify_evidence", anchor="pas-une-empreinte", stdout=StringIO())
