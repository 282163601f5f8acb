#!/usr/bin/env bash
# A throwaway PostgreSQL cluster in build/pg, on a Unix socket only (no TCP
# port), for the history store's tests:
#   bash scripts/pg.sh start   # initdb (once) and start; idempotent
#   bash scripts/pg.sh url     # the connection URL the tests use
#   bash scripts/pg.sh stop    # stop it (the files stay for the next start)
# The server refuses to run as root; as root the cluster belongs to the
# `postgres` user that Debian's package creates.
set -euo pipefail
cd "$(dirname "$0")/.."
dir="$PWD/build/pg"
bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
[ -n "$bin" ] || { echo "pg.sh: PostgreSQL is not installed (scripts/setup.d/50-postgresql.sh)" >&2; exit 2; }
as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
case "${1:-}" in
  start)
    mkdir -p "$dir/sock"
    [ "$(id -u)" = 0 ] && chown -R postgres: "$dir"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      as_owner "$bin/initdb" -D "$dir/data" -U perfkit -A trust --no-sync -E UTF8 >"$dir/initdb.log"
    fi
    if ! as_owner "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
      # fsync off: the cluster is thrown away; speed matters, durability not.
      as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -s \
        -o "-k $dir/sock -c listen_addresses= -c fsync=off -c full_page_writes=off" start
    fi
    ;;
  stop)
    if [ -f "$dir/data/PG_VERSION" ]; then
      as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w -s stop 2>/dev/null || true
    fi
    ;;
  url)
    echo "postgresql:///postgres?host=$dir/sock&user=perfkit"
    ;;
  *)
    echo "usage: scripts/pg.sh start|stop|url" >&2
    exit 2
    ;;
esac
