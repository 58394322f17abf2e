#!/usr/bin/env bash
# Creates the database of every Flotilla service, owned by POSTGRES_USER.
#
# Mounted into the postgres container under /docker-entrypoint-initdb.d/, it runs once,
# when the data directory is first initialised. It is idempotent: a database that already
# exists is left alone, so it can also be run again by hand against a running server
# (with the usual PGHOST/PGPORT/PGPASSWORD variables).
set -euo pipefail

: "${POSTGRES_USER:?POSTGRES_USER must be set}"
maintenance_db="${POSTGRES_DB:-$POSTGRES_USER}"

databases=(
    flotilla_auth
    flotilla_events
    flotilla_tickets
    flotilla_activity
    flotilla_media
    flotilla_datapoints
    flotilla_scheduler
)

for database in "${databases[@]}"; do
    # CREATE DATABASE cannot run inside a transaction or a DO block, hence \gexec:
    # the statement is produced (quoted with %I) only when the database is missing.
    psql --no-psqlrc --no-password --set ON_ERROR_STOP=1 \
        --username "$POSTGRES_USER" --dbname "$maintenance_db" \
        --set database="$database" --set owner="$POSTGRES_USER" <<'SQL'
SELECT format('CREATE DATABASE %I OWNER %I', :'database', :'owner')
WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_database WHERE datname = :'database')
\gexec
SQL
    echo "postgres-init: database ${database} is ready (owner ${POSTGRES_USER})"
done
