#!/usr/bin/env bash
# Sets everything up on a fresh machine and runs every test:
#   1. unit and simulator tests of the pure crates (plain cargo test),
#      including the OpenAPI fidelity suite;
#   2. #[pg_test]s inside a temporary PostgreSQL;
#   3. integration and SQL golden tests against a real PostgreSQL with the
#      extension installed and the simulator running.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ZOHO_FDW_ROOT"

scripts/setup.sh

step "0/3 every unsafe block in the extension states why it is sound"
# Only that lint: the manifest denies it, and the rest of clippy's advice is
# not a test.
cargo clippy --package zoho_fdw --lib -- -A clippy::all

step "1/3 pure crates: zoho-api, zoho-sim (unit, simulator, fidelity)"
cargo test --workspace --exclude zoho_fdw --exclude zoho-fdw-tests

step "2/3 #[pg_test]s"
# A pg_test run re-installs the .so in place, which would crash a running
# cluster that loaded it: stop ours first.
scripts/pg.sh stop
pgtest="$ZOHO_FDW_RUN/pgtest"
mkdir -p "$pgtest" && chown postgres "$pgtest" && rm -rf "$pgtest/15"
CARGO_PGRX="$ZOHO_FDW_ROOT/scripts/cargo-pgrx-shim" \
  cargo pgrx test pg15 --package zoho_fdw --runas postgres --pgdata "$pgtest"

step "3/3 integration and SQL golden tests"
cargo pgrx install --package zoho_fdw --pg-config "$PG_CONFIG"
scripts/pg.sh fresh
# The tests start their own simulators in-process and fail (never skip)
# when PostgreSQL cannot be reached.
ZOHO_FDW_TEST_PG="host=$PGHOST port=$PGPORT user=$PGUSER dbname=postgres" \
  cargo test --package zoho-fdw-tests -- --test-threads=1
scripts/pg.sh stop
step "all tests passed"
