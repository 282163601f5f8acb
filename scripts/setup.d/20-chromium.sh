#!/usr/bin/env bash
# Headless Chromium for the report's real-browser test
# (crates/report/tests/browser.rs). Debian's `chromium` package; idempotent.
set -euo pipefail
if dpkg -s chromium >/dev/null 2>&1 && command -v chromium >/dev/null 2>&1; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core
