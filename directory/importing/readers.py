"""Reading an import file as rows of text: CSV (any delimiter, UTF-8 or a named encoding), XLSX, GeoJSON, GPKG.

`open_table` streams the rows of a CSV or an XLSX: 50,000 rows never sit in memory at once.
A CSV is first read through once, without keeping anything, so that a bad byte or a broken
quote anywhere is reported before any row is checked (as when the whole file was decoded
first), and so that the number of rows is known for the progress bar.
"""

from __future__ import annotations

import codecs
import csv
import itertools
import re
from collections.abc import Iterator
from pathlib import Path

from ..csv_export import csv_cell_value
from .geofiles import read_geo
from .table import GEOMETRY_LAT, GEOMETRY_LON, ImportFileError, Row, Table, cell_text

__all__ = [
    "GEOMETRY_LAT",
    "GEOMETRY_LON",
    "ImportFileError",
    "Table",
    "cell_text",
    "open_table",
    "read_table",
]

# A lone carriage return ends a line too (old Mac files), as in Python's universal newlines.
_LONE_CR = re.compile(r"(?<=\r)(?!\n)")


def open_table(path: Path, *, encoding: str | None = None) -> Table:
    """The headers of a CSV, XLSX, GeoJSON or GeoPackage file and its rows as an iterator; ImportFileError
    when it cannot be read. Call `table.close()` when done (an XLSX stays open while its rows are read)."""
    if not path.exists():
        raise ImportFileError(f"fichier introuvable : {path}")
    suffix = path.suffix.lower()
    if path.stat().st_size == 0:
        raise ImportFileError("le fichier est vide")
    if suffix in {".csv", ".tsv", ".txt"}:
        return _open_csv(path, encoding=encoding)
    if suffix in {".xlsx", ".xlsm"}:
        return _open_xlsx(path)
    if suffix in {".geojson", ".json", ".gpkg"}:
        return read_geo(path)
    if suffix in {".xls", ".ods"}:
        raise ImportFileError(f"format {suffix} non pris en charge : enregistrez le tableau en .xlsx ou en .csv")
    raise ImportFileError(f"format « {suffix or path.name} » non reconnu (attendu : .csv, .xlsx, .geojson, .gpkg)")


def read_table(path: Path, *, encoding: str | None = None) -> Table:
    """`open_table` with every row read into a list (small files: a member list)."""
    table = open_table(path, encoding=encoding)
    try:
        table.rows = list(table.rows)
    finally:
        table.close()
    table.total = len(table.rows)
    return table


# --- CSV ------------------------------------------------------------------------------------


def _decode_error(error: UnicodeDecodeError, encoding: str | None, *, line: int) -> ImportFileError:
    byte = error.object[error.start]
    if encoding:
        return ImportFileError(f"le fichier n'est pas lisible en {encoding} (octet 0x{byte:02X})", row=line)
    return ImportFileError(
        f"le fichier n'est pas en UTF-8 (octet 0x{byte:02X} illisible). "
        "S'il a été enregistré par Excel sous Windows, relancez avec --encoding cp1252.",
        row=line,
    )


def _lines(path: Path, encoding: str | None) -> Iterator[str]:
    """The file's text, line by line, decoded as it is read (UTF-8, with or without BOM, unless told otherwise)."""
    try:
        decoder = codecs.getincrementaldecoder(encoding or "utf-8-sig")()
    except LookupError as error:
        raise ImportFileError(f"encodage « {encoding} » inconnu (essayez utf-8 ou cp1252)") from error
    newlines = 0  # lines before the one being decoded: where a bad byte is
    with path.open("rb") as handle:
        for raw in itertools.chain(handle, [None]):
            try:
                text = decoder.decode(b"", final=True) if raw is None else decoder.decode(raw)
            except UnicodeDecodeError as error:
                raise _decode_error(error, encoding, line=newlines + 1) from error
            newlines += text.count("\n")
            if "\r" in text:
                yield from (part for part in _LONE_CR.split(text) if part)
            elif text:
                yield text


def _sniff_delimiter(text: str) -> str:
    first_line = next((line for line in text.splitlines() if line.strip()), "")
    counts = {delimiter: first_line.count(delimiter) for delimiter in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _csv_records(path: Path, encoding: str | None) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) of each record that is not blank, the header first."""
    lines = _lines(path, encoding)
    head: list[str] = []
    for line in lines:
        head.append(line)
        if line.strip():
            break
    reader = csv.reader(itertools.chain(head, lines), delimiter=_sniff_delimiter("".join(head)))
    start_line = 1
    try:
        for record in reader:
            row_number, start_line = start_line, reader.line_num + 1
            if any(cell.strip() for cell in record):
                yield row_number, record
    except csv.Error as error:
        raise ImportFileError(f"CSV illisible : {error}", row=start_line) from error


def _open_csv(path: Path, *, encoding: str | None) -> Table:
    # Every byte first: a bad byte anywhere is the file's first fault, whatever else is wrong.
    for _line in _lines(path, encoding):
        pass
    headers: list[str] | None = None
    total = 0
    for row_number, record in _csv_records(path, encoding):
        if headers is None:
            headers = [cell.strip() for cell in record]
            continue
        if len(record) > len(headers) and any(cell.strip() for cell in record[len(headers) :]):
            raise ImportFileError(
                f"{len(record)} valeurs pour {len(headers)} colonnes (une virgule ou un point-virgule "
                "en trop, ou une valeur à mettre entre guillemets ?)",
                row=row_number,
            )
        total += 1
    if headers is None:
        raise ImportFileError("le fichier est vide")
    return Table(headers=headers, rows=_csv_rows(path, encoding, headers), total=total)


def _csv_rows(path: Path, encoding: str | None, headers: list[str]) -> Iterator[Row]:
    records = _csv_records(path, encoding)
    next(records)  # the header
    for row_number, record in records:
        # csv_cell_value: our own exports' neutralised formulas ('=…) read back as written.
        cells = [csv_cell_value(cell.strip()) for cell in record]
        yield row_number, {header: (cells[i] if i < len(cells) else "") for i, header in enumerate(headers)}


# --- XLSX -----------------------------------------------------------------------------------


def _open_xlsx(path: Path) -> Table:
    from openpyxl import load_workbook

    try:
        # read_only: openpyxl parses the sheet as its rows are asked for, never the whole of it.
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as error:  # openpyxl raises many types for a damaged file
        raise ImportFileError(f"classeur XLSX illisible : {error}") from error
    try:
        sheet = workbook.active
        values = enumerate(sheet.iter_rows(values_only=True), start=1)
        headers: list[str] | None = None
        header_row = 0
        for number, cells in values:
            texts = [cell_text(value) for value in cells]
            if any(texts):
                headers, header_row = texts, number
                break
        total = max(0, sheet.max_row - header_row) if headers is not None and sheet.max_row else None
    except Exception as error:
        workbook.close()
        raise ImportFileError(f"classeur XLSX illisible : {error}") from error
    if headers is None:
        workbook.close()
        raise ImportFileError("le classeur est vide")
    while headers and not headers[-1]:
        headers.pop()
    return Table(
        headers=[h for h in headers if h],
        rows=_xlsx_rows(workbook, values, headers),
        total=total,
        release=workbook.close,
    )


def _xlsx_rows(workbook, values, headers: list[str]) -> Iterator[Row]:
    try:
        for row_number, cells in values:
            texts = [cell_text(value) for value in cells]
            if any(texts):
                yield row_number, {h: (texts[i] if i < len(texts) else "") for i, h in enumerate(headers) if h}
    except ImportFileError:
        raise
    except Exception as error:  # a damaged sheet is found as it is read
        raise ImportFileError(f"classeur XLSX illisible : {error}") from error
    finally:
        workbook.close()
