#!/usr/bin/env bash
# Installs every Debian package Fulcrum needs to build, run and test.
# Idempotent: skips apt when everything is already present.
set -euo pipefail
packages=(
  build-essential cmake ninja-build pkg-config git
  libboost-dev libboost-system-dev nlohmann-json3-dev libsimdjson-dev
  libsqlite3-dev sqlite3 libpq-dev postgresql
  libeigen3-dev libspdlog-dev libfmt-dev libcli11-dev prometheus-cpp-dev
  libssl-dev libsodium-dev libgtest-dev libgmock-dev libbenchmark-dev
  libhowardhinnant-date-dev  # IANA time zones for job schedules (date/tz.h over /usr/share/zoneinfo)
  pybind11-dev python3-dev
  python3 python3-scipy python3-statsmodels python3-pandas python3-numpy
  curl ca-certificates ccache openssl  # openssl: the TLS tests make self-signed certificates
  clang-14 libclang-rt-14-dev  # libFuzzer + ASan/UBSan runtimes for scripts/fuzz.sh
)
if [ "${FULCRUM_WITH_BROWSER:-0}" = 1 ]; then packages+=(chromium nodejs); fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
