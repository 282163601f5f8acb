#!/usr/bin/env bash
# The history's speed on a synthetic 200 commits x 20 configurations x 30
# metrics: import rate and trend-query time in process (the example), then
# `perfkit history show` end to end, process start included.
#   bash scripts/history-bench.sh [postgres://...]   (default: SQLite in build/)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q -p perfkit-harness -p perfkit-history --example history_bench
db="${1:-$PWD/build/history-bench/history.db}"
if [[ "$db" != postgres* ]]; then rm -rf "$(dirname "$db")"; mkdir -p "$(dirname "$db")"; fi
target/release/examples/history_bench "$db"
n=20
start=$(date +%s%N)
for _ in $(seq $n); do
  target/release/perfkit history show stage.wire::crc16.p99_ns --scenario bench \
    --config block_size=21 --db "$db" >/dev/null
done
end=$(date +%s%N)
echo "perfkit history show (one configuration, 200 commits), whole process: $(( (end - start) / n / 1000000 )) ms"
