#!/usr/bin/env bash
# spead2 (PyPI) for the SPEAD interop tests and the `heaps` scenario's spead2
# side: a venv at build/venv with spead2 and numpy. Idempotent: does nothing
# when both already import.
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=build/venv
if [ ! -x "$venv/bin/python" ]; then
  mkdir -p build
  if ! python3 -m venv "$venv"; then
    # Debian's python3 keeps venv (ensurepip) in a separate package.
    rm -rf "$venv"
    if ! dpkg -s python3-venv >/dev/null 2>&1; then
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq
      apt-get install -y -qq --no-install-recommends python3-venv
    fi
    python3 -m venv "$venv"
  fi
fi
if ! "$venv/bin/python" -c 'import spead2, spead2.send.asyncio, spead2.recv, numpy' >/dev/null 2>&1; then
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check spead2 numpy
fi
"$venv/bin/python" -c 'import spead2; print("spead2", spead2.__version__)'
