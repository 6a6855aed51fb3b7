#!/usr/bin/env bash
# Runs one `talim bench` scenario with the profiling endpoints on and takes CPU
# profiles of the system under test during the send phase:
#
#   scripts/profile-bench.sh OUTDIR SECONDS -- rooms --rooms 2000 --room-size 5 --rate 1000 --duration 20s
#
# OUTDIR gets result.json, bench.log, services.pprof (talim dev: NATS, chat,
# notification, presence, FerretDB), edge.pprof (the standalone edge) and their
# /metrics after the run. Inspect with `go tool pprof -top OUTDIR/services.pprof`.
# Everything runs on loopback; the bench bounds every phase in time.
set -euo pipefail
out=$1 secs=$2; shift 2
[[ ${1:-} == -- ]] && shift
mkdir -p "$out"
talim=${TALIM:-./bin/talim}
export TALIM_ADMIN_PPROF=true
"$talim" bench "$@" --out "$out/result.json" >"$out/bench.log" 2>&1 &
bench=$!
trap 'kill $bench 2>/dev/null || true' EXIT

# pprof_ports PID: the loopback ports of PID that answer /debug/pprof/.
pprof_port() {
  local pid=$1 port
  for port in $(ss -ltnpH 2>/dev/null | grep "pid=$pid," | awk '{print $4}' | sed 's/.*://' | sort -u); do
    if curl -fsS -m 1 "http://127.0.0.1:$port/debug/pprof/cmdline" >/dev/null 2>&1; then
      echo "$port"; return 0
    fi
  done
  return 1
}

# Wait (bounded) for the system's processes and for the send phase.
dev= edge=
for _ in $(seq 600); do
  kill -0 $bench 2>/dev/null || break
  dev=$(pgrep -f -n "talim dev" || true)
  edge=$(pgrep -f -n "talim bench edge" || true)
  if [[ -n $dev ]] && grep -q "joined\|sending" "$out/bench.log" 2>/dev/null; then break; fi
  sleep 0.5
done
[[ -n $dev ]] || { echo "profile-bench: talim dev did not start"; cat "$out/bench.log"; exit 1; }
sleep 2 # into the send phase
dport=$(pprof_port "$dev") || { echo "profile-bench: no pprof port on talim dev ($dev)"; exit 1; }
eport=
[[ -n $edge ]] && eport=$(pprof_port "$edge" || true)
curl -fsS -m $((secs + 30)) -o "$out/services.pprof" "http://127.0.0.1:$dport/debug/pprof/profile?seconds=$secs" &
p1=$!
if [[ -n $eport ]]; then
  curl -fsS -m $((secs + 30)) -o "$out/edge.pprof" "http://127.0.0.1:$eport/debug/pprof/profile?seconds=$secs" &
fi
wait $p1 || true
curl -fsS -m 5 -o "$out/services-metrics.txt" "http://127.0.0.1:$dport/metrics" || true
[[ -n $eport ]] && curl -fsS -m 5 -o "$out/edge-metrics.txt" "http://127.0.0.1:$eport/metrics" || true
wait $bench
trap - EXIT
echo "profile-bench: $out"
