#!/usr/bin/env bash
# @talim/realtime (services/edge/web/kit): the committed build is what the sources
# produce (dist/, the generated close-code rules, the demo page in web/static/kit that
# the edge embeds — like proto-check for generated Go code), the strict type-check,
# the unit and React tests, and the packed tarball in a scratch Vite app.
set -euo pipefail
cd "$(dirname "$0")/.."
kit=services/edge/web/kit
command -v npm >/dev/null || { echo "kit-check: npm is required (Debian: apt-get install nodejs npm)"; exit 1; }
if [[ ! -f $kit/node_modules/.package-lock.json || $kit/package-lock.json -nt $kit/node_modules/.package-lock.json ]]; then
  (cd "$kit" && npm ci --no-audit --no-fund --loglevel=error)
fi
(cd "$kit" && node scripts/build.mjs)
generated=("$kit/dist" "$kit/src/client/closecodes.generated.ts" services/edge/web/static/kit)
if ! git diff --exit-code --stat -- "${generated[@]}" || [[ -n $(git ls-files --others --exclude-standard -- "${generated[@]}") ]]; then
  git ls-files --others --exclude-standard -- "${generated[@]}"
  echo "kit-check: the committed build is stale: run 'npm run build' in $kit and commit the result"
  exit 1
fi
(cd "$kit" && npm run --silent typecheck && node --test --test-timeout=60000 test/)
scripts/kit-pack-test.sh
echo "kit-check: ok"
