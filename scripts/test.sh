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
# Fuzzing (ASan+UBSan, libFuzzer, a second build with clang-14 in build-fuzz/): every run
# builds all six harnesses and runs each for FULCRUM_FUZZ_SECONDS (10 by default) over its
# seed corpus; a crash, leak or timeout fails the run. The cold sanitizer build takes about 7
# minutes on 2 cores. FULCRUM_FUZZ=0 skips it. The corpus of every harness is also replayed
# by the suite above (ctest label fuzz-replay).
if [ "${FULCRUM_FUZZ:-1}" != 0 ]; then
  FULCRUM_FUZZ_SECONDS=${FULCRUM_FUZZ_SECONDS:-10} bash scripts/fuzz.sh
fi
