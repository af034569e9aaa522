#!/usr/bin/env bash
# Starts or stops a private, throw-away PostgreSQL 15 server for tests.
#
#   eval "$(scripts/pg-test-server.sh start)"   # exports FULCRUM_TEST_PG_URL and FULCRUM_PG_DIR
#   ...run tests...
#   scripts/pg-test-server.sh stop [DIR|FILE]  # $FULCRUM_PG_DIR, the dir, or a file holding
#                                              # the output of `start`
#   scripts/pg-test-server.sh url [DIR|FILE]   # prints the URL of a running server
#
# The server lives in a fresh temp dir (or DIR given to `start`), listens on 127.0.0.1 on a
# free port with trust authentication, and is tuned for speed, not safety (fsync=off): it is
# for tests only. When run as root, the server runs as the `postgres` system user (PostgreSQL
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
    # Unix sockets go in the private dir, so nothing touches /var/run/postgresql.
    if run_as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
         -o "-p $port -c listen_addresses=127.0.0.1 -k $dir -c fsync=off \
             -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 \
             -c shared_buffers=64MB" start >"$dir/pg_ctl.log" 2>&1; then
      break
    fi
    log "start on port $port failed (attempt $attempt)"
    port=""
  done
  [ -n "$port" ] || { cat "$dir/server.log" >&2 || true; die "server did not start"; }
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
  run_as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
  log "stopped and removed $dir"
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
  *) echo "usage: $0 start [DIR] | stop [DIR] | url [DIR]" >&2; exit 2 ;;
esac
