#!/usr/bin/env bash
# The @talim/realtime package as a React team gets it: `npm pack` in
# services/edge/web/kit, install the tarball into a scratch Vite + React + TypeScript
# app (test/pack-app, pinned by its package-lock; npm's cache makes reruns offline),
# paste the seed's code samples and the documented usage (test/fixtures), type-check
# in strict mode and build with Vite.
set -euo pipefail
cd "$(dirname "$0")/.."
kit=services/edge/web/kit
command -v npm >/dev/null || { echo "kit-pack-test: npm is required (Debian: apt-get install nodejs npm)"; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/talim-kit-pack.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

tarball=$(cd "$kit" && npm pack --silent --pack-destination "$tmp" | tail -1)
echo "kit-pack-test: packed $tarball ($(du -k "$tmp/$tarball" | cut -f1) KiB)"
# The tarball holds the built package and nothing else.
tar -tzf "$tmp/$tarball" | sort >"$tmp/files"
for f in package/package.json package/LICENSE package/README.md package/dist/client/index.js \
  package/dist/client/index.d.ts package/dist/react/index.js package/dist/react/index.d.ts package/dist/styles.css; do
  grep -qx "$f" "$tmp/files" || { echo "kit-pack-test: $f missing from the tarball"; cat "$tmp/files"; exit 1; }
done
if grep -Ev '^package/(package\.json|LICENSE|README\.md|dist/.*)$' "$tmp/files"; then
  echo "kit-pack-test: unexpected files in the tarball (above)"; exit 1
fi

app=$tmp/app
cp -r "$kit/test/pack-app" "$app"
rm -rf "$app/node_modules" "$app/dist"
cp "$kit/test/fixtures/seed-examples.tsx" "$kit/test/fixtures/app.tsx" "$app/src/"
(cd "$app" && npm ci --no-audit --no-fund --prefer-offline --loglevel=error &&
  npm install --no-save --no-audit --no-fund --prefer-offline --loglevel=error "$tmp/$tarball")
head -1 "$app/node_modules/@talim/realtime/dist/react/index.js" | grep -q '"use client"' ||
  { echo "kit-pack-test: the React entry lacks \"use client\""; exit 1; }
(cd "$app" && npx --no-install tsc -p tsconfig.json)
echo "kit-pack-test: strict type-check of the seed's samples against the tarball: ok"
(cd "$app" && npx --no-install vite build --logLevel warn)
grep -q "talim-status" "$app"/dist/assets/*.js || { echo "kit-pack-test: the build does not contain the components"; exit 1; }
echo "kit-pack-test: vite build: ok ($(du -sk "$app/dist" | cut -f1) KiB)"
