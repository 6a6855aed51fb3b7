#!/usr/bin/env bash
# JavaScript tests: the client SDK's unit tests, then its end-to-end tests (and the
# socket.io-client compatibility tests) against a real `talim dev` stack started here on
# spare loopback ports with a throwaway data directory.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
web=services/edge/web

command -v node >/dev/null || { echo "jstest: node is required (Debian: apt-get install nodejs npm)"; exit 1; }
(cd "$web" && npm ci --no-audit --no-fund --loglevel=error)

data=$(mktemp -d)
log="$data/talim.log"
pid=""
cleanup() {
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"; for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -rf "$data"
}
trap cleanup EXIT

go build -o bin/talim ./services/talim/cmd/talim
base=${TALIM_JSTEST_PORT_BASE:-18180}
export TALIM_DATA_DIR=$data TALIM_EDGE_ADDR=127.0.0.1:$base TALIM_GRPC_ADDR=127.0.0.1:$((base+1)) \
  TALIM_DEV_NATS_ADDR=127.0.0.1:$((base+2)) TALIM_DEV_MONGO_ADDR=127.0.0.1:$((base+3)) \
  TALIM_DEV_ADMIN_BASE_PORT=$((base+10)) TALIM_LOG_LEVEL=warn
bin/talim dev >"$log" 2>&1 &
pid=$!
url=http://127.0.0.1:$base
for _ in $(seq 1 300); do
  curl -fsS "http://127.0.0.1:$((base+10))/readyz" >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { cat "$log"; echo "jstest: talim dev exited"; exit 1; }
  sleep 0.1
done
curl -fsS "http://127.0.0.1:$((base+10))/readyz" >/dev/null || { cat "$log"; echo "jstest: talim dev not ready"; exit 1; }

export TALIM_E2E_URL=$url TALIM_E2E_GRPC=127.0.0.1:$((base+1)) TALIM_E2E_TALIM="$root/bin/talim"
(cd "$web" && node --test --test-concurrency=1 test/) || { tail -50 "$log"; exit 1; }
