#!/usr/bin/env bash
# ensure-postgres.sh: makes sure PostgreSQL answers on 127.0.0.1:5432; starts the installed
# cluster when it is down. Fails loudly when PostgreSQL is not installed at all.
set -euo pipefail
ready() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
ready && exit 0
if ! ls /etc/postgresql >/dev/null 2>&1; then
  echo "PostgreSQL is not installed (apt-get install postgresql)" >&2
  exit 1
fi
version=$(ls /etc/postgresql | sort -V | tail -1)
echo "starting PostgreSQL $version"
pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
for _ in $(seq 1 60); do ready && exit 0; sleep 0.5; done
echo "PostgreSQL did not come up on 127.0.0.1:5432" >&2
exit 1
