#!/bin/sh
# Applies Bookworm's reference settings to a pg_auto_failover monitor or data node.
# Run it as the postgres OS user after `pg_autoctl create …`, with pg_autoctl and
# pg_ctl on PATH and the same XDG_CONFIG_HOME as pg_autoctl:
#
#   deploy/pg_auto_failover/apply.sh monitor /var/lib/postgresql/monitor
#   deploy/pg_auto_failover/apply.sh node    /var/lib/postgresql/node
#
# It is safe to run again; a running server reloads its settings, a running keeper
# picks up its own.
set -eu

usage() { echo "usage: $0 monitor|node PGDATA" >&2; exit 2; }
[ $# -eq 2 ] || usage
role=$1
pgdata=$2
here=$(cd "$(dirname "$0")" && pwd)
case $role in
  monitor) conf=monitor.conf ;;
  node) conf=node.conf ;;
  *) usage ;;
esac

cp "$here/$conf" "$pgdata/bookworm.conf"
grep -qx "include 'bookworm.conf'" "$pgdata/postgresql.conf" ||
  echo "include 'bookworm.conf'" >>"$pgdata/postgresql.conf"

if [ "$role" = node ]; then
  grep -Ev '^[[:space:]]*(#|$)' "$here/keeper.conf" | while IFS='= ' read -r key value; do
    pg_autoctl config set --pgdata "$pgdata" "$key" "$value" >/dev/null
  done
fi

if pg_ctl status -D "$pgdata" >/dev/null 2>&1; then
  pg_ctl reload -D "$pgdata" >/dev/null
fi
