#!/usr/bin/env bash
# Builds the libFuzzer harnesses (clang-14, ASan+UBSan) into ${FULCRUM_FUZZ_BUILD_DIR:-build-fuzz}
# and runs each for FULCRUM_FUZZ_SECONDS (default 20) over its seed corpus in fuzz/corpus/.
#   bash scripts/fuzz.sh                 # build + short run of every harness
#   FULCRUM_FUZZ_SECONDS=1800 bash scripts/fuzz.sh condition_fuzzer   # one harness, longer
# A crash fails the run; its input is in <build dir>/fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${FULCRUM_FUZZ_BUILD_DIR:-build-fuzz}
seconds=${FULCRUM_FUZZ_SECONDS:-20}
launcher=()
if command -v ccache >/dev/null 2>&1; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
CC=clang-14 CXX=clang++-14 cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DFULCRUM_FUZZ=ON -DFULCRUM_FUZZ_SECONDS="$seconds" "${launcher[@]}" >/dev/null
if [ $# -gt 0 ]; then
  cmake --build "$build_dir" -j"$(nproc)" --target "$@"
  regex=$(printf '^fuzz_%s$|' "$@"); regex=${regex%|}
else
  cmake --build "$build_dir" -j"$(nproc)"
  regex='^fuzz_'
fi
cd "$build_dir"
# One harness at a time: each uses one core, and the timing stays predictable. No test found
# is a failure, not a silent pass.
ctest -L fuzz -R "$regex" --no-tests=error --output-on-failure -j1
