#!/usr/bin/env bash
# Starts or stops a private, throw-away PostgreSQL 15 server for tests.
#
#   eval "$(scripts/pg-test-server.sh start)"   # exports FULCRUM_TEST_PG_URL and FULCRUM_PG_DIR
#   ...run tests...
#   scripts/pg-test-server.sh stop [DIR|FILE]  # $FULCRUM_PG_DIR, the dir, or a file holding
#                                              # the output of `start`
#   scripts/pg-test-server.sh url [DIR|FILE]   # prints the URL of a running server
#   scripts/pg-test-server.sh run -- CMD...    # start, run CMD with the exports, stop (also
#                                              # when CMD fails or is interrupted); CMD's status
#   scripts/pg-test-server.sh halt DIR         # stop the server but keep its cluster (faults
#   scripts/pg-test-server.sh resume DIR       # tests), then start it again on the same port
#
# `stop` makes sure the server is gone (the postmaster's pid no longer runs) before it removes
# the dir, and fails loudly when it is not.
# The server lives in a fresh temp dir (or DIR given to `start`), listens on 127.0.0.1 on a
# free port with trust authentication, and is tuned for speed, not safety (fsync=off): it is
# for tests only. PG_SHARED_BUFFERS sets shared_buffers (64MB by default; the scale
# benchmark gives it what a deployment of that size would, 2GB). When run as root, the server runs as the `postgres` system user (PostgreSQL
# refuses to run as root), which owns the data dir.
set -euo pipefail

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
DB_USER=fulcrum
DB_NAME=fulcrum

log() { echo "pg-test-server: $*" >&2; }
die() { log "$*"; exit 1; }

run_as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Starts the cluster in $1 on port $2. Unix sockets go in the private dir, so nothing
# touches /var/run/postgresql.
launch() {
  local dir=$1 port=$2
  run_as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
    -o "-p $port -c listen_addresses=127.0.0.1 -k $dir -c fsync=off \
        -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 \
        -c shared_buffers=${PG_SHARED_BUFFERS:-64MB}" start >"$dir/pg_ctl.log" 2>&1
}

# The postmaster's pid while the cluster in $1 runs (first line of postmaster.pid), or "".
postmaster_pid() {
  local pid_file=$1/data/postmaster.pid
  [ -f "$pid_file" ] || return 0
  local pid
  pid=$(head -n 1 "$pid_file" 2>/dev/null || true)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then echo "$pid"; fi
}

# Stops the server of the cluster in $1 (immediate mode: tests keep nothing) and waits until
# its postmaster is gone; SIGKILL if pg_ctl could not stop it. Fails if it still runs.
halt_server() {
  local dir=$1 pid
  pid=$(postmaster_pid "$dir")
  [ -n "$pid" ] || return 0
  run_as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
  local waited
  for waited in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  log "pg_ctl did not stop postmaster $pid; killing it"
  kill -KILL "$pid" 2>/dev/null || true
  sleep 0.5
  if kill -0 "$pid" 2>/dev/null; then
    log "postmaster $pid of $dir still runs"
    return 1
  fi
}

cmd_start() {
  local dir=${1:-}
  [ -x "$PG_BIN/initdb" ] || die "no PostgreSQL 15 at $PG_BIN (apt-get install postgresql)"
  if [ -z "$dir" ]; then
    dir=$(mktemp -d "${TMPDIR:-/tmp}/fulcrum-pg.XXXXXX")
  fi
  mkdir -p "$dir"
  [ -e "$dir/data/PG_VERSION" ] && die "$dir already holds a cluster; stop it or pick another dir"
  if [ "$(id -u)" = 0 ]; then
    getent passwd postgres >/dev/null || die "running as root needs the 'postgres' user"
    chown postgres: "$dir"
  fi
  chmod 700 "$dir"
  run_as_owner "$PG_BIN/initdb" -D "$dir/data" -U "$DB_USER" --auth=trust --encoding=UTF8 \
    --locale=C --no-sync >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
  local attempt port=""
  for attempt in 1 2 3 4 5; do
    port=$(free_port)
    if launch "$dir" "$port"; then
      break
    fi
    log "start on port $port failed (attempt $attempt)"
    port=""
  done
  [ -n "$port" ] || { cat "$dir/server.log" >&2 || true; die "server did not start"; }
  echo "$port" >"$dir/port"
  "$PG_BIN/createdb" -h 127.0.0.1 -p "$port" -U "$DB_USER" "$DB_NAME" \
    || die "createdb failed"
  local url="postgresql://$DB_USER@127.0.0.1:$port/$DB_NAME"
  echo "$url" >"$dir/url"
  log "running in $dir at $url"
  echo "export FULCRUM_TEST_PG_URL='$url'"
  echo "export FULCRUM_PG_DIR='$dir'"
}

# Accepts the server dir or a file with the exports printed by `start`.
resolve_dir() {
  local arg=${1:-${FULCRUM_PG_DIR:-}}
  if [ -n "$arg" ] && [ -f "$arg" ]; then
    sed -n "s/^export FULCRUM_PG_DIR='\(.*\)'$/\1/p" "$arg"
  else
    echo "$arg"
  fi
}

cmd_stop() {
  local dir
  dir=$(resolve_dir "${1:-}")
  [ -n "$dir" ] || die "stop needs the server dir (argument or FULCRUM_PG_DIR)"
  [ -d "$dir/data" ] || die "no cluster in $dir"
  halt_server "$dir" || die "could not stop the server in $dir (left in place)"
  rm -rf "$dir"
  log "stopped and removed $dir"
}

cmd_halt() {
  local dir=${1:-}
  [ -n "$dir" ] && [ -d "$dir/data" ] || die "halt needs the dir of a cluster"
  halt_server "$dir" || die "could not stop the server in $dir"
  log "halted $dir (cluster kept)"
}

cmd_resume() {
  local dir=${1:-}
  [ -n "$dir" ] && [ -f "$dir/port" ] || die "resume needs the dir of a halted cluster"
  [ -z "$(postmaster_pid "$dir")" ] || die "the server in $dir is running"
  launch "$dir" "$(cat "$dir/port")" || { cat "$dir/server.log" >&2 || true; die "resume failed"; }
  log "resumed $dir"
}

# Starts a server, runs the command with FULCRUM_TEST_PG_URL/FULCRUM_PG_DIR exported and
# stops the server whatever happens to the command (its exit status is returned).
cmd_run() {
  [ "${1:-}" = "--" ] && shift
  [ $# -gt 0 ] || die "run needs a command: run -- CMD..."
  local exports
  exports=$(cmd_start) || die "start failed"
  eval "$exports"
  local dir=$FULCRUM_PG_DIR
  # The stop runs from this script's own path, whatever directory the command left us in.
  local self
  self=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")
  trap 'bash "'"$self"'" stop "'"$dir"'" || exit 70' EXIT
  # The command runs in the background so a signal to this script is handled at once (bash
  # defers traps while a foreground child runs); it is passed on, then the EXIT trap stops
  # the server. Background commands ignore SIGINT here, so TERM is what they get.
  "$@" &
  RUN_CHILD=$!
  trap 'kill -TERM "$RUN_CHILD" 2>/dev/null; wait "$RUN_CHILD"; exit 130' INT
  trap 'kill -TERM "$RUN_CHILD" 2>/dev/null; wait "$RUN_CHILD"; exit 143' TERM
  trap 'kill -TERM "$RUN_CHILD" 2>/dev/null; wait "$RUN_CHILD"; exit 129' HUP
  local status=0
  wait "$RUN_CHILD" || status=$?
  return "$status"
}

cmd_url() {
  local dir
  dir=$(resolve_dir "${1:-}")
  [ -n "$dir" ] && [ -f "$dir/url" ] || die "no running server (give its dir)"
  cat "$dir/url"
}

case "${1:-}" in
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  url) shift; cmd_url "$@" ;;
  run) shift; cmd_run "$@" ;;
  halt) shift; cmd_halt "$@" ;;
  resume) shift; cmd_resume "$@" ;;
  *) echo "usage: $0 start [DIR] | stop [DIR|FILE] | url [DIR|FILE] | run -- CMD... |" \
          "halt DIR | resume DIR" >&2; exit 2 ;;
esac
