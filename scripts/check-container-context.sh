#!/usr/bin/env bash
# Builds each service from exactly the files deploy/Dockerfile copies (with the root
# .dockerignore applied by git's idea of tracked files), with GOWORK=off, in a scratch
# directory: the container build's inputs are proven without a container engine.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for s in edge chat notification presence; do
  ctx="$tmp/$s"
  mkdir -p "$ctx"
  # The directories deploy/Dockerfile copies; test files and testdata are ignored by
  # .dockerignore, so they are left out here too.
  git ls-files -co --exclude-standard proto pkg "services/$s" \
    | grep -vE '(_test\.go$|/testdata/|/node_modules/)' \
    | while IFS= read -r f; do mkdir -p "$ctx/$(dirname "$f")"; cp "$f" "$ctx/$f"; done
  (cd "$ctx/services/$s" && GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -o /dev/null "./cmd/$s") \
    || { echo "container context: services/$s does not build from the Dockerfile's files"; exit 1; }
done
echo "container context: every service builds from the files deploy/Dockerfile copies"
