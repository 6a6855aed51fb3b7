#!/usr/bin/env bash
# JavaScript tests of the client SDK (services/edge/web): the unit and React suites, and
# the end-to-end suite against a real `talim dev` started here on kernel-chosen loopback
# ports with a throwaway data directory. Any later suite under test/ (e.g. the
# socket.io-client compatibility tests) runs against the same stack.
#
#   scripts/jstest.sh                 # everything
#   scripts/jstest.sh test/e2e.test.mjs   # only these files (relative to services/edge/web)
#   TALIM_JSTEST_KEEP=1 ...           # keep the data dir and talim dev's log on failure
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
web=services/edge/web

command -v node >/dev/null || { echo "jstest: node (>= 20) is required (Debian: apt-get install nodejs npm)"; exit 1; }
# npm ci only when the installed tree is missing or older than the lock file (offline reruns work).
if [[ ! -f $web/node_modules/.package-lock.json || $web/package-lock.json -nt $web/node_modules/.package-lock.json ]]; then
  (cd "$web" && npm ci --no-audit --no-fund --loglevel=error)
fi

data=$(mktemp -d "${TMPDIR:-/tmp}/talim-jstest.XXXXXX")
out="$data/talim.out"
log="$data/talim.log"
pid=""
status=1
cleanup() {
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then echo "jstest: talim dev did not stop in 15 s, killing it"; kill -KILL "$pid" 2>/dev/null || true; fi
    wait "$pid" 2>/dev/null || true
  fi
  if [[ $status -ne 0 && -n "${TALIM_JSTEST_KEEP:-}" ]]; then
    echo "jstest: kept $data (talim.out, talim.log)"
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
  if ! kill -0 "$pid" 2>/dev/null; then cat "$out" "$log"; echo "jstest: talim dev exited before it was ready"; exit 1; fi
  if (( $(date +%s) - start > 60 )); then cat "$out" "$log"; echo "jstest: talim dev not ready after 60 s"; exit 1; fi
  sleep 0.1
done
url=$(awk '$1 == "demo" && $2 == "page" {print $3; exit}' "$out"); url=${url%/}
grpc=$(awk '$1 == "gRPC" {print $2; exit}' "$out")
edge_admin=$(awk '$1 == "edge" && $2 ~ /^http/ {print $2; exit}' "$out")
curl -fsS "$edge_admin" >/dev/null || { cat "$out" "$log"; echo "jstest: edge not ready at $edge_admin"; exit 1; }
echo "jstest: talim dev ready in $(( $(date +%s) - start )) s: $url (gRPC $grpc, data $data)"

# TALIM_DATA_DIR (exported above) lets `talim token` and `talim notify` find the secrets.
export TALIM_E2E_URL=$url TALIM_E2E_GRPC=$grpc TALIM_GRPC_ADDR=$grpc TALIM_E2E_TALIM="$root/bin/talim"
files=("$@")
[[ ${#files[@]} -gt 0 ]] || files=(test/)
if (cd "$web" && node --test --test-concurrency=1 --test-timeout=120000 "${files[@]}"); then
  status=0
else
  echo "jstest: FAILED; last lines of talim dev's log:"; tail -50 "$log"
  exit 1
fi
