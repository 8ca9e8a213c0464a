#!/usr/bin/env bash
# Starts a throwaway PostgreSQL server on 127.0.0.1:$PGPORT (installing Debian's package if needed)
# and prints its SQLAlchemy URL. Stop it with: .ci/postgres.sh stop
set -euo pipefail
PGPORT=${PGPORT:-55432}
ROOT=${PG_ROOT:-/tmp/tierserve-ci-postgres}
if [ "${1:-}" = "stop" ]; then
  bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  su postgres -c "$bin/pg_ctl -D $ROOT/data -m fast stop" >/dev/null 2>&1 || true
  exit 0
fi
if ! ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1; then
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >&2
fi
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
rm -rf "$ROOT" && mkdir -p "$ROOT" && chown postgres "$ROOT"
su postgres -c "$bin/initdb -D $ROOT/data -A trust -U postgres" >/dev/null
su postgres -c "$bin/pg_ctl -D $ROOT/data -w -l $ROOT/log -o '-p $PGPORT -k $ROOT -c listen_addresses=127.0.0.1' start" >/dev/null
su postgres -c "$bin/createdb -h 127.0.0.1 -p $PGPORT tierserve_test"
echo "postgresql+psycopg://postgres@127.0.0.1:$PGPORT/tierserve_test"
