-- The monitoring role the PgOtelGateway agent connects as. Run as a superuser, once per cluster:
--   psql -v monitor_password="$(cat /run/secrets/pg_monitor_password)" -f 01-monitoring-role.sql
-- Differences from the reference set-up, and why:
--   * pg_monitor already includes pg_read_all_stats, pg_read_all_settings and pg_stat_scan_tables, and
--     covers pg_stat_replication, pg_stat_activity and pg_stat_statements for every user's rows; blanket
--     "GRANT SELECT ON ALL TABLES IN SCHEMA pg_catalog" is not needed and grants far more than monitoring.
--   * "GRANT SELECT ON pg_stat_statements" fails unless the extension exists: the extension is created first,
--     then the grant (pg_monitor already lets the role see every user's statements; the grant keeps working
--     where PUBLIC's SELECT on the view was revoked). pg_stat_kcache is optional: 02-optional-extensions.sql.
--   * "GRANT SELECT ON pg_stat_replication" is not needed: it is a view readable by everyone, and pg_monitor
--     shows the other sessions' columns.
--   * The CONNECTION LIMIT leaves room above the agent's own cap (connection_pool.max_open_conns, default 5),
--     so a restart overlapping the old process cannot lock the agent out.

\set ON_ERROR_STOP on

SELECT format('CREATE ROLE pgotel_monitor WITH LOGIN PASSWORD %L CONNECTION LIMIT 10', :'monitor_password')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'pgotel_monitor') \gexec

-- Keep the password and limit current when the role already exists.
SELECT format('ALTER ROLE pgotel_monitor WITH LOGIN PASSWORD %L CONNECTION LIMIT 10', :'monitor_password') \gexec

GRANT pg_monitor TO pgotel_monitor;

-- Every current database: allow connecting (PUBLIC usually has CONNECT; this makes it explicit when it was revoked).
SELECT format('GRANT CONNECT ON DATABASE %I TO pgotel_monitor', datname)
FROM pg_database WHERE datallowconn \gexec

-- pg_stat_statements needs shared_preload_libraries = 'pg_stat_statements' and a restart; the extension itself
-- lives in one database: the agent's statements_database (default postgres), where this script runs.
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
GRANT SELECT ON pg_stat_statements TO pgotel_monitor;

-- Stop runaway monitoring queries server-side as well as in the agent.
ALTER ROLE pgotel_monitor SET statement_timeout = '5s';
ALTER ROLE pgotel_monitor SET lock_timeout = '1s';
ALTER ROLE pgotel_monitor SET idle_in_transaction_session_timeout = '30s';
