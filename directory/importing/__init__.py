"""Import AMAPs, farms and partnerships from CSV, XLSX, GeoJSON and GeoPackage files.

`directory_import()` streams the file's rows a chunk at a time: it checks and locates each
chunk's rows (coordinates validated, or geocoded from the postal code and commune; the
communes of the whole chunk asked for at once), then writes the chunk in bulk through the
upserts of `directory.services`, all in one transaction. Any row error stops the writing and
rolls everything back, but the checking goes on to the end: the `ImportReport` lists the
errors and warnings by row and column, in French. Memory stays that of one chunk.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

from django.db import transaction

from .amaps import AmapImporter
from .base import Importer, Progress, no_progress
from .columns import FIELD_ALIASES, mapping_from_options, resolve_columns
from .farms import FarmImporter
from .partnerships import PartnershipImporter
from .readers import ImportFileError, Table, open_table
from .report import KINDS, ImportReport, Issue
from .table import Row

__all__ = [
    "CHUNK_ROWS",
    "FIELD_ALIASES",
    "KINDS",
    "ImportFileError",
    "ImportReport",
    "Issue",
    "Progress",
    "directory_import",
    "mapping_from_options",
]

IMPORTERS: dict[str, type[Importer]] = {"amap": AmapImporter, "farm": FarmImporter, "partnership": PartnershipImporter}

# Rows checked, then written, together: a few queries per chunk instead of several per row.
CHUNK_ROWS = 2000


def directory_import(
    *,
    path: Path,
    kind: str,
    source: str,
    mapping: Mapping[str, str] | None = None,
    encoding: str | None = None,
    commit: bool = False,
    progress: Progress = no_progress,
    on_written: Callable[[], None] | None = None,
    chunk_rows: int | None = None,
) -> ImportReport:
    """Check every row of `path` and upsert them, in one transaction (rolled back unless `commit` and no error).

    `progress(phase, done, total)` is called once the file is open ("read"), then after each chunk
    ("check" for a dry run, "write" when committing). `on_written()` runs in the same transaction
    after the last row, when the import is committed.
    """
    if kind not in IMPORTERS:
        raise ValueError(f"kind must be one of {KINDS}")
    report = ImportReport(kind=kind, source=source, path=str(path))
    progress("read", 0, 0)
    try:
        table = open_table(Path(path), encoding=encoding)
    except ImportFileError as error:
        report.error(error.row, "", str(error))
        return report
    try:
        _import_table(
            table,
            report,
            kind=kind,
            mapping=mapping,
            commit=commit,
            progress=progress,
            on_written=on_written,
            chunk=chunk_rows or CHUNK_ROWS,
        )
    finally:
        table.close()
    return report


def _import_table(
    table: Table,
    report: ImportReport,
    *,
    kind: str,
    mapping: Mapping[str, str] | None,
    commit: bool,
    progress: Progress,
    on_written: Callable[[], None] | None,
    chunk: int,
) -> None:
    report.row_word = table.row_word
    rows = iter(table.rows)
    columns = resolve_columns(table=table, kind=kind, mapping=mapping, report=report)
    try:
        first = next(rows, None)
        if not report.errors and first is None:
            report.error(None, "", "aucune ligne de données après l'en-tête")
        if report.errors:
            report.rows_read = (first is not None) + sum(1 for _row in rows)
            return
    except ImportFileError as error:
        report.error(error.row, "", str(error))
        return
    importer = IMPORTERS[kind](table=table, columns=columns, source=report.source, report=report)
    phase = "write" if commit else "check"
    total = table.total or 0
    progress(phase, 0, total)
    done = 0
    with transaction.atomic():
        try:
            for rows_of_chunk in _chunks(itertools.chain([first], rows), chunk):
                records = importer.check(rows_of_chunk)
                if report.ok:
                    importer.write(records)
                done += len(rows_of_chunk)
                progress(phase, done, max(total, done))
        except ImportFileError as error:  # a damaged XLSX sheet, found as it is read
            report.error(error.row, "", str(error))
        if done < total:  # an XLSX counts its blank rows too: the bar ends at the rows there were
            progress(phase, done, done)
        importer.finish()
        report.rows_read = done
        if commit and report.ok and on_written is not None:
            on_written()
        if not (commit and report.ok):
            transaction.set_rollback(True)
    report.errors.sort(key=lambda issue: issue.row or 0)
    report.warnings.sort(key=lambda issue: issue.row or 0)
    if not report.ok:
        report.forget_actions()  # what the first chunks would have written is rolled back
    report.committed = commit and report.ok


def _chunks(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    rows = iter(rows)
    while chunk := list(itertools.islice(rows, size)):
        yield chunk
