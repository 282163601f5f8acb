# Sourced by scripts/test.sh, its steps and .ci/run: where the installed test
# tools live, and the one feature set the tests, clippy and doc build with.
PERFKIT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PERFKIT_ROOT
if [ -x "$PERFKIT_ROOT/build/venv/bin/python" ]; then
  export PATH="$PERFKIT_ROOT/build/venv/bin:$PATH"
fi
# perfkit-pico's `probe` feature (flashing and RTT through probe-rs) is off
# by default; every cargo command of the test command and CI takes it
# (`--features "$PERFKIT_FEATURES"`), so the hardware path cannot rot and
# nothing is built twice: another feature set, or -p, resolves features anew
# and compiles dozens of crates again (1-4 minutes on a 2-vCPU runner).
PERFKIT_FEATURES="perfkit-pico/probe"
export PERFKIT_FEATURES
