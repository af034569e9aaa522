#!/usr/bin/env bash
# Scaling benchmark of the lifecycle engines (issue 13): generates the demo bank at several
# sizes (`fulcrum demo --users N`, streamed to the store in batches) and runs every engine on
# each store under /usr/bin/time -v — `sunset`, `evaluate upgrade-timing`, `evaluate
# recommendations`, `campaigns trigger`, and a server that trains every model (GET
# /dashboard builds the recommendation and upgrade-timing models, the retention campaigns
# and the sunset analysis) — then prints wall time, CPU time and peak RSS side by side, the
# growth from one size to the next (the Done-when bounds: <= 6x from 50k to 250k users,
# <= 4.5x from 250k to 1M), and the raw-scan figures of issue 13 as the old baseline.
#
#   nice -n 10 bash bench/scale_bench.sh                     # SQLite at 50k, 250k, 1M users
#   SCALE_SIZES="50000" SCALE_PG_SIZES="250000" FULCRUM_TEST_PG_URL=postgresql://... \
#     nice -n 10 bash bench/scale_bench.sh                   # plus PostgreSQL at 250k
#   bash bench/scale_bench.sh --report                       # the table of the runs so far
#
# Environment: FULCRUM (the CLI, default build/src/cli/fulcrum), SCALE_DIR (stores, logs and
# results.tsv; default /tmp/fulcrum-scale), SCALE_SIZES / SCALE_PG_SIZES (users; "" skips a
# backend), FULCRUM_TEST_PG_URL (a PostgreSQL server: one database per size is created on it),
# SCALE_ENGINES (subset of: demo sunset upgrade-timing recommendations campaigns server),
# SCALE_RUNS (runs of each engine per store, default 1: on a shared machine one run's CPU
# time varies by up to a third; the report takes the median of an invocation's runs),
# SCALE_TIMEOUT (seconds per command, default 5400), SCALE_END_DATE (default today),
# SCALE_KEEP=0 deletes each SQLite store after its runs. Stores that already exist are reused (the demo row then keeps its first
# measurement). Every row records the 1-minute load average at its start: on a shared
# machine, compare CPU seconds and sizes within one run.
set -euo pipefail
cd "$(dirname "$0")/.."

FULCRUM=${FULCRUM:-build/src/cli/fulcrum}
DIR=${SCALE_DIR:-/tmp/fulcrum-scale}
SIZES=${SCALE_SIZES-"50000 250000 1000000"}
PG_SIZES=${SCALE_PG_SIZES-""}
ENGINES=${SCALE_ENGINES:-"demo sunset upgrade-timing recommendations campaigns server"}
TIMEOUT=${SCALE_TIMEOUT:-5400}
RUNS=${SCALE_RUNS:-1}
# Rows of one invocation share a series (the report's median is over the latest series).
SERIES=$(date -u +%Y%m%dT%H%M%S)
KEEP=${SCALE_KEEP:-1}
# The data ends at today's midnight so the server (which analyses at its clock's now) sees
# the same windows as the CLI (which analyses at the latest event).
END_DATE=${SCALE_END_DATE:-$(date -u +%F)}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
RESULTS=$DIR/results.tsv
mkdir -p "$DIR/logs"

report() { /usr/bin/python3 bench/scale_report.py "$RESULTS"; }
if [ "${1:-}" = "--report" ]; then report; exit 0; fi
[ -x "$FULCRUM" ] || { echo "no fulcrum binary at $FULCRUM (bash scripts/build.sh)" >&2; exit 1; }
HEADER='engine\tusers\tbackend\twall_s\tuser_s\tsys_s\tpeak_rss_mb\tload1\tstatus\tseries'
# A results file of an older layout (no series column) is kept aside, not mixed in.
if [ -f "$RESULTS" ] && [ "$(head -1 "$RESULTS")" != "$(printf "$HEADER")" ]; then
  mv "$RESULTS" "$RESULTS.$SERIES.old"
fi
[ -f "$RESULTS" ] || printf "$HEADER\n" >"$RESULTS"

wants() { [[ " $ENGINES " == *" $1 "* ]]; }
load1() { cut -d' ' -f1 /proc/loadavg; }

# record ENGINE USERS BACKEND WALL USER SYS RSS_KB LOAD STATUS
record() {
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "$6" \
    "$(( $7 / 1024 ))" "$8" "$9" "$SERIES" >>"$RESULTS"
}

# measure ENGINE USERS BACKEND command...: one run under /usr/bin/time -v, bounded.
measure() {
  local engine=$1 users=$2 backend=$3
  shift 3
  local log="$DIR/logs/$engine-$users-$backend" load status=ok
  load=$(load1)
  echo "[$(date -u +%H:%M:%S)] $engine, $users users, $backend (load $load)" >&2
  if ! /usr/bin/time -v -o "$log.time" timeout "$TIMEOUT" "$@" >"$log.out" 2>"$log.err"; then
    status="exit-$(sed -n 's/.*Exit status: //p' "$log.time" | tail -1)"
  fi
  local wall user sys rss
  wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$log.time" |
    awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; print s }')
  user=$(sed -n 's/.*User time (seconds): //p' "$log.time")
  sys=$(sed -n 's/.*System time (seconds): //p' "$log.time")
  rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$log.time")
  record "$engine" "$users" "$backend" "$wall" "$user" "$sys" "${rss:-0}" "$load" "$status"
}

free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# The server row: start `fulcrum serve` on a loopback port, time GET /dashboard (which trains
# every model), read the server's peak RSS (VmHWM) and CPU time, stop it by its pid.
measure_server() {
  local users=$1 backend=$2 store=$3
  local log="$DIR/logs/server-$users-$backend" load port key pid status=ok
  load=$(load1)
  echo "[$(date -u +%H:%M:%S)] server (GET /dashboard), $users users, $backend (load $load)" >&2
  # The row measures training: a model an earlier run stored would be loaded instead.
  if [ "$backend" = sqlite ]; then
    sqlite3 "$store" "DELETE FROM documents WHERE kind = 'trained_model'"
  else
    psql -q "$store" -c "DELETE FROM documents WHERE kind = 'trained_model'"
  fi
  key=$("$FULCRUM" --store "$store" keys create --role admin --label scale-bench |
    sed -n 's/^secret: //p')
  port=$(free_port)
  "$FULCRUM" --store "$store" serve --address 127.0.0.1 --port "$port" --web-dir '' \
    >"$log.out" 2>"$log.err" &
  pid=$!
  local up=0
  for _ in $(seq 1 600); do
    if curl -fs -o /dev/null "http://127.0.0.1:$port/healthz"; then
      up=1
      break
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 1
  done
  local started wall=0
  started=$(date +%s.%N)
  if [ "$up" = 1 ] && curl -fs --max-time "$TIMEOUT" -H "Authorization: Bearer $key" \
       -o "$log.json" "http://127.0.0.1:$port/api/automated-optimization/dashboard"; then
    wall=$(echo "$(date +%s.%N) - $started" | bc)
  else
    status=failed
  fi
  local rss=0 user=0 sys=0 ticks
  if [ -r "/proc/$pid/status" ]; then
    rss=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$pid/status")
    ticks=$(getconf CLK_TCK)
    read -r user sys < <(awk -v t="$ticks" '{ printf "%.2f %.2f\n", $14 / t, $15 / t }' \
      "/proc/$pid/stat")
  fi
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  record server "$users" "$backend" "$wall" "$user" "$sys" "${rss:-0}" "$load" "$status"
}

run_size() {
  local users=$1 backend=$2 store=$3
  # A store is generated once (a marker records a finished generation) and reused.
  if wants demo && [ ! -f "$DIR/demo-$users-$backend.done" ]; then
    measure demo "$users" "$backend" "$FULCRUM" --store "$store" demo --users "$users" \
      --end-date "$END_DATE"
    [ "$(tail -1 "$RESULTS" | cut -f9)" = ok ] && touch "$DIR/demo-$users-$backend.done"
  fi
  local run
  for run in $(seq 1 "$RUNS"); do
    run_engines "$users" "$backend" "$store"
  done
}

run_engines() {
  local users=$1 backend=$2 store=$3
  if wants sunset; then measure sunset "$users" "$backend" "$FULCRUM" --store "$store" sunset; fi
  if wants upgrade-timing; then
    measure upgrade-timing "$users" "$backend" "$FULCRUM" --store "$store" evaluate upgrade-timing
  fi
  if wants recommendations; then
    measure recommendations "$users" "$backend" "$FULCRUM" --store "$store" evaluate \
      recommendations
  fi
  if wants campaigns; then
    # --cooldown-days 0: every run targets the same users, so repeated runs do the same work.
    measure campaigns "$users" "$backend" "$FULCRUM" --store "$store" campaigns trigger \
      --summary --cooldown-days 0
  fi
  if wants server; then measure_server "$users" "$backend" "$store"; fi
}

for users in $SIZES; do
  store="$DIR/demo-$users.db"
  echo "== SQLite, $users users: $store (disk: $(df -h --output=avail "$DIR" | tail -1))" >&2
  run_size "$users" sqlite "$store"
  if [ "$KEEP" = 0 ]; then rm -f "$store" "$store-wal" "$store-shm" "$DIR/demo-$users-sqlite.done"; fi
done

if [ -n "$PG_SIZES" ]; then
  [ -n "${FULCRUM_TEST_PG_URL:-}" ] ||
    { echo "SCALE_PG_SIZES needs FULCRUM_TEST_PG_URL (bash scripts/pg-test-server.sh start)" >&2; exit 1; }
  # postgresql://user@host:port/db -> one database per size on the same server.
  if [[ ! "$FULCRUM_TEST_PG_URL" =~ ^postgres(ql)?://([^@/]+)@([^:/]+):([0-9]+)/ ]]; then
    echo "FULCRUM_TEST_PG_URL must look like postgresql://user@host:port/db" >&2
    exit 1
  fi
  pg_user=${BASH_REMATCH[2]} pg_host=${BASH_REMATCH[3]} pg_port=${BASH_REMATCH[4]}
  for users in $PG_SIZES; do
    db="scale_$users"
    "$PG_BIN/createdb" -h "$pg_host" -p "$pg_port" -U "$pg_user" "$db" 2>/dev/null || true
    store="postgresql://$pg_user@$pg_host:$pg_port/$db"
    # A PostgreSQL store has no key file next to it; the server's keys live in this one.
    export FULCRUM_KEY_FILE="$DIR/$db.keys"
    echo "== PostgreSQL, $users users: $store" >&2
    run_size "$users" postgres "$store"
  done
fi

report
