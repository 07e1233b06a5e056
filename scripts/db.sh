#!/usr/bin/env bash
# A project-local PostgreSQL + PostGIS cluster under .var/ (no Docker needed).
# Usage: scripts/db.sh start|stop|status|url
# PostgreSQL refuses to run as root: as root, the cluster belongs to an unprivileged
# system user (DB_OS_USER, default "postgres", created if absent).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PG_MAJOR="${PG_MAJOR:-15}"
PG_BIN="/usr/lib/postgresql/${PG_MAJOR}/bin"
VAR="$ROOT/.var"
DATA="$VAR/pgdata"
RUN="$VAR/run"
LOG="$VAR/run/postgresql.log"
PORT="${ATLAS_DB_PORT:-54329}"
DB_NAME="${ATLAS_DB_NAME:-atlas}"
DB_ROLE="atlas"
export PGOPTIONS="--client-min-messages=warning"
OS_USER="${DB_OS_USER:-postgres}"

as_db_user() {
  if [[ "$(id -u)" -eq 0 ]]; then runuser -u "$OS_USER" -- "$@"; else "$@"; fi
}

prepare_dirs() {
  mkdir -p "$VAR" "$RUN"
  if [[ "$(id -u)" -eq 0 ]]; then
    id "$OS_USER" >/dev/null 2>&1 || useradd --system --home-dir "$VAR" --shell /usr/sbin/nologin "$OS_USER"
    if ! runuser -u "$OS_USER" -- test -x "$VAR"; then
      echo "The user '$OS_USER' cannot reach $VAR (a parent folder is private)." >&2
      echo "Clone the project somewhere readable (e.g. /srv or /work), or set DATABASE_URL." >&2
      exit 1
    fi
    mkdir -p "$DATA"
    chown "$OS_USER" "$DATA" "$RUN"
    chmod 700 "$DATA"
  else
    mkdir -p "$DATA"
    chmod 700 "$DATA"
  fi
}

is_running() {
  [[ -f "$DATA/postmaster.pid" ]] && as_db_user "$PG_BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

start() {
  prepare_dirs
  if [[ ! -f "$DATA/PG_VERSION" ]]; then
    echo "initialising PostgreSQL ${PG_MAJOR} cluster in $DATA"
    # trust on loopback and socket only: a development cluster that nothing else reaches.
    as_db_user "$PG_BIN/initdb" -D "$DATA" -U "$DB_ROLE" --auth=trust --encoding=UTF8 \
      --locale=C.UTF-8 >/dev/null
    cat >> "$DATA/postgresql.conf" <<CONF
listen_addresses = ''  # Unix socket only: no port shared with other checkouts
port = $PORT
unix_socket_directories = '$RUN'
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 512MB
work_mem = 32MB
maintenance_work_mem = 256MB
max_connections = 100
CONF
  fi
  if ! is_running; then
    as_db_user "$PG_BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 start >/dev/null
    echo "PostgreSQL started (socket in $RUN, port $PORT)"
  fi
  if ! "$PG_BIN/psql" -h "$RUN" -p "$PORT" -U "$DB_ROLE" -d postgres -tAc \
      "SELECT 1 FROM pg_database WHERE datname='$DB_NAME'" | grep -q 1; then
    "$PG_BIN/createdb" -h "$RUN" -p "$PORT" -U "$DB_ROLE" "$DB_NAME"
  fi
  # Test databases are created from template1: give it PostGIS once, so each test run
  # does not have to.
  "$PG_BIN/psql" -q -h "$RUN" -p "$PORT" -U "$DB_ROLE" -d template1 \
    -c "CREATE EXTENSION IF NOT EXISTS postgis" >/dev/null
  "$PG_BIN/psql" -q -h "$RUN" -p "$PORT" -U "$DB_ROLE" -d "$DB_NAME" \
    -c "CREATE EXTENSION IF NOT EXISTS postgis" >/dev/null
}

case "${1:-start}" in
  start) start ;;
  stop) if is_running; then as_db_user "$PG_BIN/pg_ctl" -D "$DATA" -m fast stop; fi ;;
  status) if is_running; then echo "running (socket in $RUN)"; else echo "stopped"; exit 3; fi ;;
  url) echo "socket $RUN port $PORT database $DB_NAME role $DB_ROLE" ;;
  *) echo "usage: $0 start|stop|status|url" >&2; exit 2 ;;
esac
