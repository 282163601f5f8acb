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
# Tools the tests call find them here (see scripts/env.sh).
source scripts/env.sh
say "cargo test"
# perfkit-pico's `probe` feature (flashing and RTT through probe-rs) is off
# by default; the tests, clippy and doc (.ci/run) build it with the rest in
# one feature set, so the hardware path cannot rot and nothing is built twice.
features=(--features perfkit-pico/probe)
cargo test --workspace --all-targets "${features[@]}" --locked
cargo test --workspace --doc "${features[@]}" --locked
for extra in scripts/test.d/*.sh; do
  [ -e "$extra" ] || continue
  say "test: $extra"
  bash "$extra"
done
