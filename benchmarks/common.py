"""Shared helpers for benchmark modules (`benchmarks/bench_*.py`, each defining `run(ctx)`).

Every figure is printed as one line `name value unit` on stdout, e.g. `search.knn_p95 12.4 ms`.
`benchmarks/run.py` has already pointed Django at the benchmark database, migrated it and
loaded the territories before any module runs.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class Context:
    """What `run(ctx)` receives. `quick` asks for smaller sizes and fewer repeats."""

    quick: bool = False
    # Extra free-form options, e.g. from `--set key=value` on the command line.
    options: dict[str, str] = field(default_factory=dict)

    def size(self, full: int, quick: int) -> int:
        """`full` normally, `quick` with --quick."""
        return quick if self.quick else full


def format_value(value: float) -> str:
    """At least four significant digits, never an exponent: 17.23, 0.001234, 123457."""
    value = float(value)
    if not math.isfinite(value):
        return str(value)
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    magnitude = math.floor(math.log10(abs(value)))
    decimals = max(0, 3 - magnitude)
    text = f"{value:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def report(name: str, value: float, unit: str) -> None:
    """Print one figure as `name value unit` (names and units without spaces)."""
    if any(c.isspace() for c in name) or any(c.isspace() for c in unit):
        raise ValueError(f"benchmark name and unit must not contain spaces: {name!r} {unit!r}")
    print(f"{name} {format_value(value)} {unit}", flush=True)


def note(text: str) -> None:
    """A comment line (starts with `#`), ignored by anything that parses the figures."""
    for line in str(text).splitlines() or [""]:
        print(f"# {line}", flush=True)


class Timer:
    seconds: float = 0.0

    @property
    def ms(self) -> float:
        return self.seconds * 1000.0


@contextmanager
def timed() -> Iterator[Timer]:
    """`with timed() as t: ...` then `t.seconds` (or `t.ms`)."""
    timer = Timer()
    started = time.perf_counter()
    try:
        yield timer
    finally:
        timer.seconds = time.perf_counter() - started


def measure(fn: Callable[[], object], repeat: int = 5, *, warmup: int = 0) -> list[float]:
    """Call `fn()` `warmup` times untimed, then `repeat` times; the durations in seconds."""
    for _ in range(warmup):
        fn()
    durations = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        durations.append(time.perf_counter() - started)
    return durations


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (0–100) with linear interpolation, like numpy's default."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * (p / 100.0)
    low = math.floor(rank)
    high = math.ceil(rank)
    if low == high:
        return ordered[int(rank)]
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def ensure_demo(*, amaps: int, farms: int, seed: int = 1) -> bool:
    """Make the benchmark database hold exactly this demo directory; True if it was (re)generated.

    Regenerates only when the demo AMAP/farm counts or the seed differ from what is there.
    Non-demo rows are left alone.
    """
    from django.core.management import call_command

    from directory.demo import demo_matches
    from directory.models import Amap, Farm

    if demo_matches(amaps=amaps, farms=farms, seed=seed):
        return False
    print(f"# (re)generating demo directory: {amaps} AMAPs, {farms} farms, seed {seed}", file=sys.stderr, flush=True)
    call_command("load_demo", amaps=amaps, farms=farms, seed=seed, clear=True, verbosity=0)
    assert Amap.objects.filter(is_demo=True).count() == amaps
    assert Farm.objects.filter(is_demo=True).count() == farms
    return True
