"""Importing a spreadsheet (issue 13): 50,000 AMAP rows, dry run then commit, time and peak memory.

Every import runs in a process of its own, so that its peak resident memory (`wait4`'s rusage of
that child alone) is the import's, not this runner's:
- `manage.py import_directory` (dry run, then --commit) on 5,000 then 50,000 rows;
- the web import's jobs (`import_check`, then `import_commit`) on the 50,000 rows, as a worker runs
  them after a coordinator's upload.
Goals at 50,000 rows: under 60 s each way; memory that stays flat (peak RSS growth per 10,000 rows,
50,000 against 5,000, under 10 MB); a cost per row that does not grow with the file (the rows' own
time per row at 50,000 over that at 5,000 close to 1, goal under 1.5). The machine's load average is printed:
on a shared machine the absolute times are indicative, the ratios less so.
"""

from __future__ import annotations

import csv
import os
import random
import re
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
GOAL_GROWTH_MB_PER_10K = 10.0
GOAL_LINEARITY = 1.5
DAYS = ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi"]
PRODUCTS = ["légumes", "œufs", "pain", "fromage de chèvre", "miel", "volailles", "fruits"]

# The web import's job, as a worker runs it (the task's function, in this process of its own).
JOB_SCRIPT = """
import os, sys
import django
django.setup()
from directory import tasks
getattr(tasks, sys.argv[1])(run_id=int(sys.argv[2]))
"""


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
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "PYTHONPATH": str(ROOT),
    }


def _run_child(args: list[str]) -> tuple[float, float, str]:
    """(seconds, peak RSS in MB, last line on stderr) of one child process."""
    started = time.perf_counter()
    child = subprocess.Popen(
        args, cwd=ROOT, env=_production_like_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    stderr = child.stderr.read()
    _pid, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError(f"{args[1:3]} failed ({child.returncode}): {stderr[-2000:]}")
    lines = [line for line in stderr.splitlines() if line.strip()]
    return seconds, usage.ru_maxrss / 1024, lines[-1] if lines else ""


def run_command(path: Path, *, commit: bool) -> tuple[float, float, str]:
    """(seconds, peak RSS in MB, last progress line) of one `import_directory` process."""
    args = [sys.executable, "manage.py", "import_directory", str(path), "--kind", "amap", "--source", SOURCE]
    return _run_child([*args, "--commit"] if commit else args)


def run_job(task: str, run_id: int) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of one web import job (`import_check` or `import_commit`)."""
    seconds, peak_mb, _last = _run_child([sys.executable, "-c", JOB_SCRIPT, task, str(run_id)])
    return seconds, peak_mb


def clear_rows() -> None:
    """The benchmark's AMAPs, their products, networks and history rows, in four statements.

    (`QuerySet.delete()` writes a history row and sends signals per AMAP: minutes for 50,000.)
    """
    from django.db import connection

    amaps = "SELECT id FROM directory_amap WHERE source = %s"
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM directory_amap_products WHERE amap_id IN ({amaps})", [SOURCE])  # noqa: S608
        cursor.execute(f"DELETE FROM directory_amap_networks WHERE amap_id IN ({amaps})", [SOURCE])  # noqa: S608
        cursor.execute("DELETE FROM directory_historicalamap WHERE source = %s", [SOURCE])
        cursor.execute("DELETE FROM directory_amap WHERE source = %s", [SOURCE])


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    cores = os.cpu_count()
    return f"charge de la machine (load average 1/5/15 min) : {one:.1f} / {five:.1f} / {fifteen:.1f}, {cores} cœurs"


def _goal(label: str, value: float, goal: float, what: str) -> None:
    note(f"{label} : {'OK' if value < goal else 'AU-DESSUS DE'} l'objectif ({what})")


def _rows_seconds(progress_line: str) -> float:
    """The rows' own time from the command's last progress line (« …, terminé en 41.3 s »): no start-up."""
    match = re.search(r"terminé en ([\d.]+) s", progress_line)
    if match is None:
        raise RuntimeError(f"no final progress line: {progress_line!r}")
    return float(match.group(1))


def _command_runs(folder: Path, rows: int) -> dict[str, tuple[float, float, float]]:
    """{"dry_run"|"commit": (seconds, rows' own seconds, peak RSS in MB)}."""
    path = folder / f"amaps-{rows}.csv"
    write_rows(path, rows=rows)
    note(f"{rows} lignes, {path.stat().st_size / 1e6:.1f} Mo de CSV ; {_load()}")
    results = {}
    try:
        for commit in (False, True):
            label = "commit" if commit else "dry_run"
            seconds, peak_mb, last = run_command(path, commit=commit)
            note(last)
            results[label] = (seconds, _rows_seconds(last), peak_mb)
            report(f"import.{rows}_rows_{label}", seconds, "s")
            report(f"import.{rows}_rows_{label}_rows_per_s", rows / seconds, "rows/s")
            report(f"import.{rows}_rows_{label}_peak_rss", peak_mb, "MB")
    finally:
        clear_rows()
    return results


def _web_runs(folder: Path, rows: int) -> None:
    from directory.models import ImportRun, Network

    path = folder / f"amaps-{rows}.csv"
    write_rows(path, rows=rows)
    network, _created = Network.objects.get_or_create(
        slug="banc-essai-import", defaults={"name": "Réseau du banc d'essai (import)", "level": "departmental"}
    )
    run = ImportRun.objects.create(
        network=network, kind="amap", source=SOURCE, filename=path.name, content=path.read_bytes()
    )
    try:
        for task, label in (("import_check", "check"), ("import_commit", "commit")):
            note(_load())
            seconds, peak_mb = run_job(task, run.pk)
            run.refresh_from_db()
            expected = ImportRun.Status.CHECKED if label == "check" else ImportRun.Status.DONE
            if run.status != expected:
                raise RuntimeError(f"{task}: {run.status} ({run.report_text[:500]})")
            note(f"{task} : {' ; '.join(run.report.get('summary', []))}")
            report(f"import.{rows}_rows_web_{label}", seconds, "s")
            report(f"import.{rows}_rows_web_{label}_peak_rss", peak_mb, "MB")
            _goal(f"web {label}", seconds, GOAL_S, f"{GOAL_S:.0f} s")
        joined = network.amaps.filter(source=SOURCE).count()
        if joined != rows:
            raise RuntimeError(f"{joined} AMAP dans le réseau, {rows} attendues")
    finally:
        run.delete()
        clear_rows()


def run(ctx) -> None:
    small, large = ctx.size(5_000, 500), ctx.size(int(ctx.options.get("import_rows", 50_000)), 5_000)
    clear_rows()
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        first = _command_runs(folder, small)
        second = _command_runs(folder, large)
        for label in ("dry_run", "commit"):
            (large_s, large_rows_s, large_mb), (_small_s, small_rows_s, small_mb) = second[label], first[label]
            report(f"import.{large}_rows_{label}_goal", GOAL_S, "s")
            _goal(f"{label} de {large} lignes", large_s, GOAL_S, f"{GOAL_S:.0f} s")
            # Per-row time of the rows alone (the process's start-up left out), large file against small.
            linearity = (large_rows_s / large) / (small_rows_s / small)
            report(f"import.{label}_time_per_row_{large}_vs_{small}", linearity, "x")
            _goal(f"{label}, temps par ligne {large} / {small}", linearity, GOAL_LINEARITY, f"< {GOAL_LINEARITY}")
            growth = (large_mb - small_mb) / ((large - small) / 10_000)
            report(f"import.{label}_peak_rss_growth_per_10k_rows", growth, "MB")
            report(f"import.{label}_peak_rss_growth_per_10k_rows_goal", GOAL_GROWTH_MB_PER_10K, "MB")
            _goal(f"{label}, mémoire par 10 000 lignes", growth, GOAL_GROWTH_MB_PER_10K, f"{GOAL_GROWTH_MB_PER_10K} Mo")
        _web_runs(folder, large)
    if Amap.objects.filter(source=SOURCE).exists():
        raise RuntimeError("benchmark rows left behind")
