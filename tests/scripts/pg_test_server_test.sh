#!/usr/bin/env bash
# scripts/pg-test-server.sh, as scripts/test.sh uses it: `run -- CMD` must stop its server
# whatever CMD does (fails, changes directory, is terminated), and `halt`/`resume` must stop
# and restart a cluster on its port (the faults tests rely on it). Before issue 18 the
# suite's EXIT trap called the script by a relative path from another directory, hid the
# failure, and left servers running.
# Usage: pg_test_server_test.sh /abs/path/scripts/pg-test-server.sh (exit 77: skipped).
set -euo pipefail
script=$1
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
if [ ! -x "$PG_BIN/initdb" ]; then
  echo "SKIP: no PostgreSQL 15 at $PG_BIN"
  exit 77
fi
work=$(mktemp -d)
chmod 755 "$work"  # the postgres user (when run as root) needs to reach $work/cluster
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
alive() { kill -0 "$1" 2>/dev/null; }

# 1. The command fails after moving elsewhere: run returns its status, the server is gone.
mkdir -p "$work/sub"
status=0
(cd "$work/sub" && bash "$script" run -- bash -c '
  echo "$FULCRUM_PG_DIR" > ../dir
  head -n 1 "$FULCRUM_PG_DIR/data/postmaster.pid" > ../pid
  cd / && exit 3') || status=$?
[ "$status" = 3 ] || fail "run returned $status, not the command's 3"
pid=$(cat "$work/pid")
[ -n "$pid" ] || fail "no postmaster pid recorded"
! alive "$pid" || fail "postmaster $pid still runs after run returned"
[ ! -e "$(cat "$work/dir")" ] || fail "the server dir was left behind"

# 2. run is terminated while the command runs: the server is stopped all the same.
rm -f "$work/dir" "$work/pid"
bash "$script" run -- bash -c '
  echo "$FULCRUM_PG_DIR" > '"$work"'/dir
  head -n 1 "$FULCRUM_PG_DIR/data/postmaster.pid" > '"$work"'/pid
  exec sleep 60' &
runner=$!
for _ in $(seq 1 300); do [ -s "$work/pid" ] && break; sleep 0.1; done
[ -s "$work/pid" ] || fail "the command did not start"
pid=$(cat "$work/pid")
alive "$pid" || fail "postmaster $pid not running while the command runs"
kill -TERM "$runner"
status=0
wait "$runner" || status=$?
[ "$status" = 143 ] || fail "terminated run returned $status, not 143"
! alive "$pid" || fail "postmaster $pid still runs after run was terminated"
[ ! -e "$(cat "$work/dir")" ] || fail "the server dir was left behind"

# 3. halt keeps the cluster and stops the server; resume serves again on the same port.
eval "$(bash "$script" start "$work/cluster")"
port=$(cat "$work/cluster/port")
"$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" || fail "not ready after start"
bash "$script" halt "$work/cluster"
! "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" || fail "still accepting after halt"
[ -f "$work/cluster/data/PG_VERSION" ] || fail "halt removed the cluster"
bash "$script" resume "$work/cluster"
"$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" || fail "not ready after resume"
pid=$(head -n 1 "$work/cluster/data/postmaster.pid")
bash "$script" stop "$work/cluster"
! alive "$pid" || fail "postmaster $pid still runs after stop"
echo "PASS"
