"""The hash-chained evidence trail of contracts: append, verify, redact.

Each `EvidenceEvent` stores the SHA-256 of its payload (canonical JSON) and
`hash = sha256(previous_hash | kind | created_at | contract_id | subscription_id | actor_id | payload_sha256)`,
`previous_hash` being the hash of the row before it in `id` order (64 zeros for the first).
Editing a payload, a kind, a date or an id, or deleting a row, breaks the chain from there on
and `evidence_verify()` names the first broken row.

Limit: a chain cannot prove its own end. Deleting the *last* rows leaves a shorter chain that
still verifies. `evidence_head()` gives the current head (count, last id, last hash); whoever
keeps a copy of it elsewhere (an e-mail to the network, a log) can pass it back as
`evidence_verify(anchor=...)`, which then also detects the truncation of every row up to it.

Redaction (retention) replaces the payload but keeps `payload_sha256`, so the chain still
verifies; every redaction is itself recorded as an `evidence.redacted` event naming the rows,
so a row marked redacted by hand (to hide an edited payload) is reported too.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from .models import EvidenceEvent

GENESIS_HASH = "0" * 64
REDACTED_KIND = "evidence.redacted"
# Arbitrary constant key of the advisory lock that serialises appends (one chain).
_LOCK_KEY = 0x414D4150_45564944  # "AMAPEVID", fits a signed bigint


@dataclass(frozen=True)
class EvidenceReport:
    ok: bool
    checked: int
    first_bad_id: int | None
    reason: str


@dataclass(frozen=True)
class EvidenceHead:
    count: int
    last_id: int | None
    last_hash: str


def _normalise(value: Any) -> Any:
    """JSON-safe value that survives a round trip through PostgreSQL jsonb unchanged."""
    if isinstance(value, dict):
        return {str(key): _normalise(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_normalise(item) for item in value]
        return sorted(items, key=canonical_json) if isinstance(value, (set, frozenset)) else items
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    # Decimals and floats as strings: jsonb may rewrite numbers (1e100, 1.10), strings never.
    if isinstance(value, (Decimal, float, uuid.UUID)):
        return str(value)
    raise TypeError(f"evidence payload: {type(value).__name__} is not serialisable")


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, UTF-8 characters kept: the same data always gives the same text."""
    return json.dumps(_normalise(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def payload_digest(payload: dict) -> str:
    return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()


def _timestamp(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat()


def _id(value: int | None) -> str:
    return "" if value is None else str(value)


def chain_hash(
    *,
    previous_hash: str,
    kind: str,
    created_at: dt.datetime,
    contract_id: int | None,
    subscription_id: int | None,
    actor_id: int | None,
    payload_sha256: str,
) -> str:
    parts = [
        previous_hash,
        kind,
        _timestamp(created_at),
        _id(contract_id),
        _id(subscription_id),
        _id(actor_id),
        payload_sha256,
    ]
    return hashlib.sha256("|".join(parts).encode("utf-8")).hexdigest()


def evidence_append(
    *,
    kind: str,
    payload: dict,
    contract_id: int | None = None,
    subscription_id: int | None = None,
    actor_id: int | None = None,
) -> EvidenceEvent:
    """Append one event at the end of the chain, inside the caller's transaction.

    The advisory lock is held until the caller's transaction ends, so concurrent appenders
    wait for each other and each reads the previous row once it is committed (or rolled back).
    """
    if not kind or len(kind) > 60:
        raise ValueError("evidence kind must be 1 to 60 characters")
    stored = _normalise(payload)
    digest = payload_digest(stored)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
        previous = EvidenceEvent.objects.order_by("-id").values_list("hash", flat=True).first() or GENESIS_HASH
        created_at = timezone.now()
        event = EvidenceEvent(
            created_at=created_at,
            kind=kind,
            contract_id=contract_id,
            subscription_id=subscription_id,
            actor_id=actor_id,
            payload=stored,
            payload_sha256=digest,
            previous_hash=previous,
        )
        event.hash = chain_hash(
            previous_hash=previous,
            kind=kind,
            created_at=created_at,
            contract_id=contract_id,
            subscription_id=subscription_id,
            actor_id=actor_id,
            payload_sha256=digest,
        )
        event.save(force_insert=True)
    return event


def evidence_head() -> EvidenceHead:
    """The current end of the chain, to be kept elsewhere as an anchor."""
    last = EvidenceEvent.objects.order_by("-id").values_list("id", "hash").first()
    count = EvidenceEvent.objects.count()
    if last is None:
        return EvidenceHead(count=0, last_id=None, last_hash=GENESIS_HASH)
    return EvidenceHead(count=count, last_id=last[0], last_hash=last[1])


def evidence_verify(*, anchor: str | None = None, chunk_size: int = 2000) -> EvidenceReport:
    """Walk the chain in id order and report the first broken row.

    `anchor`: a hash recorded earlier (see `evidence_head`); the chain must still contain it.
    """
    fields = (
        "id",
        "created_at",
        "kind",
        "contract_id",
        "subscription_id",
        "actor_id",
        "payload",
        "payload_sha256",
        "previous_hash",
        "hash",
        "redacted_at",
    )
    rows = EvidenceEvent.objects.order_by("id").values_list(*fields).iterator(chunk_size=chunk_size)
    expected_previous = GENESIS_HASH
    checked = 0
    anchor_seen = anchor is None or anchor == GENESIS_HASH
    redacted_ids: dict[int, None] = {}
    declared_redactions: set[int] = set()
    for (
        row_id,
        created_at,
        kind,
        contract_id,
        subscription_id,
        actor_id,
        payload,
        digest,
        previous_hash,
        row_hash,
        redacted_at,
    ) in rows:
        checked += 1
        if redacted_at is None and payload_digest(payload) != digest:
            return EvidenceReport(False, checked, row_id, "le contenu de l'événement a été modifié")
        if previous_hash != expected_previous:
            return EvidenceReport(
                False,
                checked,
                row_id,
                "le chaînage est rompu : un événement précédent a été supprimé ou modifié",
            )
        computed = chain_hash(
            previous_hash=previous_hash,
            kind=kind,
            created_at=created_at,
            contract_id=contract_id,
            subscription_id=subscription_id,
            actor_id=actor_id,
            payload_sha256=digest,
        )
        if computed != row_hash:
            return EvidenceReport(False, checked, row_id, "l'empreinte de l'événement ne correspond pas à son contenu")
        if redacted_at is not None:
            redacted_ids[row_id] = None
        if kind == REDACTED_KIND and redacted_at is None:
            declared_redactions.update(int(event_id) for event_id in payload.get("event_ids", []))
        if row_hash == anchor:
            anchor_seen = True
        expected_previous = row_hash
    undeclared = [row_id for row_id in redacted_ids if row_id not in declared_redactions]
    if undeclared:
        return EvidenceReport(
            False, checked, undeclared[0], "événement marqué caviardé sans trace de caviardage dans le journal"
        )
    if not anchor_seen:
        return EvidenceReport(
            False, checked, None, "l'ancre enregistrée est introuvable : la fin du journal a été supprimée"
        )
    return EvidenceReport(True, checked, None, "")


def evidence_redact_many(*, events: Iterable[EvidenceEvent], reason: str, keep: Iterable[str] = ()) -> int:
    """Replace the payloads of these events (keeping the keys in `keep`) and record it; returns the count."""
    keep = tuple(keep)
    ids = []
    with transaction.atomic():
        now = timezone.now()
        for event in events:
            if event.redacted_at is not None or event.kind == REDACTED_KIND:
                continue
            kept = {key: event.payload[key] for key in keep if key in event.payload}
            event.payload = {**kept, "redacted": reason}
            event.redacted_at = now
            event.save(update_fields=["payload", "redacted_at"])
            ids.append(event.pk)
        if ids:
            evidence_append(kind=REDACTED_KIND, payload={"event_ids": ids, "reason": reason})
    return len(ids)


def evidence_redact(*, event: EvidenceEvent, reason: str, keep: Iterable[str] = ()) -> None:
    """Remove the personal data of one event's payload; its digest stays, so the chain still verifies."""
    evidence_redact_many(events=[event], reason=reason, keep=keep)
