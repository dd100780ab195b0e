# Shared settings for the scripts; source it. Every value can be overridden.
export ZOHO_FDW_ROOT="${ZOHO_FDW_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
export ZOHO_FDW_RUN="${ZOHO_FDW_RUN:-/var/tmp/zoho_fdw}"   # cluster, logs, pid files
export PGPORT="${PGPORT:-28815}"
export PGHOST="${PGHOST:-127.0.0.1}"
export PGUSER="${PGUSER:-postgres}"
export SIM_PORT="${SIM_PORT:-8089}"
export ZOHO_FDW_WEBHOOK_PORT="${ZOHO_FDW_WEBHOOK_PORT:-28816}"   # the worker's webhook listener
export PG_CONFIG="${PG_CONFIG:-/usr/bin/pg_config}"
PG_BIN="$("$PG_CONFIG" --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)"
export PG_BIN
export PATH="$HOME/.cargo/bin:$PATH"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
