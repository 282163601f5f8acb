#!/usr/bin/env bash
# perfkit-pico's `probe` feature (flashing and RTT through probe-rs) is off in
# the workspace build; build it and run its unit tests (probe selectors,
# everything short of a board) so the hardware path cannot rot.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo test -p perfkit-pico --features probe --lib --locked
cargo clippy -p perfkit-pico --features probe --all-targets --locked -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc -p perfkit-pico --no-deps --features probe --locked
