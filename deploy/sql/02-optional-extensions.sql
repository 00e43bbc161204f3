-- Optional: pg_stat_kcache (OS-level CPU and I/O per statement). Run as a superuser in the agent's
-- statements_database (default postgres), after 01-monitoring-role.sql:
--   psql -d postgres -f 02-optional-extensions.sql
-- It does something only when the package is installed AND pg_stat_kcache is in shared_preload_libraries
-- after pg_stat_statements (it depends on it); otherwise it changes nothing and succeeds, because the agent does
-- not need it (custom queries may use it). The reference's unconditional GRANT fails on servers without it.
\set ON_ERROR_STOP on

SELECT 'CREATE EXTENSION IF NOT EXISTS pg_stat_kcache'
WHERE EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_stat_kcache')
  AND EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements')
  AND current_setting('shared_preload_libraries') ~ '(^|[\s,])pg_stat_kcache($|[\s,])' \gexec

SELECT 'GRANT SELECT ON pg_stat_kcache TO pgotel_monitor'
WHERE EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_kcache') \gexec
