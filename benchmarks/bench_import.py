"""Importing a spreadsheet (issue 13): 50,000 AMAP rows, dry run then commit, time and peak memory.

The import runs as people run it, `manage.py import_directory` in its own process, so that its
peak resident memory (`wait4`'s rusage of that child alone) is the import's, not this runner's.
Goals: under 60 s each way; memory that stays flat (peak RSS growth per 10,000 rows small,
printed next to the absolute peak).
"""

from __future__ import annotations

import csv
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import note, report
from directory.models import Amap
from geo.models import Commune

ROOT = Path(__file__).resolve().parent.parent
SOURCE = "bench-import"
GOAL_S = 60.0
DAYS = ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi"]
PRODUCTS = ["légumes", "œufs", "pain", "fromage de chèvre", "miel", "volailles", "fruits"]


def write_rows(path: Path, *, rows: int, seed: int = 13) -> None:
    """`rows` AMAPs in real communes (their reference point moved by up to ~300 m), with ids."""
    rng = random.Random(seed)
    communes = list(
        Commune.objects.filter(point__isnull=False)
        .exclude(postal_codes=[])
        .order_by("code")
        .values_list("code", "name", "postal_codes", "point")
    )
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["id", "nom", "insee", "code_postal", "ville", "lat", "lon", "jour", "horaire", "produits"])
        for n in range(rows):
            code, name, postal_codes, point = communes[rng.randrange(len(communes))]
            writer.writerow(
                [
                    f"B{n:06d}",
                    f"AMAP banc d'essai {n}",
                    code,
                    postal_codes[0],
                    name,
                    f"{point.y + rng.uniform(-0.002, 0.002):.6f}",
                    f"{point.x + rng.uniform(-0.002, 0.002):.6f}",
                    DAYS[n % len(DAYS)],
                    "18h-19h30",
                    ", ".join(rng.sample(PRODUCTS, 2)),
                ]
            )


def _production_like_env() -> dict:
    """DEBUG off (no per-query log), with this runner's keys so that settings load."""
    from django.conf import settings

    return {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": settings.SECRET_KEY,
        "LOCATION_MASK_KEY": settings.LOCATION_MASK_KEY,
    }


def run_command(path: Path, *, commit: bool) -> tuple[float, float, str]:
    """(seconds, peak RSS in MB, last progress line) of one `import_directory` process."""
    args = [sys.executable, "manage.py", "import_directory", str(path), "--kind", "amap", "--source", SOURCE]
    if commit:
        args.append("--commit")
    started = time.perf_counter()
    child = subprocess.Popen(
        args,
        cwd=ROOT,
        env=_production_like_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    stderr = child.stderr.read()
    _pid, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError(f"import_directory failed ({child.returncode}): {stderr[-2000:]}")
    progress = [line for line in stderr.splitlines() if line.strip()]
    return seconds, usage.ru_maxrss / 1024, progress[-1] if progress else ""


def run(ctx) -> None:
    rows = ctx.size(int(ctx.options.get("import_rows", 50_000)), 5_000)
    Amap.objects.filter(source=SOURCE).delete()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "amaps.csv"
        write_rows(path, rows=rows)
        note(f"{rows} lignes, {path.stat().st_size / 1e6:.1f} Mo de CSV")
        try:
            for commit in (False, True):
                label = "commit" if commit else "dry_run"
                seconds, peak_mb, last = run_command(path, commit=commit)
                note(last)
                report(f"import.{rows}_rows_{label}", seconds, "s")
                report(f"import.{rows}_rows_{label}_goal", GOAL_S, "s")
                report(f"import.{rows}_rows_{label}_rows_per_s", rows / seconds, "rows/s")
                report(f"import.{rows}_rows_{label}_peak_rss", peak_mb, "MB")
                note(f"{label}: {'OK' if seconds < GOAL_S else 'AU-DESSUS DE'} l'objectif de {GOAL_S:.0f} s")
        finally:
            Amap.objects.filter(source=SOURCE).delete()
