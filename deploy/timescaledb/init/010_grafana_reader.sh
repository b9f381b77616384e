#!/bin/sh
# A read-only login for Grafana's TimescaleDB data source: SELECT on spcmon's tables and
# views, present and future, nothing else. Run by the timescaledb image on the first
# start of an empty data directory (mounted into /docker-entrypoint-initdb.d by
# deploy/compose.yaml); for an existing database run it once by hand:
#
#   docker compose exec -T timescaledb sh < timescaledb/init/010_grafana_reader.sh
#
# Needs GRAFANA_DB_PASSWORD, POSTGRES_USER (the role that owns spcmon's tables: it runs
# the migrations) and POSTGRES_DB. Safe to run again: it sets the password anew.
set -eu

: "${GRAFANA_DB_PASSWORD:?set GRAFANA_DB_PASSWORD (deploy/.env)}"
: "${POSTGRES_USER:?}"
: "${POSTGRES_DB:?}"

psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v reader=grafana_reader \
    -v reader_password="$GRAFANA_DB_PASSWORD" \
    -v owner="$POSTGRES_USER" \
    -v database="$POSTGRES_DB" <<'SQL'
SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'reader') AS missing \gset
\if :missing
CREATE ROLE :"reader" LOGIN;
\endif
ALTER ROLE :"reader" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'reader_password';
-- dashboards must not hold locks or run away: a panel query is cut after 30 s
ALTER ROLE :"reader" SET statement_timeout = '30s';
ALTER ROLE :"reader" SET default_transaction_read_only = on;
GRANT CONNECT ON DATABASE :"database" TO :"reader";
GRANT USAGE ON SCHEMA public TO :"reader";
GRANT SELECT ON ALL TABLES IN SCHEMA public TO :"reader";
-- the tables and views the service's migrations create later, as their owner
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public GRANT SELECT ON TABLES TO :"reader";
SQL
