#!/usr/bin/env bash
# Debian's PostgreSQL server, for the history store's tests against a real
# server (scripts/pg.sh starts a throwaway cluster in build/ from it).
set -euo pipefail
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends postgresql
fi
