#!/usr/bin/env bash
# perfkit's `off` feature compiles every macro to the bare expression. Cargo
# features are additive, so it cannot be on in the workspace test run; this
# builds the crate with it and checks nothing is recorded or registered.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo test -p perfkit --features off --test off --locked
