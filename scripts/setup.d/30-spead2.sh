#!/usr/bin/env bash
# spead2 (PyPI) for the SPEAD interop tests and the `heaps` scenario's spead2
# side: a venv at build/venv with spead2 and numpy. Idempotent: does nothing
# when both already import.
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=build/venv
if [ ! -x "$venv/bin/python" ]; then
  mkdir -p build
  python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import spead2, spead2.send.asyncio, spead2.recv, numpy' >/dev/null 2>&1; then
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check spead2 numpy
fi
"$venv/bin/python" -c 'import spead2; print("spead2", spead2.__version__)'
