#!/usr/bin/env bash
# Makes sure a PostgreSQL answers on 127.0.0.1:5432 for the tests of the
# PostgreSQL store, and prints the URL they connect with (each test makes
# a database of its own there). HERALD_TEST_DATABASE_URL, when set, is
# used as it is. A machine of the go-svc kind runs one already, with trust
# auth for local TCP; elsewhere Debian's postgresql is installed and
# started, and the postgres role given a password for the tests.
set -euo pipefail

if [ -n "${HERALD_TEST_DATABASE_URL:-}" ]; then
  echo "$HERALD_TEST_DATABASE_URL"
  exit 0
fi
trust="postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
with_password="postgres://postgres:herald-tests@127.0.0.1:5432/postgres?sslmode=disable"

sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo
if ! command -v pg_isready >/dev/null; then
  echo "installing postgresql with apt-get" >&2
  $sudo apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q postgresql >&2
fi
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  echo "starting PostgreSQL" >&2
  for version in /etc/postgresql/*; do
    $sudo pg_ctlcluster "$(basename "$version")" main start >&2 || true
  done
  for _ in $(seq 1 30); do
    pg_isready -q -h 127.0.0.1 -p 5432 && break
    sleep 1
  done
fi
pg_isready -q -h 127.0.0.1 -p 5432 || { echo "PostgreSQL does not answer on 127.0.0.1:5432" >&2; exit 1; }

for url in "$trust" "$with_password"; do
  if psql "$url" -qAtc 'select 1' >/dev/null 2>&1; then
    echo "$url"
    exit 0
  fi
done
# A new installation asks for passwords on TCP: give the postgres role one.
as_postgres=(sudo -u postgres)
[ "$(id -u)" = 0 ] && as_postgres=(runuser -u postgres --)
"${as_postgres[@]}" psql -qc "ALTER ROLE postgres PASSWORD 'herald-tests'" >&2
echo "$with_password"
