#!/bin/bash
# worker-entrypoint.sh: run PostgreSQL 15 with the vectron extension as a
# Vectron worker (or metadata) node.  On first start it creates the cluster
# in $PGDATA, sets what workers need (logical WAL for shard moves,
# client_connection_check_interval so abandoned queries end), and requires
# password authentication from the network:
#   VECTRON_PG_PASSWORD   password of the postgres role (required)
#   VECTRON_PG_CONF       extra postgresql.conf lines (optional)
set -euo pipefail
bindir=/usr/lib/postgresql/15/bin
: "${PGDATA:=/var/lib/vectron/data}"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -z "${VECTRON_PG_PASSWORD:-}" ]; then
    echo "worker-entrypoint: set VECTRON_PG_PASSWORD" >&2
    exit 1
  fi
  mkdir -p "$PGDATA"
  chown postgres:postgres "$PGDATA" "$(dirname "$PGDATA")"
  chmod 700 "$PGDATA"
  pwfile=$(mktemp)
  printf '%s\n' "$VECTRON_PG_PASSWORD" > "$pwfile"
  chown postgres "$pwfile"
  runuser -u postgres -- "$bindir/initdb" -D "$PGDATA" -U postgres --pwfile="$pwfile" \
    -A scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
  rm -f "$pwfile"
  cat >> "$PGDATA/postgresql.conf" <<CONF
listen_addresses = '*'
max_connections = 300
shared_buffers = 256MB
maintenance_work_mem = 1GB
wal_level = logical
max_replication_slots = 16
max_wal_senders = 16
client_connection_check_interval = 1000
${VECTRON_PG_CONF:-}
CONF
  cat >> "$PGDATA/pg_hba.conf" <<HBA
host all         all 0.0.0.0/0 scram-sha-256
host all         all ::/0      scram-sha-256
host replication all 0.0.0.0/0 scram-sha-256
HBA
fi
chown -R postgres:postgres "$PGDATA"
exec runuser -u postgres -- "$bindir/postgres" -D "$PGDATA"
