#!/usr/bin/env bash
# perfkit's `off` feature compiles every macro to the bare expression. Cargo
# features are additive, so it cannot be on in the workspace test run; this
# builds the crate with it and checks nothing is recorded or registered.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo test -p perfkit --features off --test off --locked
# The device core (no `std`, the firmware's features) on the host: a project
# of its own, since the workspace's tests always build perfkit with `std`.
CARGO_TARGET_DIR=target/device-tests cargo test \
  --manifest-path crates/perf/device-tests/Cargo.toml --locked
CARGO_TARGET_DIR=target/device-tests cargo clippy \
  --manifest-path crates/perf/device-tests/Cargo.toml --all-targets --locked -- -D warnings
cargo fmt --manifest-path crates/perf/device-tests/Cargo.toml -- --check
