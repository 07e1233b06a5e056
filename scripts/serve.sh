#!/usr/bin/env bash
# Production web server: static files collected (whitenoise serves them), then gunicorn.
# Usage: scripts/serve.sh   (environment: see README « Production »)
#   WEB_CONCURRENCY         gunicorn worker processes (default: one per core, at least 2)
#   GUNICORN_THREADS        threads per worker (default 4, gthread workers; 1: sync workers)
#   GUNICORN_KEEPALIVE      seconds an idle keep-alive connection stays open (gthread; default 5)
#   GUNICORN_MAX_REQUESTS   a worker is replaced after this many requests, ± GUNICORN_MAX_REQUESTS_JITTER
#                           (defaults 10000 ± 1000; 0: never), so that memory cannot creep up for ever
#   HOST, PORT              where to listen (default 0.0.0.0:8000)
#   MIGRATE=1               apply migrations first (one place only when several web nodes start)
#   COLLECTSTATIC=0         static files already collected (the Docker image does it at build time)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-$( [[ -x .venv/bin/python ]] && echo .venv/bin/python || echo python )}"

if [[ "${COLLECTSTATIC:-1}" == "1" ]]; then  # the Docker image collects them at build time
  "$PY" manage.py collectstatic --noinput --verbosity 0
fi
if [[ "${MIGRATE:-0}" == "1" ]]; then
  "$PY" manage.py migrate --noinput
fi

CORES="$(nproc 2>/dev/null || echo 1)"
# One process per core, each with a few threads: a thread waits on PostgreSQL while another runs,
# keep-alive connections are served (sync workers close every connection), and each process's own
# cache (pages, tiles) is shared by its threads. Measured with benchmarks/bench_load.py on 2 cores:
# 2 workers × 4 threads served the mixed reads with half the CPU per request of 5 sync workers.
THREADS="${GUNICORN_THREADS:-4}"
WORKERS="${WEB_CONCURRENCY:-$(( CORES < 2 ? 2 : CORES ))}"
WORKER_CLASS=sync
if [[ "$THREADS" -gt 1 ]]; then WORKER_CLASS=gthread; fi
# The heartbeat file in memory, not on a disk that may stall (containers' overlay file systems).
TMP_DIR=/dev/shm
[[ -d "$TMP_DIR" && -w "$TMP_DIR" ]] || TMP_DIR="${TMPDIR:-/tmp}"
# No gunicorn access log: config.request_log logs one line per request, with its duration.
exec "$PY" -m gunicorn config.wsgi:application \
  --bind "${HOST:-0.0.0.0}:${PORT:-8000}" \
  --workers "$WORKERS" \
  --worker-class "$WORKER_CLASS" \
  --threads "$THREADS" \
  --keep-alive "${GUNICORN_KEEPALIVE:-5}" \
  --max-requests "${GUNICORN_MAX_REQUESTS:-10000}" \
  --max-requests-jitter "${GUNICORN_MAX_REQUESTS_JITTER:-1000}" \
  --worker-tmp-dir "$TMP_DIR" \
  --timeout "${GUNICORN_TIMEOUT:-60}" \
  --error-logfile -
