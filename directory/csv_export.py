"""The one CSV writer of every export: no cell a spreadsheet could run as a formula.

OWASP's rule for CSV injection: a text cell starting with `=`, `+`, `-`, `@`, tab or carriage
return gets a leading single quote, which spreadsheets show as text. Numbers are written as
numbers (a longitude of -0.57 stays a number); only text is neutralised. Every exporter
(directory, maps, coverage, contracts) writes through here.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from decimal import Decimal
from typing import Any, TextIO

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe_cell(value: Any) -> Any:
    """The cell as written: numbers unchanged, text that looks like a formula prefixed with `'`."""
    if value is None:
        return ""
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return value
    text = str(value)
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def csv_cell_value(text: str) -> str:
    """The inverse for an importer reading our own exports back: `'=x` is read as `=x`.

    Trade-off: a source cell that really was a quote followed by one of those characters loses
    its quote; no directory field starts that way on purpose.
    """
    if len(text) > 1 and text[0] == "'" and text[1] in "=+-@\t\r":
        return text[1:]
    return text


class _SafeRowWriter:
    """A `csv.writer` whose every row goes through `csv_safe_cell`."""

    def __init__(self, writer):
        self._writer = writer
        self.dialect = writer.dialect

    def writerow(self, row: Iterable[Any]):
        return self._writer.writerow([csv_safe_cell(value) for value in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def csv_writer(out: TextIO, **fmtparams) -> _SafeRowWriter:
    """Like `csv.writer(out, **fmtparams)`, with formula neutralisation."""
    return _SafeRowWriter(csv.writer(out, **fmtparams))


class CsvDictWriter(csv.DictWriter):
    """Like `csv.DictWriter`, with formula neutralisation."""

    def __init__(self, out: TextIO, fieldnames, **kwargs):
        super().__init__(out, fieldnames, **kwargs)
        self.writer = _SafeRowWriter(self.writer)
