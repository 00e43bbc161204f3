#!/bin/sh
# Runs once when the postgres container initialises its data directory: the monitoring role from deploy/sql,
# with the password from the compose secret.
set -eu
psql -v ON_ERROR_STOP=1 -U postgres -d postgres \
  -v monitor_password="$(cat /run/secrets/pg_monitor_password)" -f /pgotel-sql/01-monitoring-role.sql
# pg_stat_kcache only where it is installed and preloaded; a no-op otherwise.
psql -v ON_ERROR_STOP=1 -U postgres -d postgres -f /pgotel-sql/02-optional-extensions.sql
