#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 600) from its committed
# seeds (fuzz/seeds/<target>) plus what earlier runs found (fuzz/corpus/,
# not committed), and prints executions and coverage per target. Stops at
# the first crash (libFuzzer saves the input under fuzz/artifacts/).
#   bash scripts/fuzz-campaign.sh 600
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs="${1:-600}"
cargo +nightly fuzz build
for t in $(cargo +nightly fuzz list); do
  mkdir -p "corpus/$t"
  # Results files are larger than stream inputs.
  max_len=4096
  [ "$t" = results_load ] && max_len=16384
  log="$(mktemp)"
  if ! cargo +nightly fuzz run "$t" "corpus/$t" "seeds/$t" -- \
      -max_total_time="$secs" -max_len="$max_len" -print_final_stats=1 >"$log" 2>&1; then
    tail -n 40 "$log"
    echo "fuzz: $t crashed; the input is in fuzz/artifacts/$t/" >&2
    exit 1
  fi
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | grep -o '[0-9]*' || echo '?')
  echo "fuzz: $t: ${secs}s, $execs executions, coverage $cov edges, no crash"
  rm -f "$log"
done
