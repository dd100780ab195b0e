#!/usr/bin/env bash
# Sets everything up on a fresh machine and runs a short demo of zoho_fdw
# against the bundled Zoho simulator. Safe to run again.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ZOHO_FDW_ROOT"

PROFILE=release scripts/setup.sh
step "PostgreSQL and the simulator"
scripts/pg.sh restart
scripts/sim.sh start --seed Leads=2000 --seed Orders=300 --seed Deals=500

step "demo (examples/demo.sql)"
"$PG_BIN/psql" -X -v ON_ERROR_STOP=1 -v sim_url="http://127.0.0.1:$SIM_PORT" -d postgres -f examples/demo.sql
echo
echo "PostgreSQL keeps running on port $PGPORT and the simulator on $SIM_PORT:"
echo "  $PG_BIN/psql -h $PGHOST -p $PGPORT -U postgres"
echo "Stop them with scripts/pg.sh stop and scripts/sim.sh stop."
