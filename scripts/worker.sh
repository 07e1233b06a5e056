#!/usr/bin/env bash
# Background worker: runs the queued jobs (e-mails, the daily schedule…) and defers the
# periodic ones. Any number of workers may run, on any machine that reaches the database.
# Usage: scripts/worker.sh          in the foreground (production: one per container/service)
#        scripts/worker.sh start    in the background (make demo): pid in .var/worker.pid,
#                                   log in .var/log/worker.log; a worker already running is replaced
#        scripts/worker.sh stop
#   WORKER_CONCURRENCY  jobs run at once by this worker (default 2)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-$( [[ -x .venv/bin/python ]] && echo .venv/bin/python || echo python )}"
PID_FILE=.var/worker.pid
LOG_FILE=.var/log/worker.log
COMMAND=("$PY" manage.py procrastinate worker --concurrency "${WORKER_CONCURRENCY:-2}")

stop() {
  if [[ -f "$PID_FILE" ]]; then
    local pid
    pid="$(cat "$PID_FILE")"
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid"  # graceful: the job in hand finishes first
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
      echo "worker $pid stopped"
    fi
    rm -f "$PID_FILE"
  fi
}

case "${1:-run}" in
  run) exec "${COMMAND[@]}" ;;
  start)
    stop
    mkdir -p .var/log
    nohup "${COMMAND[@]}" >>"$LOG_FILE" 2>&1 &
    echo $! > "$PID_FILE"
    echo "worker started (pid $!, log $LOG_FILE)"
    ;;
  stop) stop ;;
  *) echo "usage: $0 [run|start|stop]" >&2; exit 2 ;;
esac
