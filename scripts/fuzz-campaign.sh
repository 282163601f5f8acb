#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 600) from its committed
# seeds (fuzz/seeds/<target>) plus what earlier runs found (fuzz/corpus/,
# not committed), and prints executions and coverage per target. Targets
# run side by side, one per core (libFuzzer is single-threaded), so each
# gets its SECONDS of a core and the campaign takes SECONDS x targets /
# cores. Any crash fails the campaign once every running target has
# stopped (libFuzzer saves the input under fuzz/artifacts/<target>/).
#   bash scripts/fuzz-campaign.sh 600
#
# The build: the code under test at opt-level 3, the other dependencies at
# 1 (fuzz/Cargo.toml). On a 2-core AMD EPYC (family 23) that cut the
# address-sanitizer build from 739 s (all at opt-level 3, 16 codegen units;
# about 700 s with cargo-fuzz's default of 1) to 531 s. Executions in 10 s,
# against the all-opt-level-3 build: deframe_receive 8.7k/7.0k, spead_decode
# 164k/171k, results_load 5.2k/15.6k (before serde_json was raised to 3),
# pico_report 261k/183k, scenario_parse 6.3k/7.5k, agent_control 26k/33k.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs="${1:-600}"
cargo +nightly fuzz build
jobs="$(nproc 2>/dev/null || echo 1)"
logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
one() { # target: fuzz it, then print one line (or the crash)
  local t="$1" max_len=4096
  # Results files are larger than stream inputs.
  [ "$t" = results_load ] && max_len=16384
  mkdir -p "corpus/$t"
  if ! cargo +nightly fuzz run "$t" "corpus/$t" "seeds/$t" -- \
      -max_total_time="$secs" -max_len="$max_len" -print_final_stats=1 >"$logs/$t" 2>&1; then
    tail -n 40 "$logs/$t"
    echo "fuzz: $t failed (a crashing input is saved in fuzz/artifacts/$t/)" >&2
    return 1
  fi
  local execs cov
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$logs/$t" | grep -o '[0-9]*$' || echo '?')
  cov=$(grep -o 'cov: [0-9]*' "$logs/$t" | tail -n 1 | grep -o '[0-9]*' || echo '?')
  echo "fuzz: $t: ${secs}s, $execs executions, coverage $cov edges, no crash"
}
failed=0
running=0
for t in $(cargo +nightly fuzz list); do
  if [ "$running" -ge "$jobs" ]; then
    wait -n || failed=1
    running=$((running - 1))
  fi
  one "$t" &
  running=$((running + 1))
done
while [ "$running" -gt 0 ]; do
  wait -n || failed=1
  running=$((running - 1))
done
if [ "$failed" -ne 0 ]; then
  echo "fuzz: at least one target failed (above)" >&2
  exit 1
fi
