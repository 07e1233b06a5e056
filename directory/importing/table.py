"""What every reader gives: the headers, then the rows one at a time (a file is never held as a list of rows)."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any


class ImportFileError(Exception):
    """The file as a whole cannot be read; `row` is the line at fault when known."""

    def __init__(self, message: str, *, row: int | None = None):
        super().__init__(message)
        self.row = row


Row = tuple[int, dict[str, str]]  # (row number in the file, header → text)


@dataclass
class Table:
    headers: list[str]
    # A list (`read_table`) or a one-pass iterator (`open_table`) that may raise ImportFileError.
    rows: Iterable[Row]
    row_word: str = "ligne"
    # Number of data rows when known before they are read (a CSV is counted first; an XLSX says
    # how many it holds, blank rows included): the total of a progress bar.
    total: int | None = None
    # GeoJSON/GeoPackage: header of the pseudo-columns holding the geometry's lon/lat.
    geometry_columns: tuple[str, str] | None = None
    # GeoJSON/GeoPackage: feature number → why its geometry was refused; features without one.
    geometry_problems: dict[int, str] = field(default_factory=dict)
    geometry_missing: set[int] = field(default_factory=set)
    # Releases the file (an XLSX stays open while its rows are read).
    release: Callable[[], None] | None = None

    def close(self) -> None:
        """Stop reading and release the file; safe to call more than once."""
        close = getattr(self.rows, "close", None)
        if close is not None:
            close()
        if self.release is not None:
            self.release()


GEOMETRY_LON = "geometry (longitude)"
GEOMETRY_LAT = "geometry (latitude)"


def cell_text(value: Any) -> str:
    """A spreadsheet or GeoDataFrame value as the text a person would read in the cell."""
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0, 0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.strftime("%Hh%M")
    text = str(value).strip()
    return "" if text.lower() in {"nan", "none", "null", "nat"} and not isinstance(value, str) else text
