#!/usr/bin/env bash
# Compares two perfkit binaries on one scenario, measured in the same job on
# the same machine (`perfkit gate --against REV` does this for a revision,
# building it and stopping once the verdict is clear): ROUNDS rounds of
# `perfkit run --runs 1 --append` (spelt `--repeat`, which older builds
# know too), one per binary in turn, so a slow spell falls on both alike;
# then `perfkit compare` pairs the runs round by round (paired bootstrap
# intervals).
# Usage: bash scripts/ab.sh BASE_BIN HEAD_BIN SCENARIO [ROUNDS] [OUT] [--set K=V]...
set -euo pipefail
[ $# -ge 3 ] || { sed -n 2,9p "$0" >&2; exit 2; }
base=$1 head=$2 scenario=$3 rounds=${4:-10} out=${5:-build/ab}
shift $(( $# < 5 ? $# : 5 ))
rm -rf "$out/base" "$out/head"
for i in $(seq "$rounds"); do
  for side in base head; do
    bin=$base; [ "$side" = head ] && bin=$head
    flags=(--repeat 1 --quiet --no-report --out "$out/$side")
    [ "$i" -gt 1 ] && flags+=(--append)
    "$bin" run "$scenario" "${flags[@]}" "$@" >/dev/null
  done
done
"$head" compare "$out/base/results.json" "$out/head/results.json"
