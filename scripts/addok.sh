#!/usr/bin/env bash
# The self-hosted address server: Addok (the Base Adresse Nationale's own engine) on a
# project-local Redis. `make addok` runs it; README « Adresses » says how to load addresses.
# Usage: scripts/addok.sh start|stop|status|url
#   Redis listens on a Unix socket only (ADDOK_VAR/redis.sock): no TCP port, so the machine's own
#   Redis on 6379 is never touched. Its data is saved in ADDOK_VAR/redis.rdb.
#   Addok answers http://ADDOK_HOST:ADDOK_PORT/search/?q=… (the BAN's API) through gunicorn.
#   ADDOK_VAR      data, socket, pids and logs (default .var/addok)
#   ADDOK_HOST     where the HTTP server listens (default 127.0.0.1)
#   ADDOK_PORT     (default 7878, Addok's own)
#   ADDOK_WORKERS  gunicorn worker processes (default 2)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PYTHON:-$( [[ -x "$ROOT/.venv/bin/python" ]] && echo "$ROOT/.venv/bin/python" || echo python3 )}"
VAR="${ADDOK_VAR:-$ROOT/.var/addok}"
HOST="${ADDOK_HOST:-127.0.0.1}"
PORT="${ADDOK_PORT:-7878}"
SOCKET="${ADDOK_REDIS_SOCKET:-$VAR/redis.sock}"
REDIS_PID="$VAR/redis.pid"
ADDOK_PID="$VAR/addok.pid"
export ADDOK_CONFIG_MODULE="$ROOT/config/addok.conf" ADDOK_VAR="$VAR" ADDOK_REDIS_SOCKET="$SOCKET"

alive() {  # alive <pid-file>
  [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null
}

wait_for() {  # wait_for <what> <seconds> <command…>
  local what="$1" tries=$(( $2 * 10 ))
  shift 2
  for _ in $(seq 1 "$tries"); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "$what did not start in time; see its log in $VAR" >&2
  return 1
}

stop_pid() {  # stop_pid <pid-file> <name>
  if alive "$1"; then
    local pid
    pid="$(cat "$1")"
    kill -TERM "$pid"  # Redis saves its data on the way out
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    echo "$2 stopped"
  fi
  rm -f "$1"
}

start() {
  command -v redis-server >/dev/null || { echo "redis-server is missing: run scripts/system-deps.sh" >&2; exit 1; }
  "$PY" -c "import addok, addok_fr, addok_france" 2>/dev/null \
    || { echo "addok is missing from $PY: pip install -r requirements-addok.txt" >&2; exit 1; }
  mkdir -p "$VAR"
  if ! alive "$REDIS_PID"; then
    redis-server --port 0 --unixsocket "$SOCKET" --unixsocketperm 700 \
      --dir "$VAR" --dbfilename redis.rdb --save "3600 1" --appendonly no \
      --daemonize yes --pidfile "$REDIS_PID" --logfile "$VAR/redis.log"
    wait_for "Redis" 30 redis-cli -s "$SOCKET" ping
  fi
  if ! alive "$ADDOK_PID"; then
    "$PY" -m gunicorn addok.http.wsgi:application --chdir "$VAR" \
      --bind "$HOST:$PORT" --workers "${ADDOK_WORKERS:-2}" --daemon \
      --pid "$ADDOK_PID" --error-logfile "$VAR/addok.log" --capture-output --no-control-socket
    wait_for "Addok" 30 "$PY" -c "import urllib.request; urllib.request.urlopen('http://$HOST:$PORT/search/?q=rue', timeout=1)"
  fi
  echo "Addok on http://$HOST:$PORT/ (Redis socket $SOCKET)"
}

case "${1:-start}" in
  start) start ;;
  stop)
    stop_pid "$ADDOK_PID" "Addok"
    stop_pid "$REDIS_PID" "Addok's Redis"
    ;;
  status)
    if alive "$ADDOK_PID" && alive "$REDIS_PID"; then echo "running on http://$HOST:$PORT/"; else echo "stopped"; exit 3; fi
    ;;
  url) echo "http://$HOST:$PORT" ;;
  *) echo "usage: $0 start|stop|status|url" >&2; exit 2 ;;
esac
