"""Shared helpers for benchmark modules (`benchmarks/bench_*.py`, each defining `run(ctx)`).

Every figure is printed as one line `name value unit` on stdout, e.g. `search.knn_p95 12.4 ms`.
`benchmarks/run.py` has already pointed Django at the benchmark database, migrated it and
loaded the territories before any module runs.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


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


# --- The production server under wrk (bench_load, bench_search) ---------------------------------

# One client makes every request: the API's per-visitor throttle would stop it. A per-second
# history keeps the throttle's bookkeeping small.
HUGE_RATE = "1000000/second"

# Round-robin over `paths` (each wrk thread starts elsewhere in the list); statuses other than
# 200 are counted, and the median and 99th percentile latencies printed.
WRK_LUA = """
local paths = {%(paths)s}
local threads = {}
function setup(thread)
  thread:set("offset", #threads * 997)
  table.insert(threads, thread)
end
function init(args)
  index = offset
  non200 = 0
end
function request()
  index = index + 1
  return wrk.format("GET", paths[(index %% #paths) + 1])
end
function response(status, headers, body)
  if status ~= 200 then non200 = non200 + 1 end
end
function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do total = total + thread:get("non200") end
  io.write(string.format("non200 %%d\\n", total))
  io.write(string.format("p50_ms %%.3f\\n", latency:percentile(50) / 1000))
  io.write(string.format("p99_ms %%.3f\\n", latency:percentile(99) / 1000))
end
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, *, timeout: float = 30.0) -> None:
    """Until `url` answers 200 (OSError after `timeout` seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def production_env(port: int) -> dict[str, str]:
    """Production settings on the loopback: `DEBUG=0`, throwaway keys, no throttle, plain HTTP."""
    return {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": "benchmark-only-not-secret",
        "LOCATION_MASK_KEY": "benchmark-only-not-secret-either",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0",  # no TLS proxy in front
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "API_THROTTLE_ANON": HUGE_RATE,
        "API_THROTTLE_USER": HUGE_RATE,
        "LOG_LEVEL": "WARNING",
    }


@contextmanager
def production_server(command: list[str], *, env: dict[str, str], log_path: Path, ready_path: str = "/healthz"):
    """Start `command` (gunicorn, or scripts/serve.sh which execs it) in its own session; yield it once it answers.

    The process is the gunicorn master: its children are the workers. Stopped (SIGTERM to the
    whole session) on the way out, whatever happened.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log, start_new_session=True)
    try:
        try:
            wait_for(f"http://127.0.0.1:{env['PORT']}{ready_path}", timeout=120)
        except OSError:
            note(f"the server did not answer: see {log_path}")
            raise
        yield server
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def run_wrk(*, base: str, paths: list[str], seconds: float, threads: int = 2, connections: int = 8) -> dict:
    """wrk over `paths` (round-robin) for `seconds`: rps, requests, non2xx, socket_errors, p50, p99 (ms)."""
    wrk = shutil.which("wrk")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_LUA % {"paths": ",".join(f'"{path}"' for path in paths)})
    try:
        result = subprocess.run(
            [wrk, f"-t{threads}", f"-c{connections}", f"-d{int(seconds)}s", "--timeout", "5s", "-s", script.name, base],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=True,
        )
    finally:
        os.unlink(script.name)
    output = result.stdout
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "requests": int(re.search(r"(\d+) requests in", output).group(1)),
        "non2xx": int(re.search(r"non200 (\d+)", output).group(1)),
        "socket_errors": sum(int(x) for x in socket_errors.groups()) if socket_errors else 0,
        "p50": float(re.search(r"p50_ms ([\d.]+)", output).group(1)),
        "p99": float(re.search(r"p99_ms ([\d.]+)", output).group(1)),
    }


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time consumed so far by these processes (Linux /proc)."""
    return sum(cpu_by_process(pids).values())


def cpu_by_process(pids: list[int]) -> dict[int, float]:
    """Each running process's user + system CPU seconds so far (those gone are left out)."""
    found = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
    return found


def cpu_since(before: dict[int, float], pids: list[int]) -> float:
    """CPU seconds `pids` spent since `before` (a `cpu_by_process` snapshot); a process started since counts whole.

    Database connections come and go (CONN_MAX_AGE): comparing sums of two lists of processes
    would count a closed connection's whole life as negative time.
    """
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in cpu_by_process(pids).items())


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (gunicorn's workers)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def database_cpu_seconds() -> float:
    """CPU seconds so far of the PostgreSQL server the benchmark database lives on (when it runs here).

    Its postmaster's own time, its live processes' (connections, autovacuum, the WAL writer…), and
    the time of those that have ended, which the postmaster collects as it reaps them: connections
    come and go (CONN_MAX_AGE), and a difference of two snapshots of live processes would lose the
    time of those that closed in between. 0 when the server runs on another machine.
    """
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    try:
        postmaster = int(Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except OSError:
        return 0.0
    finally:
        connection.close()
    try:
        fields = Path(f"/proc/{postmaster}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    own_and_reaped = sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")  # u/s time, cu/cs time
    return own_and_reaped + cpu_seconds(children(postmaster))
