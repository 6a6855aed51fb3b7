#!/usr/bin/env bash
# Production binaries must not link development or test code: the embedded
# FerretDB, the in-process NATS server, the test kit or the edge's test client.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
for s in edge chat notification presence; do
  deps=$(cd "services/$s" && go list -deps "./cmd/$s")
  bad=$(grep -E 'FerretDB|nats-server|pkg/devstack|/edgetest|/testkit' <<<"$deps" || true)
  if [[ -n "$bad" ]]; then
    echo "services/$s links development-only packages:"; echo "$bad" | head -5; status=1
  fi
done
[[ $status -eq 0 ]] && echo "lean: service binaries link no FerretDB, nats-server or test kit"
exit $status
