"""A registry of the personal data each app holds about an account.

« Mes données » (export, erasure) and retention live in `contracts`, but other apps hold
personal data too (matching: alerts, messages). Those apps register here, in their
`AppConfig.ready()`, what to export, what to count and what to erase; `contracts` reads the
registry and never imports them (imports point one way, see docs/ARCHITECTURE.md).

    register_personal_data(
        "alerts",
        export=alerts_export,              # user -> list of JSON-serialisable dicts
        csv=PersonalDataCsv("alertes.csv", header, row),
        count=alerts_count,                # user -> int, for the erasure report
        erasure_note=alerts_note,          # count -> ErasureNote (French, for the page)
        erase=alerts_erase,                # user -> None, when the account is anonymised
        summary=PersonalDataSummary(_("Vos alertes"), alerts_lines),  # optional: listed on « Mes données »
    )
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PersonalDataCsv:
    """One CSV file of the export zip: its name, its header, one row per exported dict."""

    filename: str
    header: Sequence[str]
    row: Callable[[dict[str, Any]], list[Any]]


@dataclass(frozen=True)
class PersonalDataSummary:
    """What « Mes données » shows on the page: a heading and one line per item (French, for people)."""

    title: str
    lines: Callable[[Any], list[str]]


@dataclass(frozen=True)
class ErasureNote:
    """A line of the erasure report: what (French), why, and whether it is kept or deleted."""

    what: str
    reason: str
    kept: bool = False


@dataclass(frozen=True)
class PersonalData:
    name: str
    export: Callable[[Any], list[dict[str, Any]]] | None = None
    csv: PersonalDataCsv | None = None
    count: Callable[[Any], int] | None = None
    erasure_note: Callable[[int], ErasureNote] | None = None
    erase: Callable[[Any], None] | None = None
    summary: PersonalDataSummary | None = None


_REGISTRY: dict[str, PersonalData] = {}


def register_personal_data(
    name: str,
    *,
    export: Callable[[Any], list[dict[str, Any]]] | None = None,
    csv: PersonalDataCsv | None = None,
    count: Callable[[Any], int] | None = None,
    erasure_note: Callable[[int], ErasureNote] | None = None,
    erase: Callable[[Any], None] | None = None,
    summary: PersonalDataSummary | None = None,
) -> PersonalData:
    """Declare personal data held under `name` (the key of the JSON export); registering again replaces it."""
    entry = PersonalData(
        name=name, export=export, csv=csv, count=count, erasure_note=erasure_note, erase=erase, summary=summary
    )
    _REGISTRY[name] = entry
    return entry


def personal_data() -> list[PersonalData]:
    """The registered entries, in registration order (the export keeps that order)."""
    return list(_REGISTRY.values())
