#!/usr/bin/env bash
# Fuzz every cargo-fuzz target in fuzz/ for a bounded time, starting from the
# committed seed corpora (fuzz/seeds/<target>, real streams and files); any
# crash fails the test command. FUZZ_SECONDS per target (default 30: six
# targets side by side, one per core, so 90 s on 2 cores after the first
# build). For a longer
# campaign: scripts/fuzz-campaign.sh. Needs the nightly toolchain; installs
# cargo-fuzz once.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs="${FUZZ_SECONDS:-30}"
if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz: the nightly toolchain is missing (rustup toolchain install nightly)" >&2
  exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
exec bash scripts/fuzz-campaign.sh "$secs"
