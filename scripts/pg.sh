#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster for the demo and the integration tests:
#   scripts/pg.sh start | stop | restart | fresh
# It runs as the postgres user (initdb refuses root) on $PGPORT, with
# zoho_fdw preloaded, trusting local connections.
set -euo pipefail
source "$(dirname "$0")/env.sh"
data="$ZOHO_FDW_RUN/pgdata"
log="$ZOHO_FDW_RUN/postgres.log"

init() {
  mkdir -p "$ZOHO_FDW_RUN"
  chown postgres "$ZOHO_FDW_RUN"
  runuser -u postgres -- "$PG_BIN/initdb" -D "$data" --auth=trust -U postgres >/dev/null
  cat >> "$data/postgresql.conf" <<CONF
port = $PGPORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$ZOHO_FDW_RUN'
shared_preload_libraries = 'zoho_fdw'
log_min_messages = warning
# The background worker: channels of the postgres database, webhooks on
# $ZOHO_FDW_WEBHOOK_PORT (the demo and the worker tests use both).
zoho_fdw.database = 'postgres'
zoho_fdw.webhook_listen = '127.0.0.1:$ZOHO_FDW_WEBHOOK_PORT'
zoho_fdw.webhook_url = 'http://127.0.0.1:$ZOHO_FDW_WEBHOOK_PORT/zoho/notify'
CONF
}

stop() {
  if [ -f "$data/postmaster.pid" ]; then
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$data" -m fast stop >/dev/null || true
  fi
}

start() {
  [ -f "$data/PG_VERSION" ] || init
  if ! runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$data" -l "$log" -w start >/dev/null
  fi
  echo "PostgreSQL on $PGHOST:$PGPORT (data $data, log $log)"
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  fresh) stop; rm -rf "$data"; start ;;
  *) echo "usage: $0 start|stop|restart|fresh" >&2; exit 2 ;;
esac
