-- Optional: pg_stat_kcache (OS-level CPU and I/O per statement). Only if the package is installed and listed in
-- shared_preload_libraries after pg_stat_statements. The agent does not need it; custom queries may use it.
\set ON_ERROR_STOP on
SELECT 'CREATE EXTENSION IF NOT EXISTS pg_stat_kcache'
WHERE EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_stat_kcache') \gexec
