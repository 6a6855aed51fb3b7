#!/usr/bin/env bash
# scripts/bench.sh — the load scenarios of docs/performance.md at moderate sizes
# (about 6–8 minutes on the 2-core reference machine). Results: docs/perf/<name>.json
# (one JSON line each) and docs/perf/<name>.html (latency charts).
#
# Needs PostgreSQL for FerretDB (make pg-deps) and a talim binary with `talim bench`
# (make build). Every run starts its own system (talim dev with FerretDB over
# PostgreSQL + a standalone edge) on spare loopback ports and stops it afterwards.
#
#   TALIM=./bin/talim OUT=docs/perf scripts/bench.sh [scenario ...]
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TALIM=${TALIM:-$ROOT/bin/talim}
OUT=${OUT:-$ROOT/docs/perf}
mkdir -p "$OUT"
[ -x "$TALIM" ] || { echo "bench.sh: $TALIM not found: run make build" >&2; exit 1; }

run() { # name scenario flags...
	local name=$1; shift
	echo "== $name: talim bench $*" >&2
	timeout 600 "$TALIM" bench "$@" --label "$name" --out "$OUT/$name.json" --chart "$OUT/$name.html" >/dev/null
}

want() { [ $# -eq 0 ] || [[ " ${SELECTED} " == *" $1 "* ]]; }
SELECTED="$*"

want idle            && run idle-10k            idle --conns 10000
want fanout          && run fanout-1000-r30      fanout --conns 1000 --rate 30 --duration 15s
want rooms           && run rooms-2000x5-r300    rooms --rooms 2000 --room-size 5 --rate 300 --duration 15s
want notify          && run notify-2000-r5       notify --conns 2000 --rate 5 --duration 10s
want reconnect-storm && run reconnect-1000       reconnect-storm --rooms 100 --room-size 10 --rate 100 --duration 15s
echo "bench.sh: results in $OUT" >&2
