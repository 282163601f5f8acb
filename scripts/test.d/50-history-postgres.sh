#!/usr/bin/env bash
# The history store's test suite against a real PostgreSQL server: a
# throwaway cluster in build/pg (scripts/pg.sh), stopped afterwards. The same
# suite runs on SQLite in the workspace test run.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/pg.sh start
trap 'bash scripts/pg.sh stop' EXIT
PERFKIT_TEST_POSTGRES="$(bash scripts/pg.sh url)"
export PERFKIT_TEST_POSTGRES
# The workspace and the features of scripts/test.sh, so its build is
# reused: -p, or another feature set, resolves features anew and builds the
# store, the harness and their dependencies again (1-4 minutes on a 2-vCPU
# runner).
features=(--features perfkit-pico/probe)
cargo test --workspace --test store "${features[@]}" --locked
cargo test --workspace --test history "${features[@]}" --locked -- postgres
