# Sourced by the JavaScript test scripts (jstest.sh, siotest.sh): npm install when
# needed, and a real `talim dev` (its default store: FerretDB over a private PostgreSQL,
# installed by `make pg-deps`; TALIM_DEV_STORE=sqlite works too) on kernel-chosen
# loopback ports with a throwaway data directory, stopped (and cleaned up) when the
# script exits.
#
#   name=jstest; keep_var=TALIM_JSTEST_KEEP
#   source scripts/lib/devstack.sh
#   npm_ci_if_needed DIR
#   start_talim_dev          # sets url, grpc, edge_admin, data, log and exports TALIM_E2E_*
#   run_node_tests DIR ARGS  # node --test; prints talim dev's log on failure
# Callers run from the repository root with `set -euo pipefail`.

root=$PWD
pid=""
status=1

command -v node >/dev/null || { echo "$name: node (>= 20) is required (Debian: apt-get install nodejs npm)"; exit 1; }

# npm ci only when the installed tree is missing or older than the lock file (offline reruns work).
npm_ci_if_needed() {
  local dir=$1
  if [[ ! -f $dir/node_modules/.package-lock.json || $dir/package-lock.json -nt $dir/node_modules/.package-lock.json ]]; then
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

data=$(mktemp -d "${TMPDIR:-/tmp}/talim-$name.XXXXXX")
out="$data/talim.out"
log="$data/talim.log"
cleanup() {
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then echo "$name: talim dev did not stop in 15 s, killing it"; kill -KILL "$pid" 2>/dev/null || true; fi
    wait "$pid" 2>/dev/null || true
  fi
  # talim dev stops its PostgreSQL; if it could not (killed), stop it here (SIGINT: fast shutdown).
  local pm=$data/postgres/data/postmaster.pid
  if [[ -f $pm ]] && kill -INT "$(head -1 "$pm")" 2>/dev/null; then
    for _ in $(seq 1 100); do [[ -f $pm ]] || break; sleep 0.1; done
  fi
  if [[ $status -ne 0 && -n "${!keep_var:-}" ]]; then
    echo "$name: kept $data (talim.out, talim.log)"
  else
    rm -rf "$data"
  fi
}
trap cleanup EXIT

start_talim_dev() {
  go build -o bin/talim ./services/talim/cmd/talim
  # Port 0 everywhere: the banner talim dev prints once every service is ready and the
  # demo rooms are seeded tells us where things ended up.
  export TALIM_DATA_DIR=$data TALIM_EDGE_ADDR=127.0.0.1:0 TALIM_GRPC_ADDR=127.0.0.1:0 \
    TALIM_DEV_NATS_ADDR=127.0.0.1:0 TALIM_DEV_MONGO_ADDR=127.0.0.1:0 TALIM_DEV_ADMIN_BASE_PORT=0 TALIM_DEV_PG_PORT=0 \
    TALIM_LOG_LEVEL=${TALIM_LOG_LEVEL:-warn}
  bin/talim dev >"$out" 2>"$log" &
  pid=$!
  local start
  start=$(date +%s)
  until grep -q '^  demo page ' "$out" 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null; then cat "$out" "$log"; echo "$name: talim dev exited before it was ready"; exit 1; fi
    if (( $(date +%s) - start > 120 )); then cat "$out" "$log"; echo "$name: talim dev not ready after 120 s"; exit 1; fi
    sleep 0.1
  done
  url=$(awk '$1 == "demo" && $2 == "page" {print $3; exit}' "$out"); url=${url%/}
  grpc=$(awk '$1 == "gRPC" {print $2; exit}' "$out")
  edge_admin=$(awk '$1 == "edge" && $2 ~ /^http/ {print $2; exit}' "$out")
  curl -fsS "$edge_admin" >/dev/null || { cat "$out" "$log"; echo "$name: edge not ready at $edge_admin"; exit 1; }
  echo "$name: talim dev ready in $(( $(date +%s) - start )) s: $url (gRPC $grpc, data $data)"
  # TALIM_DATA_DIR (exported above) lets `talim token` and `talim notify` find the secrets.
  export TALIM_E2E_URL=$url TALIM_E2E_GRPC=$grpc TALIM_GRPC_ADDR=$grpc TALIM_E2E_TALIM="$root/bin/talim"
}

run_node_tests() {
  local dir=$1; shift
  if (cd "$dir" && node --test --test-concurrency=1 "$@"); then
    status=0
  else
    echo "$name: FAILED; last lines of talim dev's log:"; tail -50 "$log"
    exit 1
  fi
}
