#!/usr/bin/env bash
# Run once by the postgres image on a new primary (docker-compose.yml mounts it into
# /docker-entrypoint-initdb.d): a role that may stream the WAL, and the pg_hba line that lets the
# replica's container connect for it. The password suits a laptop only.
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" <<SQL
CREATE ROLE replicator WITH LOGIN REPLICATION PASSWORD '${POSTGRES_REPLICATION_PASSWORD:-replicator}';
SQL
echo "host replication replicator all scram-sha-256" >> "$PGDATA/pg_hba.conf"
