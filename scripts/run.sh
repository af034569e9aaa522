#!/usr/bin/env bash
# Quick start, command 1: installs dependencies, builds, creates the demo data set on the
# embedded store (once) and starts the server on http://127.0.0.1:8080 with an admin key.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
fulcrum=build/src/cli/fulcrum
store=${FULCRUM_STORE:-fulcrum-demo.db}
port=${FULCRUM_PORT:-8080}
if [ ! -f "$store" ]; then
  echo "Creating demo data in $store (50,000 users, 90 days)..."
  "$fulcrum" --store "$store" demo
fi
if [ ! -f "$store.admin-key" ]; then
  # Created 0600 before the secret is written into it.
  (umask 077 && "$fulcrum" --store "$store" keys create --role admin --label quickstart |
    sed -n 's/^secret: //p' > "$store.admin-key")
  echo "Created an admin API key (shown this once; it is kept in $store.admin-key, mode 0600):"
  echo "  $(cat "$store.admin-key")"
else
  echo "Admin API key: see $store.admin-key (created on the first start)"
fi
echo "Fulcrum is starting at http://127.0.0.1:$port/  (key file $store.keys: back it up with the store)"
exec "$fulcrum" --store "$store" serve --address 127.0.0.1 --port "$port" --web-dir web
