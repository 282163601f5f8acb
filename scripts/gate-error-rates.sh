#!/usr/bin/env bash
# Measures how often `perfkit gate` is wrong on a wall-clock scenario:
#  - A/A: the same build as baseline and candidate, N independent pairs;
#    every failure is a false alarm.
#  - injected slowdowns: the candidate runs with slowdown_ns_per_packet set
#    so each packet costs 10 % (then 25 %) more than the baseline measured;
#    every pass is a miss.
# Usage: bash scripts/gate-error-rates.sh [TRIALS] [THRESHOLD%] [RUNS] [SCENARIO] [PROTOCOL]
# (THRESHOLD applies to rx.bps and tx.bps, default: the scenario's [gate];
# RUNS is the runs per side, default: the scenario's `runs` (needed for
# `interleaved`). PROTOCOL is how a trial's four sides are run:
#   sequential   each side's RUNS runs in one `perfkit run`, one side after
#                the other (a baseline recorded earlier, as against a
#                committed file);
#   interleaved  RUNS rounds of `perfkit run --repeat 1 --append`, one per
#                side in turn, so a slow spell of the machine falls on every
#                side alike (as when CI builds and runs both commits);
#   against      what CI runs: `perfkit gate --against HEAD SCENARIO` per
#                candidate (this build against HEAD's, built once and cached;
#                the candidate's slowdown through --head-set), rounds until
#                the verdict is clear; RUNS is ignored, and THRESHOLD, when
#                given, overrides the scenario's [gate] for rx.bps and tx.bps
#                only. Build this tree with HEAD's stack for a true A/A.)
# Prints a Markdown table; needs a release build (cargo build --release), or
# the binary to study in PERFKIT_BIN.
set -euo pipefail
cd "$(dirname "$0")/.."
trials=${1:-20}
threshold=${2:-}
runs=${3:-}
scenario=${4:-scenarios/gate-loopback.toml}
protocol=${5:-sequential}
case "$protocol" in
  sequential) ;;
  interleaved) [ -n "$runs" ] || { echo "interleaved needs RUNS" >&2; exit 2; } ;;
  against) runs= ;;
  *) echo "PROTOCOL is sequential, interleaved or against, not $protocol" >&2; exit 2 ;;
esac
flags=()
if [ -n "$threshold" ]; then flags=(--threshold "rx.bps=$threshold" --threshold "tx.bps=$threshold"); fi
bin=${PERFKIT_BIN:-target/release/perfkit}
[ -x "$bin" ] || cargo build --release -q -p perfkit-harness
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

run() { # out-dir extra-args...
  local out=$1; shift
  local repeat=()
  if [ -n "$runs" ]; then repeat=(--runs "$runs"); fi
  "$bin" run "$scenario" --quiet --no-report --out "$out" "${repeat[@]}" "$@" >/dev/null
}
once() { # out-dir extra-args...: one more run appended to out-dir
  local out=$1; shift
  "$bin" run "$scenario" --quiet --no-report --out "$out" --runs 1 --append "$@" >/dev/null
}
gate() { # baseline candidate -> exit code
  "$bin" gate --baseline "$1/results.json" "$2/results.json" "${flags[@]}" >/dev/null 2>&1 && echo 0 || echo $?
}
against() { # log extra-args... -> exit code (the verdict and its power in the log)
  local log=$1; shift
  "$bin" gate --against HEAD "$scenario" --out "$work/against" "${flags[@]}" "$@" >"$log" 2>&1 && echo 0 || echo $?
}

# Per-packet time of this build on this machine, from one calibration run.
run "$work/cal"
per_packet_ns=$(python3 -c "
import json,statistics
r=json.load(open('$work/cal/results.json'))['runs']
print(int(statistics.median(x['tx']['seconds']/x['tx']['blocks'] for x in r)*1e9))")
echo "calibration: ${per_packet_ns} ns per packet" >&2

declare -A fail refused
for kind in aa s10 s25; do fail[$kind]=0; refused[$kind]=0; done
s10=(--set "slowdown_ns_per_packet=$(( per_packet_ns / 10 ))")
s25=(--set "slowdown_ns_per_packet=$(( per_packet_ns / 4 ))")
[ "$protocol" = against ] && "$bin" gate --against HEAD "$scenario" --build-only >/dev/null
for i in $(seq 1 "$trials"); do
  if [ "$protocol" = against ]; then
    for kind in aa s10 s25; do
      log="$work/$kind-$i.log"
      case "$kind" in
        aa) code=$(against "$log") ;;
        s10) code=$(against "$log" --head-set "${s10[1]}") ;;
        s25) code=$(against "$log" --head-set "${s25[1]}") ;;
      esac
      [ "$code" = 2 ] && refused[$kind]=$(( ${refused[$kind]} + 1 ))
      [ "$code" = 1 ] && fail[$kind]=$(( ${fail[$kind]} + 1 ))
      # Rounds, seconds and power of each verdict, for the record.
      echo "  $kind: exit $code; $(grep -h -m1 'rounds of' "$log"); $(grep -h -m1 '^power' "$log")" >&2
    done
    echo "trial $i/$trials: failed aa=${fail[aa]} s10=${fail[s10]} s25=${fail[s25]}; refused aa=${refused[aa]} s10=${refused[s10]} s25=${refused[s25]}" >&2
    continue
  fi
  if [ "$protocol" = sequential ]; then
    run "$work/base$i"
    run "$work/aa$i"
    run "$work/s10_$i" "${s10[@]}"
    run "$work/s25_$i" "${s25[@]}"
  else
    for _ in $(seq 1 "$runs"); do
      once "$work/base$i"
      once "$work/aa$i"
      once "$work/s10_$i" "${s10[@]}"
      once "$work/s25_$i" "${s25[@]}"
    done
  fi
  for kind in aa s10 s25; do
    case "$kind" in aa) c="$work/aa$i";; s10) c="$work/s10_$i";; s25) c="$work/s25_$i";; esac
    code=$(gate "$work/base$i" "$c")
    # Exit 2 here means the gate refused to judge (too noisy for the threshold).
    [ "$code" = 2 ] && refused[$kind]=$(( ${refused[$kind]} + 1 ))
    [ "$code" = 1 ] && fail[$kind]=$(( ${fail[$kind]} + 1 ))
  done
  echo "trial $i/$trials: failed aa=${fail[aa]} s10=${fail[s10]} s25=${fail[s25]}; refused aa=${refused[aa]} s10=${refused[s10]} s25=${refused[s25]}" >&2
done
echo "| candidate | trials | gate failed (exit 1) | refused (exit 2) | failure rate |"
echo "|---|---|---|---|---|"
for kind in aa s10 s25; do
  case "$kind" in aa) label="same build (A/A): false alarms";; s10) label="+10 % time per packet";; s25) label="+25 % time per packet";; esac
  echo "| $label | $trials | ${fail[$kind]} | ${refused[$kind]} | $(python3 -c "print(f'{${fail[$kind]}/$trials:.0%}')") |"
done
