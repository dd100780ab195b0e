#!/usr/bin/env bash
# Installs what a fresh machine lacks (idempotent), then builds and installs
# the extension into the system PostgreSQL 15.
#   PROFILE=release scripts/setup.sh   # optimised build (the demo and benches)
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ZOHO_FDW_ROOT"

step "system packages"
need=()
for pkg in postgresql-15 postgresql-server-dev-15 libclang-dev sudo; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  echo "installed: ${need[*]}"
else
  echo "already installed"
fi

step "cargo-pgrx 0.16.1"
if [ "$(cargo pgrx --version 2>/dev/null || true)" != "cargo-pgrx 0.16.1" ]; then
  cargo install cargo-pgrx --version 0.16.1 --locked
else
  echo "already installed"
fi
if ! grep -q '^pg15' "$HOME/.pgrx/config.toml" 2>/dev/null; then
  cargo pgrx init --pg15 "$PG_CONFIG"
fi

step "build and install the extension (${PROFILE:-dev})"
flags=()
[ "${PROFILE:-dev}" = release ] && flags+=(--release)
cargo pgrx install --package zoho_fdw --pg-config "$PG_CONFIG" "${flags[@]}"
