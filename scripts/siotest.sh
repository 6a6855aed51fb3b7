#!/usr/bin/env bash
# Socket.IO compatibility tests (PROTOCOL.md §8): the real socket.io-client v4 npm
# package (services/edge/web/sio-test, pinned in its package-lock.json, installed
# into its node_modules, which git ignores) against a real `talim dev` started here on
# kernel-chosen loopback ports with a throwaway data directory.
#
#   scripts/siotest.sh                # every test file of web/sio-test/test
#   TALIM_SIOTEST_KEEP=1 ...          # keep the data dir and talim dev's log on failure
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
dir=services/edge/web/sio-test

command -v node >/dev/null || { echo "siotest: node (>= 20) is required (Debian: apt-get install nodejs npm)"; exit 1; }
# npm ci only when the installed tree is missing or older than the lock file (offline reruns work).
if [[ ! -f $dir/node_modules/.package-lock.json || $dir/package-lock.json -nt $dir/node_modules/.package-lock.json ]]; then
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
fi

data=$(mktemp -d "${TMPDIR:-/tmp}/talim-siotest.XXXXXX")
out="$data/talim.out"
log="$data/talim.log"
pid=""
status=1
cleanup() {
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then echo "siotest: talim dev did not stop in 15 s, killing it"; kill -KILL "$pid" 2>/dev/null || true; fi
    wait "$pid" 2>/dev/null || true
  fi
  if [[ $status -ne 0 && -n "${TALIM_SIOTEST_KEEP:-}" ]]; then
    echo "siotest: kept $data (talim.out, talim.log)"
  else
    rm -rf "$data"
  fi
}
trap cleanup EXIT

go build -o bin/talim ./services/talim/cmd/talim

# Port 0 everywhere: the banner talim dev prints once every service is ready and the
# demo rooms are seeded tells us where things ended up.
export TALIM_DATA_DIR=$data TALIM_EDGE_ADDR=127.0.0.1:0 TALIM_GRPC_ADDR=127.0.0.1:0 \
  TALIM_DEV_NATS_ADDR=127.0.0.1:0 TALIM_DEV_MONGO_ADDR=127.0.0.1:0 TALIM_DEV_ADMIN_BASE_PORT=0 \
  TALIM_LOG_LEVEL=${TALIM_LOG_LEVEL:-warn}
bin/talim dev >"$out" 2>"$log" &
pid=$!
start=$(date +%s)
until grep -q '^  demo page ' "$out" 2>/dev/null; do
  if ! kill -0 "$pid" 2>/dev/null; then cat "$out" "$log"; echo "siotest: talim dev exited before it was ready"; exit 1; fi
  if (( $(date +%s) - start > 60 )); then cat "$out" "$log"; echo "siotest: talim dev not ready after 60 s"; exit 1; fi
  sleep 0.1
done
url=$(awk '$1 == "demo" && $2 == "page" {print $3; exit}' "$out"); url=${url%/}
grpc=$(awk '$1 == "gRPC" {print $2; exit}' "$out")
echo "siotest: talim dev ready in $(( $(date +%s) - start )) s: $url (gRPC $grpc, data $data)"

# TALIM_DATA_DIR (exported above) lets `talim token` and `talim notify` find the secrets.
export TALIM_E2E_URL=$url TALIM_E2E_GRPC=$grpc TALIM_GRPC_ADDR=$grpc TALIM_E2E_TALIM="$root/bin/talim"
if (cd "$dir" && node --test --test-concurrency=1 test/); then
  status=0
else
  echo "siotest: FAILED; last lines of talim dev's log:"; tail -50 "$log"
  exit 1
fi
