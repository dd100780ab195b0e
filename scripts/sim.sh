#!/usr/bin/env bash
# Runs the bundled Zoho simulator in the background:
#   scripts/sim.sh start [zoho-sim flags…] | stop
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ZOHO_FDW_ROOT"
pidfile="$ZOHO_FDW_RUN/zoho-sim.pid"
mkdir -p "$ZOHO_FDW_RUN"

stop() {
  if [ -f "$pidfile" ]; then
    kill "$(cat "$pidfile")" 2>/dev/null || true
    rm -f "$pidfile"
  fi
}

case "${1:-start}" in
  start)
    shift || true
    stop
    cargo build --release -q -p zoho-sim
    nohup target/release/zoho-sim --port "$SIM_PORT" "$@" >"$ZOHO_FDW_RUN/zoho-sim.log" 2>&1 &
    echo $! >"$pidfile"
    for _ in $(seq 50); do
      curl -fsS "http://127.0.0.1:$SIM_PORT/__sim/credits" >/dev/null 2>&1 && break
      sleep 0.1
    done
    curl -fsS "http://127.0.0.1:$SIM_PORT/__sim/credits" >/dev/null
    echo "zoho-sim on http://127.0.0.1:$SIM_PORT (log $ZOHO_FDW_RUN/zoho-sim.log)"
    ;;
  stop) stop ;;
  *) echo "usage: $0 start [flags] | stop" >&2; exit 2 ;;
esac
