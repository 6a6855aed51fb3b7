#!/usr/bin/env bash
# Runs every Fuzz target in the workspace for a short time (default 10s each).
# A longer run: scripts/fuzz.sh 10m   (or one target: go test -run=^$ -fuzz=^FuzzName$ ./dir)
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${1:-10s}
count=0
while IFS= read -r file; do
  dir=$(dirname "$file")
  for target in $(grep -oE '^func (Fuzz[A-Za-z0-9_]+)' "$file" | awk '{print $2}'); do
    echo "fuzz $dir $target ($fuzztime)"
    (cd "$dir" && go test -run='^$' -fuzz="^${target}\$" -fuzztime="$fuzztime" . >/tmp/fuzz-$$.log 2>&1) || { cat /tmp/fuzz-$$.log; exit 1; }
    count=$((count+1))
  done
done < <(git ls-files -co --exclude-standard '*_test.go' | xargs grep -l '^func Fuzz' || true)
echo "fuzz: $count targets ran for $fuzztime each without a failure"
