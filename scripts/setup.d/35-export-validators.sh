#!/usr/bin/env bash
# The history exports' validators (scripts/validate-export.py): Prometheus'
# prometheus_client (its OpenMetrics parser) and jsonschema, from PyPI into
# build/venv (made by 30-spead2.sh). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=build/venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
if ! "$venv/bin/python" -c 'import prometheus_client.openmetrics.parser, jsonschema' >/dev/null 2>&1; then
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check prometheus_client jsonschema
fi
