#!/bin/sh
# Run once by the postgres image on an empty data directory (/docker-entrypoint-initdb.d):
# the three roles of deploy/README.md ("Database roles") and a `lineage` database owned by
# the owner. Passwords come from the environment (compose.yaml passes them from .env); psql
# quotes them (:'var'), so no password is spliced into SQL text by the shell.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v owner_pw="$LINEAGE_OWNER_PASSWORD" -v app_pw="$LINEAGE_APP_PASSWORD" -v reader_pw="$LINEAGE_READER_PASSWORD" <<'SQL'
CREATE ROLE lineage_owner  LOGIN PASSWORD :'owner_pw'  NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
CREATE ROLE lineage_app    LOGIN PASSWORD :'app_pw'    NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
CREATE ROLE lineage_reader LOGIN PASSWORD :'reader_pw' NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
CREATE DATABASE lineage OWNER lineage_owner;
SQL
