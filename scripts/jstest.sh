#!/usr/bin/env bash
# JavaScript tests of the client SDK (services/edge/web): the unit and React suites, and
# the end-to-end suite against a real `talim dev` started here on kernel-chosen loopback
# ports with a throwaway data directory (scripts/lib/devstack.sh).
#
#   scripts/jstest.sh                 # everything
#   scripts/jstest.sh test/e2e.test.mjs   # only these files (relative to services/edge/web)
#   TALIM_JSTEST_KEEP=1 ...           # keep the data dir and talim dev's log on failure
set -euo pipefail
cd "$(dirname "$0")/.."
name=jstest keep_var=TALIM_JSTEST_KEEP
# shellcheck source=lib/devstack.sh
source scripts/lib/devstack.sh

web=services/edge/web
npm_ci_if_needed "$web"
start_talim_dev
files=("$@")
[[ ${#files[@]} -gt 0 ]] || files=(test/)
run_node_tests "$web" --test-timeout=120000 "${files[@]}"
