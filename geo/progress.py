"""Progress of long commands: « 12 000 / 50 000 lignes · 3 400/s · reste 11 s », at most once a second.

On the ground floor so that every app's commands (import, demo, matching) print the same line.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

from django.core.management.base import OutputWrapper


def _count(n: float) -> str:
    return f"{round(n):,}".replace(",", " ")  # French thousands: 12 000


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class Progress:
    """Counts work done and prints it with its rate and the time left, throttled to `every` seconds.

    `total` may be None when unknown (then no time left is shown). `stream` is a file or a
    command's `self.stderr`; None prints nothing, so a caller can always advance one (`--verbosity 0`, jobs).
    """

    def __init__(
        self,
        total: int | None,
        label: str = "lignes",
        stream: TextIO | OutputWrapper | None = None,
        *,
        every: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.total = total
        self.label = label
        self.stream = stream
        self.every = every
        self.clock = clock
        self.done = 0
        self.started = clock()
        self._last_print = self.started

    def advance(self, n: int = 1) -> None:
        self.done += n
        now = self.clock()
        if now - self._last_print >= self.every:
            self._last_print = now
            self._write(self.line(now))

    def finish(self) -> None:
        """The last line (always printed): the whole count and the mean rate."""
        self._write(self.line(self.clock(), finished=True))

    def line(self, now: float, *, finished: bool = False) -> str:
        elapsed = max(now - self.started, 1e-9)
        rate = self.done / elapsed
        count = _count(self.done) if self.total is None else f"{_count(self.done)} / {_count(self.total)}"
        parts = [f"{count} {self.label}", f"{_count(rate)}/s"]
        if finished:
            parts.append(f"en {_duration(elapsed)}")
        elif self.total is not None and rate > 0:
            parts.append(f"reste {_duration(max(self.total - self.done, 0) / rate)}")
        return " · ".join(parts)

    def _write(self, text: str) -> None:
        if self.stream is None:
            return
        if isinstance(self.stream, OutputWrapper):
            # A command's self.stderr would colour the line as an error: progress is not one.
            self.stream.write(text, style_func=str)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
