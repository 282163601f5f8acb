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
# The workspace and the feature set of scripts/test.sh, so its build is
# reused (scripts/env.sh).
source scripts/env.sh
cargo test --workspace --test store --features "$PERFKIT_FEATURES" --locked
cargo test --workspace --test history --features "$PERFKIT_FEATURES" --locked -- postgres
