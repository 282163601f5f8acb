#!/usr/bin/env bash
# The test command (README.md, "Run all the tests"): installs what the tests
# need, idempotently, then runs every test. Each scripts/setup.d/*.sh installs
# one kind of thing (Debian packages, Python packages, npm packages, the
# firmware toolchain) into the system or into build/ inside this clone.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "== [${SECONDS} s] $*"; }
for step in scripts/setup.d/*.sh; do
  say "setup: $step"
  bash "$step"
done
# Where the tools the tests call live, and the feature set every cargo
# command takes (scripts/env.sh).
source scripts/env.sh
say "cargo test"
cargo test --workspace --all-targets --features "$PERFKIT_FEATURES" --locked
cargo test --workspace --doc --features "$PERFKIT_FEATURES" --locked
for extra in scripts/test.d/*.sh; do
  [ -e "$extra" ] || continue
  say "test: $extra"
  bash "$extra"
done
