# Sourced by scripts/test.sh and .ci/run: where the installed test tools live.
PERFKIT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PERFKIT_ROOT
if [ -x "$PERFKIT_ROOT/build/venv/bin/python" ]; then
  export PATH="$PERFKIT_ROOT/build/venv/bin:$PATH"
fi
