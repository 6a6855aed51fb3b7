#!/usr/bin/env bash
# Soak: steady chat, notification and presence traffic against the whole system for
# a long time (default 10 minutes, 200 connections, FerretDB over PostgreSQL);
# memory (RSS), goroutines and open file descriptors must stay flat. Not part of
# `make test`.
#
#   scripts/soak.sh                          # 10 minutes, 200 connections
#   scripts/soak.sh --duration 30m --conns 500 --rate 50
#   scripts/soak.sh --duration 2m --store sqlite
#
# Writes docs/soak-report.json and docs/soak-report.md (--out DIR to change) and
# exits non-zero when a metric grew. Loopback only. See docs/reliability.md.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ " $* " != *" sqlite "* && " $* " != *"--store=sqlite"* ]]; then
  make -s pg-deps
fi
go build -o bin/talim ./services/talim/cmd/talim
exec bin/talim soak "$@"
