#!/usr/bin/env bash
# Quick start, command 2: installs every dependency (including PostgreSQL, Chromium and the
# dashboard's npm packages), builds, starts a private PostgreSQL on loopback and runs every
# test with ctest.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
FULCRUM_WITH_BROWSER=1 bash scripts/install-deps.sh
bash scripts/build.sh
if [ -f web/package.json ]; then
  (cd web && npm ci --no-audit --no-fund --loglevel=error)
fi
if [ -f tests/sdk/package.json ]; then
  (cd tests/sdk && npm ci --no-audit --no-fund --loglevel=error)
fi
# The suite runs inside `pg-test-server.sh run`, which stops its private PostgreSQL when ctest
# ends, fails or is interrupted (an EXIT trap in this script used a relative path and hid its
# failure, and left servers running).
(cd build && bash "$repo/scripts/pg-test-server.sh" run -- \
  ctest --output-on-failure -j"$(nproc)" --timeout 600)
# Fuzzing (ASan+UBSan, libFuzzer, a second build with clang-14): opt-in with FULCRUM_FUZZ=1,
# every harness for FULCRUM_FUZZ_SECONDS (20 by default) over its seed corpus. The corpus is
# replayed by the normal suite above in every run (ctest label fuzz-replay).
if [ "${FULCRUM_FUZZ:-0}" = 1 ]; then
  bash scripts/fuzz.sh
fi
