"""Progress of a long import as a person reads it: rows done, rows per second, time left."""

from __future__ import annotations

import time
from collections.abc import Callable

PHASES = {"read": "lecture", "check": "vérification", "write": "écriture"}


class ProgressLine:
    """A `progress` callback for `directory_import` that writes one line at most every `every_s` seconds."""

    def __init__(self, write: Callable[[str], None], *, row_word: str = "ligne", every_s: float = 1.0, clock=None):
        self.write, self.row_word, self.every_s = write, row_word, every_s
        self.clock = clock or time.monotonic
        self.phase = ""
        self.started = self.last = 0.0

    def __call__(self, phase: str, done: int, total: int) -> None:
        now = self.clock()
        if phase != self.phase:
            self.phase, self.started, self.last = phase, now, now
            if phase == "read":
                self.write("lecture du fichier…")
            return
        if done < total and now - self.last < self.every_s:
            return
        self.last = now
        self.write(self.line(phase, done, total, now - self.started))

    def line(self, phase: str, done: int, total: int, elapsed_s: float) -> str:
        rate = done / elapsed_s if elapsed_s > 0 else 0.0
        left = (total - done) / rate if rate > 0 else None
        words = f"{self.row_word}s" if total > 1 else self.row_word
        text = f"{PHASES.get(phase, phase)} : {_n(done)}/{_n(total)} {words}, {_n(rate)} {self.row_word}s/s"
        if done >= total:
            return f"{text}, terminé en {elapsed_s:.1f} s"
        return f"{text}, reste ~{left:.0f} s" if left is not None else text


def _n(value: float) -> str:
    """12 500 with a narrow no-break space, as French writes thousands."""
    return f"{value:,.0f}".replace(",", "\u202f")
