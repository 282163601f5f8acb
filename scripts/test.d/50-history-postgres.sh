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
# --workspace, not -p: the features the workspace run unified are reused,
# where -p would build the store, the harness and their dependencies again
# (3-4 minutes on a 2-vCPU runner).
cargo test --workspace --test store --locked
cargo test --workspace --test history --locked -- postgres
