#!/usr/bin/env bash
# The PgOtelGateway demo, on a fresh Debian machine with the .NET SDK:
#   a throwaway PostgreSQL 15 (with some pgbench load), a throwaway Prometheus, a gateway and an agent on their
#   embedded defaults (only endpoints and folders set through PGOTEL_* variables), then what arrived: in
#   Prometheus (hot tier), in the gateway's admin API and counters, and as Parquet files (cold tier).
#
#   bash scripts/demo.sh [--seconds N] [--keep-running]
#
#   --seconds N       how long the agent scrapes before the summary (default 30)
#   --keep-running    leave everything running after the summary until Ctrl-C
set -euo pipefail

PGOTEL_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PGOTEL_ROOT
cd "$PGOTEL_ROOT"
seconds=30 keep_running=0
while [ $# -gt 0 ]; do
  case $1 in
    --seconds) seconds=$2; shift ;;
    --keep-running) keep_running=1 ;;
    -h | --help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

# shellcheck source=lib/services.sh
. "$PGOTEL_ROOT/scripts/lib/services.sh"
say() { printf '\n== %s\n' "$*"; }

say "installing what is missing"
svc_install
PGOTEL_RUN_DIR=$(mktemp -d /tmp/pgotel-demo.XXXXXX)
export PGOTEL_RUN_DIR
mkdir -p "$PGOTEL_RUN_DIR/logs" "$PGOTEL_RUN_DIR/pids"
: >"$PGOTEL_RUN_DIR/ports"
cleanup() {
  trap - EXIT INT TERM
  svc_kill agent
  svc_kill gateway
  svc_stop_all
  rm -rf "$PGOTEL_RUN_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "building (Release)"
dotnet build PgOtelGateway.sln -c Release -v quiet -nologo >/dev/null
bin() { echo "$PGOTEL_ROOT/src/$1/bin/Release/net10.0/PgOtelGateway.$1.dll"; }

PG_PORT=$(svc_free_port)
PROMETHEUS_PORT=$(svc_free_port)
GRPC_PORT=$(svc_free_port)
HTTP_PORT=$(svc_free_port)
GW_METRICS_PORT=$(svc_free_port)
GW_HEALTH_PORT=$(svc_free_port)
GW_ADMIN_PORT=$(svc_free_port)
AGENT_METRICS_PORT=$(svc_free_port)
AGENT_HEALTH_PORT=$(svc_free_port)
export PG_PORT PROMETHEUS_PORT

say "starting a throwaway PostgreSQL 15 on 127.0.0.1:$PG_PORT and Prometheus on 127.0.0.1:$PROMETHEUS_PORT"
mkdir -p "$PGOTEL_RUN_DIR/sock" && chown postgres:postgres "$PGOTEL_RUN_DIR/sock"
svc_setup_primary
svc_start prometheus
"$PGBIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres shop
"$PGBIN/pgbench" -i -s 2 -q -h 127.0.0.1 -p "$PG_PORT" -U postgres shop >"$PGOTEL_RUN_DIR/logs/pgbench-init.log" 2>&1
svc_spawn pgbench "$PGBIN/pgbench" -h 127.0.0.1 -p "$PG_PORT" -U postgres -c 2 -R 50 -T $((seconds + 60)) shop

say "starting the gateway (embedded defaults; OTLP on 127.0.0.1:$GRPC_PORT, hot tier to Prometheus, cold tier to $PGOTEL_RUN_DIR/cold)"
# The gateway keeps its durable queue and cold-tier staging under its working directory (./data): the run directory.
svc_spawn gateway env -C "$PGOTEL_RUN_DIR" \
  PGOTEL_COLD_DIR="$PGOTEL_RUN_DIR/cold" PGOTEL_COLD_FILE_MAX_AGE=10s \
  PGOTEL_OTLP_GRPC_ENDPOINT="127.0.0.1:$GRPC_PORT" PGOTEL_OTLP_HTTP_ENDPOINT="127.0.0.1:$HTTP_PORT" \
  PGOTEL_METRICS_ENDPOINT="127.0.0.1:$GW_METRICS_PORT" PGOTEL_HEALTH_ENDPOINT="127.0.0.1:$GW_HEALTH_PORT" \
  PGOTEL_ADMIN_ENDPOINT="127.0.0.1:$GW_ADMIN_PORT" PGOTEL_REMOTE_WRITE_URL="http://127.0.0.1:$PROMETHEUS_PORT/api/v1/write" \
  dotnet "$(bin Gateway)"
svc_wait_for gateway 60 curl -fsS "http://127.0.0.1:$GW_HEALTH_PORT/ready"

say "starting the agent (embedded defaults; scraping 127.0.0.1:$PG_PORT every 5 s as pgotel_monitor)"
svc_spawn agent env \
  PGOTEL_PG_ENDPOINT="127.0.0.1:$PG_PORT" PGOTEL_PG_USER=pgotel_monitor PGOTEL_PG_PASSWORD="$PG_MONITOR_PASSWORD" \
  PGOTEL_COLLECTION_INTERVAL=5s PGOTEL_CLUSTER=demo PGOTEL_GATEWAY_ENDPOINT="127.0.0.1:$GRPC_PORT" \
  PGOTEL_METRICS_ENDPOINT="127.0.0.1:$AGENT_METRICS_PORT" PGOTEL_HEALTH_ENDPOINT="127.0.0.1:$AGENT_HEALTH_PORT" \
  dotnet "$(bin Agent)"
svc_wait_for agent 60 curl -fsS "http://127.0.0.1:$AGENT_HEALTH_PORT/ready"

say "collecting for ${seconds}s while pgbench runs"
for ((i = seconds; i > 0; i -= 5)); do
  accepted=$(curl -fsS "http://127.0.0.1:$GW_METRICS_PORT/metrics" | awk '/^pgotel_receiver_accepted_points_total/ {s += $NF} END {print s + 0}')
  printf '  %3ss left: the gateway has accepted %s data points\n' "$i" "$accepted"
  sleep 5
done

query() { curl -fsS --get "http://127.0.0.1:$PROMETHEUS_PORT/api/v1/query" --data-urlencode "query=$1"; }
say "what arrived in Prometheus"
python3 - "$PROMETHEUS_PORT" <<'PY'
import json, sys, urllib.parse, urllib.request
base = f"http://127.0.0.1:{sys.argv[1]}/api/v1/"
def get(path):
    with urllib.request.urlopen(base + path) as r:
        return json.load(r)["data"]
def query(q):
    return get("query?" + urllib.parse.urlencode({"query": q}))["result"]
names = [n for n in get("label/__name__/values") if n.startswith("postgresql_")]
series = query('count({__name__=~"postgresql_.+"})')
print(f"  {len(names)} PostgreSQL metric names, {series[0]['value'][1] if series else 0} series, for example:")
for q, label in [
    ('postgresql_database_size_bytes{database_name="shop"}', "size of database shop (bytes)"),
    ('postgresql_table_rows{table_name="pgbench_accounts"}', "rows in pgbench_accounts"),
    ('sum(rate(postgresql_database_transactions_total{database_name="shop"}[30s]))', "transactions per second in shop"),
    ('postgresql_cache_hit_ratio{database_name="shop"}', "cache hit ratio of shop"),
    ('sum(postgresql_database_connections{database_name="shop"})', "connections to shop (every state)"),
    ('postgresql_up', "postgresql_up"),
]:
    r = query(q)
    values = [float(s["value"][1]) for s in r]
    shown = f"{sum(values):,.2f}" if values else "(none yet)"
    print(f"  {label:40} {shown}")
info = query('target_info{job="postgresql"}')
if info:
    labels = {k: v for k, v in info[0]["metric"].items() if k.startswith("db_") or k in ("instance", "job")}
    print(f"  resource of the instance: {labels}")
PY

say "the gateway's admin API (pgotel-gateway admin … --url http://127.0.0.1:$GW_ADMIN_PORT)"
for view in status instances exporters; do
  dotnet "$(bin Gateway)" admin "$view" --url "http://127.0.0.1:$GW_ADMIN_PORT" | sed 's/^/  /'
done

say "the gateway's own counters"
curl -fsS "http://127.0.0.1:$GW_METRICS_PORT/metrics" | grep -E '^pgotel_(receiver_accepted|exporter_sent|exporter_dropped|receiver_refused_requests)' | sed 's/^/  /' || true

say "the cold tier: Parquet files the gateway wrote to $PGOTEL_RUN_DIR/cold (one per minute partition and 10 s)"
if [ -d "$PGOTEL_RUN_DIR/cold" ]; then
  (cd "$PGOTEL_RUN_DIR/cold" && find . -name '*.parquet' -printf '%s %p\n' | sort -k2 | tail -n 8 |
    awk '{printf "  %8d bytes  %s\n", $1, $2} END {if (NR == 0) print "  (no file yet)"}')
  printf '  %s files, %s bytes in all\n' "$(find "$PGOTEL_RUN_DIR/cold" -name '*.parquet' | wc -l)" \
    "$(find "$PGOTEL_RUN_DIR/cold" -name '*.parquet' -printf '%s\n' | awk '{s += $1} END {print s + 0}')"
else
  echo "  (no file yet)"
fi

if [ "$keep_running" = 1 ]; then
  say "everything keeps running: Prometheus http://127.0.0.1:$PROMETHEUS_PORT, gateway OTLP 127.0.0.1:$GRPC_PORT, status page http://127.0.0.1:$GW_ADMIN_PORT/; Ctrl-C stops it"
  while true; do sleep 3600; done
fi
say "done; stopping everything"
