#!/usr/bin/env bash
# Socket.IO compatibility tests (PROTOCOL.md §8): the real socket.io-client v4 npm
# package (services/edge/web/sio-test, pinned in its package-lock.json, installed
# into its node_modules, which git ignores) against a real `talim dev` started here on
# kernel-chosen loopback ports with a throwaway data directory (scripts/lib/devstack.sh).
#
#   scripts/siotest.sh                # every test file of web/sio-test/test
#   TALIM_SIOTEST_KEEP=1 ...          # keep the data dir and talim dev's log on failure
set -euo pipefail
cd "$(dirname "$0")/.."
name=siotest keep_var=TALIM_SIOTEST_KEEP
# shellcheck source=lib/devstack.sh
source scripts/lib/devstack.sh

dir=services/edge/web/sio-test
npm_ci_if_needed "$dir"
start_talim_dev
run_node_tests "$dir" test/
