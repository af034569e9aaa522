#!/usr/bin/env bash
# Quick start, command 2: installs every dependency (including PostgreSQL, Chromium and the
# dashboard's npm packages), builds, starts a private PostgreSQL on loopback and runs every
# test with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
FULCRUM_WITH_BROWSER=1 bash scripts/install-deps.sh
bash scripts/build.sh
if [ -f web/package.json ]; then
  (cd web && npm ci --no-audit --no-fund --loglevel=error)
fi
if [ -f tests/sdk/package.json ]; then
  (cd tests/sdk && npm ci --no-audit --no-fund --loglevel=error)
fi
pg_env=""
if [ -x scripts/pg-test-server.sh ]; then
  pg_env=$(mktemp)
  bash scripts/pg-test-server.sh start > "$pg_env"
  # shellcheck disable=SC1090
  source "$pg_env"
  trap 'bash scripts/pg-test-server.sh stop "$pg_env" >/dev/null 2>&1 || true' EXIT
fi
(cd build && ctest --output-on-failure -j"$(nproc)" --timeout 600)
# Fuzzing (ASan+UBSan, libFuzzer, a second build with clang-14): opt-in with FULCRUM_FUZZ=1,
# every harness for FULCRUM_FUZZ_SECONDS (20 by default) over its seed corpus. The corpus is
# replayed by the normal suite above in every run (ctest label fuzz-replay).
if [ "${FULCRUM_FUZZ:-0}" = 1 ]; then
  bash scripts/fuzz.sh
fi
