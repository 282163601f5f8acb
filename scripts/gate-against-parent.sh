#!/usr/bin/env bash
# The wall-clock gate of CI, on any runner: this commit against its parent,
# both built here and measured in alternating rounds on this machine
# (`perfkit gate --against`). When there is no parent (a first commit, a
# clone of depth 1) or the parent does not build, it says so loudly and
# measures this commit against itself instead: that checks the gate runs,
# and it catches no regression, which the banner states.
# Usage: bash scripts/gate-against-parent.sh [SCENARIO] [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
scenario=${1:-scenarios/gate-loopback.toml}
out=${2:-build/ci/gate-against}
bin=target/release/perfkit
[ -x "$bin" ] || cargo build --release --locked -q -p perfkit-harness
loud() {
  printf '\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n' >&2
  printf '!! %s\n' "$@" >&2
  printf '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\n' >&2
}
t0=$(date +%s)
fallback=
if ! base=$(git rev-parse -q --verify 'HEAD~1^{commit}'); then
  fallback="there is no parent commit here (first commit, or a shallow clone: fetch with depth 2 or more)"
elif ! "$bin" gate --against "$base" "$scenario" --build-only >/dev/null; then
  fallback="the parent commit ${base:0:12} does not build (its errors are above)"
fi
if [ -n "$fallback" ]; then
  loud "WALL-CLOCK GATE: NO REGRESSION CHECK: $fallback." \
       "Measuring this commit against itself instead (A/A): this only checks that the gate runs."
  base=HEAD
fi
mkdir -p "$out"
set +e
"$bin" gate --against "$base" "$scenario" --out "$out" --summary-md "$out/summary.md"
code=$?
set -e
echo "wall-clock gate: $(( $(date +%s) - t0 )) s (base build and measurement)"
if [ -n "$fallback" ]; then
  loud "WALL-CLOCK GATE: the verdict above is this commit against ITSELF: $fallback."
  printf '\n**No wall-clock regression check: %s.** The verdict above measured this commit against itself.\n' \
    "$fallback" >>"$out/summary.md"
fi
exit "$code"
