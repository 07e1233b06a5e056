#!/usr/bin/env bash
# Production web server: static files collected (whitenoise serves them), then gunicorn.
# Usage: scripts/serve.sh   (environment: see README « Production »)
#   WEB_CONCURRENCY  gunicorn worker processes (default 2 × cores + 1)
#   HOST, PORT       where to listen (default 0.0.0.0:8000)
#   MIGRATE=1        apply migrations first (one place only when several web nodes start)
#   COLLECTSTATIC=0  static files already collected (the Docker image does it at build time)
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
# No gunicorn access log: config.middleware logs one line per request, with its duration.
exec "$PY" -m gunicorn config.wsgi:application \
  --bind "${HOST:-0.0.0.0}:${PORT:-8000}" \
  --workers "${WEB_CONCURRENCY:-$((2 * CORES + 1))}" \
  --timeout "${GUNICORN_TIMEOUT:-60}" \
  --error-logfile -
