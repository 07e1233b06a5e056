#!/usr/bin/env python
"""Run the benchmarks: every `benchmarks/bench_*.py` defining `run(ctx)`, in name order.

    .venv/bin/python benchmarks/run.py [--quick] [--only SUBSTRING] [--set key=value]

Figures go to stdout as `name value unit` lines, one `# module` header per module.
The benchmarks use their own database (never the dev database `atlas`): `BENCH_DATABASE_URL`
if set; else, when `DATABASE_URL` is set, the same server with `_bench` appended to the
database name; else the database `atlas_bench` of the project-local cluster (Unix socket under
.var/run, like config/settings.py). It is created if missing, migrated, and gets France's
territories. Runs on one database are serialised
with a PostgreSQL advisory lock, so two people benchmarking at once do not skew each other.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
import traceback
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB_NAME = "atlas_bench"
LOCK_KEY = 0x41544C53  # "ATLS": one benchmark run at a time per database


def bench_database() -> tuple[dict, dict]:
    """(psycopg connection kwargs, environment for Django's settings) of the benchmark database."""
    import environ

    url = os.environ.get("BENCH_DATABASE_URL")
    if not url and os.environ.get("DATABASE_URL"):
        parts = urlsplit(os.environ["DATABASE_URL"])
        url = urlunsplit(parts._replace(path=parts.path.rstrip("/") + "_bench"))
    if url:
        config = environ.Env.db_url_config(url)
        kwargs = {
            "host": config.get("HOST"),
            "port": config.get("PORT"),
            "user": config.get("USER"),
            "password": config.get("PASSWORD"),
            "dbname": config["NAME"],
        }
        environment = {"DATABASE_URL": url}
    else:
        port = os.environ.get("ATLAS_DB_PORT", "54329")
        kwargs = {"host": str(ROOT / ".var" / "run"), "port": port, "user": "atlas", "dbname": BENCH_DB_NAME}
        environment = {"DATABASE_URL": "", "ATLAS_DB_NAME": BENCH_DB_NAME}
    return {k: v for k, v in kwargs.items() if v not in (None, "")}, environment


def ensure_database(kwargs: dict) -> None:
    """Create the benchmark database (with PostGIS) if it does not exist yet."""
    import psycopg
    from psycopg import sql

    name = kwargs["dbname"]
    with psycopg.connect(**{**kwargs, "dbname": "postgres"}, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            print(f"# creating benchmark database {name}", file=sys.stderr, flush=True)
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with psycopg.connect(**kwargs, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")


def acquire_lock(kwargs: dict):
    """A dedicated connection holding a session advisory lock until the process ends."""
    import psycopg

    conn = psycopg.connect(**kwargs, autocommit=True)
    if not conn.execute("SELECT pg_try_advisory_lock(%s)", [LOCK_KEY]).fetchone()[0]:
        print("# waiting for another benchmark run on this database to finish…", file=sys.stderr, flush=True)
        conn.execute("SELECT pg_advisory_lock(%s)", [LOCK_KEY])
    return conn


def setup_django(environment: dict) -> None:
    os.environ.update(environment)
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    import django

    django.setup()
    from django.conf import settings

    # Measure the app as it runs in production: no per-query debug log (settings were
    # loaded with DEBUG=1 only to get development defaults such as the secret key).
    settings.DEBUG = False
    if "testserver" not in settings.ALLOWED_HOSTS:
        settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]


def prepare_database() -> None:
    import io

    from django.core.management import call_command

    # Commands' own messages would mix with the figures on stdout.
    call_command("migrate", interactive=False, verbosity=0, stdout=io.StringIO())
    call_command("load_territories", if_empty=True, verbosity=0, stdout=io.StringIO())


def discover(only: str | None) -> list[str]:
    names = sorted(path.stem for path in (ROOT / "benchmarks").glob("bench_*.py"))
    if only:
        names = [name for name in names if only in name]
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="AMAP Atlas benchmarks ('name value unit' lines on stdout)")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats")
    parser.add_argument("--only", metavar="SUBSTRING", help="only modules whose name contains SUBSTRING")
    parser.add_argument(
        "--set", metavar="KEY=VALUE", action="append", default=[], help="free-form option passed in ctx.options"
    )
    parser.add_argument("--list", action="store_true", help="list the modules and exit")
    args = parser.parse_args(argv)

    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    names = discover(args.only)
    if args.list:
        print("\n".join(names))
        return 0
    if not names:
        print(f"# no benchmark module matches {args.only!r}", file=sys.stderr)
        return 1

    kwargs, environment = bench_database()
    ensure_database(kwargs)
    lock = acquire_lock(kwargs)
    setup_django(environment)
    started = time.perf_counter()
    prepare_database()
    print(f"# benchmark database ready in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)

    from benchmarks.common import Context

    options = dict(item.split("=", 1) for item in args.set if "=" in item)
    ctx = Context(quick=args.quick, options=options)
    failures = []
    for name in names:
        module = importlib.import_module(f"benchmarks.{name}")
        run = getattr(module, "run", None)
        if not callable(run):
            continue
        summary = (module.__doc__ or "").strip().splitlines()
        print(f"# {name}" + (f": {summary[0]}" if summary else "") + (" (quick)" if args.quick else ""), flush=True)
        module_started = time.perf_counter()
        try:
            run(ctx)
        except Exception:
            failures.append(name)
            print(f"# {name} FAILED", flush=True)
            traceback.print_exc()
        finally:
            from django.db import connections

            # A failed query leaves the connection in an aborted transaction: start afresh.
            for conn in connections.all():
                conn.close()
        print(f"# {name} took {time.perf_counter() - module_started:.1f} s", file=sys.stderr, flush=True)
    lock.close()
    if failures:
        print(f"# failed modules: {', '.join(failures)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
