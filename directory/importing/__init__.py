"""Import AMAPs, farms and partnerships from CSV, XLSX, GeoJSON and GeoPackage files.

`directory_import()` reads the whole file, checks and locates every row (coordinates
validated, or geocoded from the postal code and commune), and only then writes, in one
transaction, through the upserts of `directory.services`. Any row error means nothing is
written; the `ImportReport` lists every error and warning by row and column, in French.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from django.db import transaction

from .amaps import AmapImporter
from .base import Importer, Progress, Ticking, no_progress
from .columns import FIELD_ALIASES, mapping_from_options, resolve_columns
from .farms import FarmImporter
from .partnerships import PartnershipImporter
from .readers import ImportFileError, read_table
from .report import KINDS, ImportReport, Issue

__all__ = [
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


def directory_import(
    *,
    path: Path,
    kind: str,
    source: str,
    mapping: Mapping[str, str] | None = None,
    encoding: str | None = None,
    commit: bool = False,
    progress: Progress = no_progress,
) -> ImportReport:
    """Check every row of `path`, then upsert them all in one transaction (rolled back unless `commit`).

    `progress(phase, done, total)` is called as rows are read ("read"), checked ("check") and written ("write").
    """
    if kind not in IMPORTERS:
        raise ValueError(f"kind must be one of {KINDS}")
    report = ImportReport(kind=kind, source=source, path=str(path))
    progress("read", 0, 0)
    try:
        table = read_table(Path(path), encoding=encoding)
    except ImportFileError as error:
        report.error(error.row, "", str(error))
        return report
    report.row_word = table.row_word
    report.rows_read = len(table.rows)
    columns = resolve_columns(table=table, kind=kind, mapping=mapping, report=report)
    if not report.errors and not table.rows:
        report.error(None, "", "aucune ligne de données après l'en-tête")
    if report.errors:
        return report
    importer = IMPORTERS[kind](table=table, columns=columns, source=source, report=report, progress=progress)
    records = importer.prepare()
    importer.check_links(records)
    report.errors.sort(key=lambda issue: issue.row or 0)
    report.warnings.sort(key=lambda issue: issue.row or 0)
    if report.errors:
        return report
    with transaction.atomic():
        importer.write(Ticking(records, phase="write", progress=progress))
        if not commit:
            transaction.set_rollback(True)
    report.committed = commit
    return report
