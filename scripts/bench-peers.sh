#!/usr/bin/env bash
# Side-by-side runs against the peers a user would pick instead, both sides on this machine in one run,
# alternating within each round, repeated rounds, ratios at the end (issue 8):
#
#   agent:   our agent vs prometheus-postgres-exporter 0.11 on one PostgreSQL 15 with D databases × T tables
#            (each with a primary key and a second index) and pgbench tables in db01. Per side: wall time per
#            scrape, CPU seconds per scrape (collector process + all PostgreSQL processes, from /proc, minus the
#            idle baseline), new PostgreSQL connections per scrape (log_connections), series per scrape; then
#            pgbench TPS with each scraping every interval against none.
#   gateway: our gateway (OTLP/gRPC in, with and without the dedupe processor) vs vmagent 1.79 (remote write in),
#            the same series at the same rate (tests/LoadGen, both protocols) into one real Prometheus. Per side:
#            CPU seconds per million samples appended by Prometheus, peak RSS over the window (VmHWM after a reset at its start), refusals, latency.
#
#   bash scripts/bench-peers.sh [--part agent|gateway|all] [--rounds 3] [--seconds 60] [--rate 70000]
#        [--scrapes 6] [--interval 10] [--pgbench-seconds 60] [--databases 20] [--tables 500]
#        [--agent-pools "25 5"] [--exporter-mode tables|default] [--dedup auto|on|off] [--concurrency 16]
#        [--warmup-scrapes 3] [--warmup-seconds 15] [--gateway-env "VAR=value ..."] [--agent-env "VAR=value ..."]
#        [--gateway-build r2r|jit] [--profile] [--quick] [--no-build] [--keep] [--write-docs]
#
# --gateway-build: r2r (default) runs the gateway as it ships, published ReadyToRun; jit runs the plain build output.
# --quick is a smoke run (1 round, short windows, smaller database set); the defaults are the measurement.
# --dedup auto runs "gateway + dedupe" only when this checkout's gateway has the dedupe processor.
# --profile records dotnet-counters (allocation, GC, JIT) over each agent and gateway window, and after the rounds
# a dotnet-trace CPU sample (collect-linux cpu-sampling) of the agent over two scrapes and of the gateway for 20 s
# under the same load, reported as the top methods by inclusive time (profile-*.txt in the run directory).
# Results: the printed summary, and $PGOTEL_RUN_DIR/results.tsv (kept with --keep).
set -euo pipefail
PGOTEL_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PGOTEL_ROOT
cd "$PGOTEL_ROOT"

part=all rounds=3 seconds=60 rate=70000 scrapes=6 interval=10 pgbench_seconds=60 databases=20 tables=500
agent_pools="25 5" exporter_mode=tables dedup=auto build=1 write_docs=0 keep=0 instances=50 concurrency=16 profile=0 gateway_build=r2r gateway_env="" agent_env="" warmup_scrapes=3 warmup_seconds=15
while [ $# -gt 0 ]; do
  case $1 in
    --part) part=$2; shift ;;
    --rounds) rounds=$2; shift ;;
    --seconds) seconds=$2; shift ;;
    --rate) rate=$2; shift ;;
    --scrapes) scrapes=$2; shift ;;
    --interval) interval=$2; shift ;;
    --pgbench-seconds) pgbench_seconds=$2; shift ;;
    --databases) databases=$2; shift ;;
    --tables) tables=$2; shift ;;
    --agent-pools) agent_pools=$2; shift ;;
    --exporter-mode) exporter_mode=$2; shift ;;
    --dedup) dedup=$2; shift ;;
    --instances) instances=$2; shift ;;
    --concurrency) concurrency=$2; shift ;;
    --gateway-env) gateway_env=$2; shift ;;
    --gateway-build) gateway_build=$2; shift ;;
    --agent-env) agent_env=$2; shift ;;
    --warmup-scrapes) warmup_scrapes=$2; shift ;;
    --warmup-seconds) warmup_seconds=$2; shift ;;
    --quick) rounds=1 seconds=15 scrapes=3 pgbench_seconds=20 databases=4 tables=100 rate=20000 ;;
    --no-build) build=0 ;;
    --write-docs) write_docs=1 ;;
    --keep) keep=1 ;;
    --profile) profile=1 ;;
    -h | --help) sed -n '2,27p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
case $part in agent | gateway | all) ;; *) echo "--part must be agent, gateway or all" >&2; exit 2 ;; esac

# shellcheck source=lib/services.sh
. "$PGOTEL_ROOT/scripts/lib/services.sh"
svc_install
if ! command -v vmagent >/dev/null && [ "$part" != agent ]; then
  svc_log "installing victoria-metrics (vmagent)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends victoria-metrics >/dev/null
fi
PGOTEL_RUN_DIR=$(mktemp -d /tmp/pgotel-peers.XXXXXX)
export PGOTEL_RUN_DIR
RUN=$PGOTEL_RUN_DIR
mkdir -p "$RUN/logs" "$RUN/pids"
: >"$RUN/ports"
RESULTS=$RUN/results.tsv
: >"$RESULTS"
cleanup() {
  local name
  for f in "$RUN"/pids/*.pid; do
    [ -e "$f" ] || continue
    name=$(basename "$f" .pid)
    svc_kill "$name"
  done
  svc_stop_all
  if [ "$keep" = 1 ]; then echo "kept $RUN" >&2; else rm -rf "$RUN"; fi
}
trap cleanup EXIT

AGENT_DLL=$PGOTEL_ROOT/src/Agent/bin/Release/net10.0/PgOtelGateway.Agent.dll
LOADGEN_DLL=$PGOTEL_ROOT/tests/LoadGen/bin/Release/net10.0/pgotel-loadgen.dll
if [ "$build" = 1 ]; then
  for p in src/Agent tests/LoadGen; do
    dotnet build "$p" -c Release -v quiet -nologo >/dev/null
  done
fi
# shellcheck source=lib/gateway-build.sh
. "$PGOTEL_ROOT/scripts/lib/gateway-build.sh"
gateway_build "$gateway_build" "$build"

TICKS=$(getconf CLK_TCK)
record() { printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" >>"$RESULTS"; } # part round side key value
say() { printf '[bench-peers %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

# CPU seconds (user + system) of one process.
proc_cpu() { sed 's/^.*) //' "/proc/$1/stat" | awk -v t="$TICKS" '{printf "%.4f\n", ($12 + $13) / t}'; }
# Peak RSS in MiB.
proc_hwm() { awk '/VmHWM/ {printf "%.1f\n", $2 / 1024}' "/proc/$1/status"; }
# CPU seconds of the whole PostgreSQL cluster: the postmaster, every live child, and every child that has exited
# (the postmaster's cutime/cstime), so short-lived backends are counted too.
pg_cpu() {
  local pm total
  pm=$(head -1 "$RUN/pg-primary/postmaster.pid")
  total=$(sed 's/^.*) //' "/proc/$pm/stat" | awk -v t="$TICKS" '{printf "%.4f", ($12 + $13 + $14 + $15) / t}')
  for c in $(pgrep -P "$pm"); do
    total=$(awk -v a="$total" -v b="$(proc_cpu "$c" 2>/dev/null || echo 0)" 'BEGIN {printf "%.4f", a + b}')
  done
  echo "$total"
}
calc() { python3 -c "print($1)"; }
# Starts a service with NAME_once, again on fresh ports when it did not come up (another process on this busy
# machine may take a port between svc_free_port and the bind).
start_retrying() { # name function args...
  local name=$1 attempt
  shift
  for attempt in 1 2 3; do
    if "$@"; then return 0; fi
    svc_kill "$name"
    say "$name did not start (attempt $attempt of 3)"
  done
  return 1
}
start_sink() { start_retrying sink start_sink_once; }
start_agent() { start_retrying agent start_agent_once "$@"; }
start_exporter() { start_retrying exporter start_exporter_once; }
start_gateway() { start_retrying side start_gateway_once "$@"; }
start_vmagent() { start_retrying side start_vmagent_once; }
# Waits for a background process that is not this shell's child.
wait_gone() { while kill -0 "$1" 2>/dev/null; do sleep 0.5; done; }
TOOLS=$HOME/.dotnet/tools
if [ "$profile" = 1 ]; then
  [ -x "$TOOLS/dotnet-counters" ] || dotnet tool install --global dotnet-counters >/dev/null
  [ -x "$TOOLS/dotnet-trace" ] || dotnet tool install --global dotnet-trace >/dev/null
fi
# dotnet-counters over SECONDS (≤ 59) in the background; prints the collector's pid.
counters_start() { # pid seconds csv
  "$TOOLS/dotnet-counters" collect -p "$1" --counters System.Runtime --format csv -o "$3" \
    --duration "00:00:$(printf %02d $(($2 > 59 ? 59 : $2)))" >/dev/null 2>&1 &
  echo $!
}
# A CPU sample of one process; writes the top methods by inclusive time to $RUN/profile-NAME.txt.
profile_cpu() { # pid seconds name
  local trace=$RUN/$3.nettrace
  (cd "$RUN" && timeout $(($2 + 120)) "$TOOLS/dotnet-trace" collect-linux -p "$1" --profile cpu-sampling \
    --duration "00:00:$(printf %02d "$2")" -o "$trace" >"$RUN/logs/trace-$3.log" 2>&1) ||
    (cd "$RUN" && timeout $(($2 + 120)) "$TOOLS/dotnet-trace" collect -p "$1" --profile dotnet-sampled-thread-time \
      --duration "00:00:$(printf %02d "$2")" -o "$trace" >>"$RUN/logs/trace-$3.log" 2>&1) || true
  if [ -s "$trace" ]; then
    # Exclusive time is not attributed by this report for kernel samples; inclusive time is, so the list shows
    # where the time goes (runtime native code = GC and JIT, then our methods).
    "$TOOLS/dotnet-trace" report "$trace" topN -n 70 --inclusive 2>/dev/null |
      grep -Ev 'vmlinux!|libc\.so|Non-Activities|Threads  |EventName|EventData|start_thread|__clone|Missing Symbol|AsyncMethodBuilderCore|ExecutionContext|ThreadPoolWorkQueue|AsyncTaskMethodBuilder|WorkerThread' |
      head -30 >"$RUN/profile-$3.txt" || true
  fi
}
metric_sum() { # url, metric name regex: sum of matching samples
  { curl -fsS "$1" 2>/dev/null || true; } | awk -v re="^$2" '$0 ~ re {s += $NF} END {printf "%.0f\n", s + 0}'
}
psql_q() { "$PGBIN/psql" -X -q -tA -h 127.0.0.1 -p "$PG_PORT" -U postgres -d "${2:-postgres}" -c "$1"; }
conn_count() { grep -c "connection authorized: user=$1 " "$RUN/logs/postgres-primary.log" || true; }
# PostgreSQL sessions a collector holds open between scrapes (what it takes from max_connections).
sessions_held() { psql_q "SELECT count(*) FROM pg_stat_activity WHERE usename = '$1'"; }

echo "machine: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), load $(cut -d' ' -f1-3 /proc/loadavg), .NET SDK $(dotnet --version)" | tee "$RUN/machine.txt"
{
  echo "versions: $(prometheus-postgres-exporter --version 2>&1 | head -1); vmagent (victoria-metrics $(dpkg-query -W -f='${Version}' victoria-metrics 2>/dev/null || echo "not installed")); $(prometheus --version 2>&1 | head -1); PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}')"
} | tee -a "$RUN/machine.txt"
record meta 0 all command "bash scripts/bench-peers.sh --part $part --rounds $rounds --seconds $seconds --rate $rate --scrapes $scrapes --interval $interval --pgbench-seconds $pgbench_seconds --databases $databases --tables $tables --agent-pools \"$agent_pools\" --exporter-mode $exporter_mode --dedup $dedup --concurrency $concurrency --gateway-build $gateway_build --warmup-scrapes $warmup_scrapes --warmup-seconds $warmup_seconds${gateway_env:+ --gateway-env \"$gateway_env\"}${agent_env:+ --agent-env \"$agent_env\"}$( [ "$profile" = 1 ] && echo " --profile")"

# ======================================================================================================
# Agent vs postgres_exporter
# ======================================================================================================
agent_part() {
  PG_PORT=$(svc_free_port)
  export PG_PORT
  svc_setup_primary
  # Every connection is logged (connections per scrape); autovacuum off so the idle baseline stays idle.
  psql_q "ALTER SYSTEM SET log_connections = on" >/dev/null
  psql_q "ALTER SYSTEM SET autovacuum = off" >/dev/null
  psql_q "SELECT pg_reload_conf()" >/dev/null
  local monitor_pw exporter_pw
  monitor_pw=$(awk -F= '/^PG_MONITOR_PASSWORD=/ {print $2}' "$RUN/services.env")
  printf '%s' "$monitor_pw" >"$RUN/monitor.pw"
  exporter_pw=$(openssl rand -hex 12)
  # Room for the bigger agent pool; the exporter gets its own pg_monitor role so connections are told apart.
  psql_q "ALTER ROLE pgotel_monitor CONNECTION LIMIT 60" >/dev/null
  psql_q "CREATE ROLE pgexporter LOGIN PASSWORD '$exporter_pw'; GRANT pg_monitor TO pgexporter" >/dev/null

  say "creating $databases databases × $tables tables (+ indexes) from a template"
  psql_q "CREATE DATABASE benchtmpl" >/dev/null
  psql_q "DO \$\$ BEGIN FOR i IN 1..$tables LOOP
      EXECUTE format('CREATE TABLE t%s (id int PRIMARY KEY, v int, note text)', i);
      EXECUTE format('CREATE INDEX t%s_v ON t%s (v)', i, i);
      EXECUTE format('INSERT INTO t%s SELECT g, g %% 97, ''row '' || g FROM generate_series(1, 20) g', i);
    END LOOP; END \$\$" benchtmpl >/dev/null
  psql_q "VACUUM ANALYZE" benchtmpl >/dev/null
  for i in $(seq 1 "$databases"); do
    psql_q "CREATE DATABASE db$(printf %02d "$i") TEMPLATE benchtmpl" >/dev/null
  done
  psql_q "DROP DATABASE benchtmpl" >/dev/null
  "$PGBIN/pgbench" -i -q -s 5 -h 127.0.0.1 -p "$PG_PORT" -U postgres db01 >"$RUN/logs/pgbench-init.log" 2>&1
  # Some activity in every database, so the statistics views have rows to report.
  for i in $(seq 1 "$databases"); do
    psql_q "SELECT count(*) FROM t1; SELECT count(*) FROM t2 WHERE id = 3" "db$(printf %02d "$i")" >/dev/null
  done

  local dsn_base="postgresql://pgexporter:$exporter_pw@127.0.0.1:$PG_PORT"
  local exporter_args=(--log.level=warn)
  if [ "$exporter_mode" = tables ]; then
    # The exporter's documented way to table-level statistics: its example queries over every database, fixed as
    # a user would have to: the pg_stat_statements query predates PostgreSQL 13 (total_time → total_exec_time, …),
    # and pg_process_idle has no database label, so with --auto-discover-databases every scrape fails with
    # "was collected before with the same name and label values" (HTTP 500): it is left out.
    sed -E 's/\b(total|min|max|mean|stddev)_time \/ 1000/\1_exec_time \/ 1000/g' \
      /usr/share/doc/prometheus-postgres-exporter/examples/queries.yaml |
      awk '/^[a-z_]+:/ {skip = ($0 ~ /^pg_process_idle:/)} !skip' >"$RUN/exporter-queries.yaml"
    exporter_args+=(--auto-discover-databases --exclude-databases=template0,template1
      --extend.query-path="$RUN/exporter-queries.yaml")
  fi

  start_sink_once() { # a gateway that counts what the agent sends and logs only postgresql.scrape.duration
    SINK_GRPC=$(svc_free_port) SINK_METRICS=$(svc_free_port)
    local health
    health=$(svc_free_port)
    mkdir -p "$RUN/sink"
    cat >"$RUN/sink/gateway.yaml" <<YAML
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:$SINK_GRPC
    rate_limiting:
      enabled: false
processors:
  filter:
    metrics:
      include:
        match_type: strict
        metric_names: [postgresql.scrape.duration]
exporters:
  debug:
    verbosity: detailed
extensions:
  health_check:
    endpoint: 127.0.0.1:$health
gateway:
  admin:
    endpoint: ""
service:
  extensions: [health_check]
  pipelines:
    metrics:
      receivers: [otlp]
      processors: [filter]
      exporters: [debug]
  telemetry:
    logs:
      level: info
    metrics:
      address: 127.0.0.1:$SINK_METRICS
YAML
    (cd "$RUN/sink" && svc_spawn sink dotnet "$GATEWAY_DLL" --config "$RUN/sink/gateway.yaml")
    svc_wait_for sink 90 curl -fsS "http://127.0.0.1:$health/ready" || return 1
  }

  start_agent_once() { # pool size
    local pool=$1 health
    AGENT_METRICS=$(svc_free_port) health=$(svc_free_port)
    cat >"$RUN/agent.yaml" <<YAML
receivers:
  postgresql:
    endpoint: 127.0.0.1:$PG_PORT
    username: pgotel_monitor
    password_file: $RUN/monitor.pw
    collection_interval: ${interval}s
    initial_delay: 1s
    timeout: $((interval * 8 / 10))s
    tls:
      mode: disable
    connection_pool:
      max_open_conns: $pool
      max_idle_conns: $pool
exporters:
  otlp:
    endpoint: 127.0.0.1:$SINK_GRPC
    compression: zstd
    timeout: 60s
extensions:
  health_check:
    endpoint: 127.0.0.1:$health
service:
  extensions: [health_check]
  pipelines:
    metrics:
      receivers: [postgresql]
      exporters: [otlp]
  telemetry:
    logs:
      level: warn
    metrics:
      address: 127.0.0.1:$AGENT_METRICS
YAML
    # shellcheck disable=SC2086 # --agent-env is a list of VAR=value words
    svc_spawn agent env $agent_env dotnet "$AGENT_DLL" run --config "$RUN/agent.yaml"
    svc_wait_for agent 90 curl -fsS "http://127.0.0.1:$health/ready" || return 1
  }

  start_exporter_once() {
    EXPORTER_PORT=$(svc_free_port)
    svc_spawn exporter env DATA_SOURCE_NAME="$dsn_base/postgres?sslmode=disable" \
      prometheus-postgres-exporter --web.listen-address="127.0.0.1:$EXPORTER_PORT" "${exporter_args[@]}"
    svc_wait_for exporter 60 curl -sS -o /dev/null "http://127.0.0.1:$EXPORTER_PORT/metrics" || return 1
  }

  # The sink's count of accepted points once it has stopped moving (an export finished).
  sink_settled() {
    local start=$1 prev=$1 now same=0 deadline=$((SECONDS + interval * 3 + 30))
    while [ $SECONDS -lt $deadline ]; do
      sleep 0.3
      now=$(metric_sum "http://127.0.0.1:$SINK_METRICS/metrics" 'pgotel_receiver_accepted_points_total')
      if [ "$now" -gt "$start" ] && [ "$now" = "$prev" ]; then
        same=$((same + 1))
        if [ $same -ge 3 ]; then
          echo "$now"
          return 0
        fi
      else
        same=0
      fi
      prev=$now
    done
    echo "$prev"
  }

  baseline() { # round: idle PostgreSQL CPU per second, nothing scraping
    local c0 c1 t0 t1
    c0=$(pg_cpu) t0=$(date +%s.%N)
    sleep 10
    c1=$(pg_cpu) t1=$(date +%s.%N)
    BASE_RATE=$(calc "($c1 - $c0) / ($t1 - $t0)")
    record agent "$1" baseline pg_cpu_per_s "$BASE_RATE"
  }

  measure_agent() { # round pool
    local r=$1 pool=$2 side="agent (pool $2)" pid a0 a1 p0 p1 t0 t1 s0 s1 n0 n1 c0 c1 o0 o1 acc
    start_agent "$pool"
    pid=$(cat "$RUN/pids/agent.pid")
    # Warm-up scrapes (JIT, tiering, sessions), then the window starts right after an export.
    acc=$(metric_sum "http://127.0.0.1:$SINK_METRICS/metrics" 'pgotel_receiver_accepted_points_total')
    for _ in $(seq 1 "$warmup_scrapes"); do acc=$(sink_settled "$acc"); done
    a0=$(proc_cpu "$pid") p0=$(pg_cpu) t0=$(date +%s.%N) c0=$(conn_count pgotel_monitor)
    s0=$(metric_sum "http://127.0.0.1:$AGENT_METRICS/metrics" 'pgotel_agent_scrapes_total')
    o0=$(metric_sum "http://127.0.0.1:$AGENT_METRICS/metrics" 'pgotel_agent_sessions_opened_total')
    n0=$acc
    local counters="" cpid=""
    if [ "$profile" = 1 ]; then
      counters="$RUN/counters-agent${pool}-$r.csv"
      cpid=$(counters_start "$pid" $((scrapes * interval)) "$counters")
    fi
    local lines0
    lines0=$(wc -l <"$RUN/logs/sink.log")
    for _ in $(seq 1 "$scrapes"); do acc=$(sink_settled "$acc"); done
    if [ -n "$cpid" ]; then wait_gone "$cpid"; fi
    a1=$(proc_cpu "$pid") p1=$(pg_cpu) t1=$(date +%s.%N) c1=$(conn_count pgotel_monitor)
    s1=$(metric_sum "http://127.0.0.1:$AGENT_METRICS/metrics" 'pgotel_agent_scrapes_total')
    o1=$(metric_sum "http://127.0.0.1:$AGENT_METRICS/metrics" 'pgotel_agent_sessions_opened_total')
    n1=$acc
    local wall held
    wall=$(tail -n +"$((lines0 + 1))" "$RUN/logs/sink.log" | python3 "$PGOTEL_ROOT/scripts/lib/bench_report.py" scrape-durations)
    held=$(sessions_held pgotel_monitor)
    svc_kill agent
    local k=$((s1 - s0))
    if [ "$k" -le 0 ]; then
      say "agent made no scrapes in the window"
      return 0
    fi
    record agent "$r" "$side" scrapes "$k"
    record agent "$r" "$side" wall_s_per_scrape "$wall"
    record agent "$r" "$side" collector_cpu_s_per_scrape "$(calc "($a1 - $a0) / $k")"
    record agent "$r" "$side" pg_cpu_s_per_scrape "$(calc "max(0.0, ($p1 - $p0) - $BASE_RATE * ($t1 - $t0)) / $k")"
    record agent "$r" "$side" cpu_s_per_scrape "$(calc "(($a1 - $a0) + max(0.0, ($p1 - $p0) - $BASE_RATE * ($t1 - $t0))) / $k")"
    record agent "$r" "$side" new_connections_per_scrape "$(calc "($c1 - $c0) / $k")"
    record agent "$r" "$side" sessions_held "$held"
    record agent "$r" "$side" agent_sessions_opened_per_scrape "$(calc "($o1 - $o0) / $k")"
    record agent "$r" "$side" series_per_scrape "$(calc "($n1 - $n0) / $k")"
    if [ -n "$counters" ] && [ -s "$counters" ]; then
      python3 "$PGOTEL_ROOT/scripts/lib/bench_report.py" counters "$counters" "$(calc "($n1 - $n0)")" |
        while IFS=$'\t' read -r key value; do record agent "$r" "$side" "$key" "$value"; done
    fi
    say "$side: $k scrapes, $(calc "round((($a1 - $a0) + max(0.0, ($p1 - $p0) - $BASE_RATE * ($t1 - $t0))) / $k, 3)") CPU-s/scrape, wall ${wall}s, $(calc "($n1 - $n0) // $k") series"
  }

  measure_exporter() { # round
    local r=$1 side="postgres_exporter" pid a0 a1 p0 p1 t0 t1 c0 c1 wall_total=0 series=0 started w
    start_exporter
    pid=$(cat "$RUN/pids/exporter.pid")
    # Warm-up scrapes (connections to every database), as for the agent.
    for _ in $(seq 1 "$warmup_scrapes"); do curl -sS -o /dev/null "http://127.0.0.1:$EXPORTER_PORT/metrics"; sleep 1; done
    a0=$(proc_cpu "$pid") p0=$(pg_cpu) t0=$(date +%s.%N) c0=$(conn_count pgexporter)
    for i in $(seq 1 "$scrapes"); do
      started=$SECONDS
      w=$(curl -sS -o "$RUN/exporter.metrics" -w '%{time_total}' "http://127.0.0.1:$EXPORTER_PORT/metrics")
      if ! grep -q '^pg_up 1' "$RUN/exporter.metrics"; then say "postgres_exporter scrape failed: $(head -c 300 "$RUN/exporter.metrics")"; fi
      wall_total=$(calc "$wall_total + $w")
      # Steady state: one scrape per interval, like Prometheus would.
      if [ "$i" -lt "$scrapes" ]; then sleep "$(calc "max(0.0, $interval - ($SECONDS - $started) - $w)")"; fi
    done
    a1=$(proc_cpu "$pid") p1=$(pg_cpu) t1=$(date +%s.%N) c1=$(conn_count pgexporter)
    series=$(grep -vc '^#' "$RUN/exporter.metrics" || true)
    # The exporter's own Go/process self-metrics are not PostgreSQL series.
    local own
    own=$(grep -Ec '^(go_|process_|promhttp_|postgres_exporter_build_info)' "$RUN/exporter.metrics" || true)
    record agent "$r" "$side" scrape_errors_logged "$(grep -c 'level=error' "$RUN/logs/exporter.log" || true)"
    record agent "$r" "$side" sessions_held "$(sessions_held pgexporter)"
    svc_kill exporter
    record agent "$r" "$side" scrapes "$scrapes"
    record agent "$r" "$side" wall_s_per_scrape "$(calc "$wall_total / $scrapes")"
    record agent "$r" "$side" collector_cpu_s_per_scrape "$(calc "($a1 - $a0) / $scrapes")"
    record agent "$r" "$side" pg_cpu_s_per_scrape "$(calc "max(0.0, ($p1 - $p0) - $BASE_RATE * ($t1 - $t0)) / $scrapes")"
    record agent "$r" "$side" cpu_s_per_scrape "$(calc "(($a1 - $a0) + max(0.0, ($p1 - $p0) - $BASE_RATE * ($t1 - $t0))) / $scrapes")"
    record agent "$r" "$side" new_connections_per_scrape "$(calc "($c1 - $c0) / $scrapes")"
    record agent "$r" "$side" series_per_scrape "$((series - own))"
    say "$side: $scrapes scrapes, $(calc "round((($a1 - $a0) + max(0.0, ($p1 - $p0) - $BASE_RATE * ($t1 - $t0))) / $scrapes, 3)") CPU-s/scrape, wall $(calc "round($wall_total / $scrapes, 3)")s, $((series - own)) series"
  }

  pgbench_run() { # round side: TPS while the side scrapes every interval
    local r=$1 side=$2 pid="" loop="" out tps acc
    # Each collector is started and has finished its first scrape before pgbench starts: the window measures
    # steady-state scraping, as the target means, not start-up (JIT, the agent's first size measurement).
    case $side in
      none) ;;
      postgres_exporter)
        start_exporter
        curl -fsS -o /dev/null "http://127.0.0.1:$EXPORTER_PORT/metrics" || true
        (while sleep "$interval"; do curl -fsS -o /dev/null "http://127.0.0.1:$EXPORTER_PORT/metrics" || true; done) &
        loop=$! ;;
      agent*)
        start_agent "${side//[^0-9]/}"
        acc=$(metric_sum "http://127.0.0.1:$SINK_METRICS/metrics" 'pgotel_receiver_accepted_points_total')
        sink_settled "$acc" >/dev/null ;;
    esac
    sleep 2
    out=$("$PGBIN/pgbench" -n -c 4 -j 2 -T "$pgbench_seconds" -h 127.0.0.1 -p "$PG_PORT" -U postgres db01 2>&1 || true)
    tps=$(printf '%s\n' "$out" | awk '/^tps = / {print $3; exit}')
    if [ -n "$loop" ]; then kill "$loop" 2>/dev/null || true; fi
    svc_kill exporter
    svc_kill agent
    record pgbench "$r" "$side" tps "${tps:-0}"
    say "pgbench with $side scraping: ${tps:-?} TPS"
  }

  start_sink
  local sides=() s
  for s in $agent_pools; do sides+=("agent (pool $s)"); done
  sides+=(postgres_exporter)
  for r in $(seq 1 "$rounds"); do
    say "agent round $r/$rounds: idle baseline"
    baseline "$r"
    # Alternate the order each round so neither side always goes first.
    local order=("${sides[@]}")
    if [ $((r % 2)) = 0 ]; then order=(); for ((i = ${#sides[@]} - 1; i >= 0; i--)); do order+=("${sides[$i]}"); done; fi
    for s in "${order[@]}"; do
      case $s in
        agent*) measure_agent "$r" "${s//[^0-9]/}" ;;
        *) measure_exporter "$r" ;;
      esac
    done
  done
  # pgbench TPS: none / each collector, rotating the order every round.
  local tsides=(none "${sides[@]}")
  for r in $(seq 1 "$rounds"); do
    local n=${#tsides[@]} i
    for ((i = 0; i < n; i++)); do
      pgbench_run "$r" "${tsides[$(((i + r - 1) % n))]}"
    done
  done
  if [ "$profile" = 1 ]; then
    local first=${agent_pools%% *} pid
    say "profile: CPU sample of the agent (pool $first) over two scrapes"
    start_agent "$first"
    pid=$(cat "$RUN/pids/agent.pid")
    local acc
    acc=$(metric_sum "http://127.0.0.1:$SINK_METRICS/metrics" 'pgotel_receiver_accepted_points_total')
    for _ in $(seq 1 "$warmup_scrapes"); do acc=$(sink_settled "$acc"); done
    profile_cpu "$pid" $((interval * 2)) agent
    svc_kill agent
  fi
  svc_kill sink
  svc_stop postgres-primary
}

# ======================================================================================================
# Gateway vs vmagent
# ======================================================================================================
gateway_part() {
  PROMETHEUS_PORT=$(svc_free_port)
  export PROMETHEUS_PORT
  svc_start prometheus
  local prom="http://127.0.0.1:$PROMETHEUS_PORT/metrics" has_dedupe=0
  if grep -q '"dedupe"' "$PGOTEL_ROOT/src/Gateway/Configuration/GatewayComponents.cs" 2>/dev/null; then has_dedupe=1; fi
  local sides=("gateway") s
  case $dedup in
    on) sides=("gateway + dedupe") ;;
    auto) if [ $has_dedupe = 1 ]; then sides+=("gateway + dedupe"); else say "this gateway has no dedupe processor: measuring dedup off only"; fi ;;
    off) ;;
    *) echo "--dedup must be auto, on or off" >&2; exit 2 ;;
  esac
  sides+=(vmagent)
  if [[ " ${sides[*]} " == *dedupe* ]]; then
    if [ $has_dedupe != 1 ]; then
      echo "--dedup on: this gateway has no dedupe processor" >&2
      exit 2
    fi
    REDIS_PORT=$(svc_free_port)
    export REDIS_PORT
    svc_start redis
  fi
  dotnet "$LOADGEN_DLL" --describe --instances "$instances" | tee -a "$RUN/machine.txt" >&2

  start_gateway_once() { # with_dedupe
    local grpc health metrics dir=$RUN/gw-$RANDOM processors="[batch]" dedupe_block=""
    grpc=$(svc_free_port) health=$(svc_free_port) metrics=$(svc_free_port)
    mkdir -p "$dir"
    if [ "$1" = 1 ]; then
      processors="[dedupe, batch]"
      dedupe_block="  dedupe:
    redis:
      endpoint: 127.0.0.1:$REDIS_PORT"
    fi
    cat >"$dir/gateway.yaml" <<YAML
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:$grpc
    rate_limiting:
      enabled: false
processors:
$dedupe_block
  batch:
    send_batch_size: 8192
    timeout: 200ms
exporters:
  prometheusremotewrite:
    endpoint: http://127.0.0.1:$PROMETHEUS_PORT/api/v1/write
extensions:
  health_check:
    endpoint: 127.0.0.1:$health
gateway:
  admin:
    endpoint: ""
service:
  extensions: [health_check]
  pipelines:
    metrics:
      receivers: [otlp]
      processors: $processors
      exporters: [prometheusremotewrite]
  telemetry:
    logs:
      level: warn
    metrics:
      address: 127.0.0.1:$metrics
YAML
    # Its working directory is a fresh folder: the durable queue (data/queue/...) starts empty.
    # shellcheck disable=SC2086 # --gateway-env is a list of VAR=value words
    (cd "$dir" && svc_spawn side env $gateway_env dotnet "$GATEWAY_DLL" --config "$dir/gateway.yaml")
    svc_wait_for side 90 curl -fsS "http://127.0.0.1:$health/ready" || return 1
    SIDE_LOAD=(--protocol otlp --endpoint "http://127.0.0.1:$grpc")
  }

  start_vmagent_once() {
    local port dir=$RUN/vm-$RANDOM
    port=$(svc_free_port)
    mkdir -p "$dir"
    svc_spawn side vmagent -remoteWrite.url="http://127.0.0.1:$PROMETHEUS_PORT/api/v1/write" \
      -httpListenAddr="127.0.0.1:$port" -remoteWrite.tmpDataPath="$dir" -loggerLevel=WARN
    svc_wait_for side 60 curl -fsS "http://127.0.0.1:$port/health" || return 1
    SIDE_LOAD=(--protocol remote-write --endpoint "http://127.0.0.1:$port/api/v1/write")
  }

  # Prometheus' appended-samples counter once it has stopped moving (the side has delivered what it holds).
  prom_settled() {
    local prev now stable=0 deadline=$((SECONDS + 60))
    prev=$(metric_sum "$prom" 'prometheus_tsdb_head_samples_appended_total')
    while [ $SECONDS -lt $deadline ]; do
      sleep 1
      now=$(metric_sum "$prom" 'prometheus_tsdb_head_samples_appended_total')
      if [ "$now" = "$prev" ]; then
        stable=$((stable + 1))
        if [ $stable -ge 3 ]; then break; fi
      else
        stable=0
      fi
      prev=$now
    done
    echo "$prev"
  }

  measure_side() { # round side
    local r=$1 side=$2 pid c0 c1 a0 a1 o0 o1 out hwm
    case $side in
      "gateway") start_gateway 0 ;;
      "gateway + dedupe") start_gateway 1 ;;
      vmagent) start_vmagent ;;
    esac
    pid=$(cat "$RUN/pids/side.pid")
    # Warm-up (JIT and tiering, connections), not counted.
    dotnet "$LOADGEN_DLL" "${SIDE_LOAD[@]}" --seconds "$warmup_seconds" --rate "$rate" --instances "$instances" --concurrency "$concurrency" >/dev/null 2>&1 || true
    a0=$(prom_settled)
    o0=$(metric_sum "$prom" 'prometheus_tsdb_out_of_order_samples_total')
    # Peak RSS over the measured window only: start-up's and the warm-up's peak is recorded, then VmHWM is reset to
    # the current RSS (clear_refs 5).
    record gateway "$r" "$side" startup_peak_rss_mib "$(proc_hwm "$pid")"
    echo 5 >"/proc/$pid/clear_refs"
    c0=$(proc_cpu "$pid")
    local counters="" cpid=""
    if [ "$profile" = 1 ] && [ "$side" != vmagent ]; then
      counters="$RUN/counters-${side//[^a-z]/}-$r.csv"
      cpid=$(counters_start "$pid" "$seconds" "$counters")
    fi
    out=$(dotnet "$LOADGEN_DLL" "${SIDE_LOAD[@]}" --seconds "$seconds" --rate "$rate" --instances "$instances" --concurrency "$concurrency" 2>"$RUN/logs/loadgen-last.err" | tail -1)
    if [ -n "$cpid" ]; then wait_gone "$cpid"; fi
    a1=$(prom_settled)
    c1=$(proc_cpu "$pid")
    o1=$(metric_sum "$prom" 'prometheus_tsdb_out_of_order_samples_total')
    hwm=$(proc_hwm "$pid")
    svc_kill side
    local delivered=$((a1 - a0))
    record gateway "$r" "$side" cpu_s "$(calc "$c1 - $c0")"
    record gateway "$r" "$side" samples_delivered "$delivered"
    record gateway "$r" "$side" cpu_s_per_million_samples "$(calc "($c1 - $c0) / max(1, $delivered) * 1e6")"
    record gateway "$r" "$side" peak_rss_mib "$hwm"
    record gateway "$r" "$side" out_of_order_samples "$((o1 - o0))"
    record gateway "$r" "$side" loadgen "$out"
    if [ -n "$counters" ] && [ -s "$counters" ]; then
      # Allocation and GC per delivered sample over the (first ≤ 59 s of the) window.
      python3 "$PGOTEL_ROOT/scripts/lib/bench_report.py" counters "$counters" "$(calc "$delivered * min(1.0, 59.0 / $seconds)")" |
        while IFS=$'\t' read -r key value; do record gateway "$r" "$side" "$key" "$value"; done
    fi
    say "$side: delivered $delivered samples, CPU $(calc "round($c1 - $c0, 2)") s = $(calc "round(($c1 - $c0) / max(1, $delivered) * 1e6, 2)") CPU-s per million samples, peak RSS ${hwm} MiB, out-of-order $((o1 - o0)); $out"
  }

  for r in $(seq 1 "$rounds"); do
    local order=("${sides[@]}") i
    if [ $((r % 2)) = 0 ]; then order=(); for ((i = ${#sides[@]} - 1; i >= 0; i--)); do order+=("${sides[$i]}"); done; fi
    for s in "${order[@]}"; do
      say "gateway round $r/$rounds: $s at $rate points/s for ${seconds}s"
      measure_side "$r" "$s"
    done
  done
  if [ "$profile" = 1 ]; then
    say "profile: 20 s CPU sample of the gateway at $rate points/s"
    start_gateway 0
    local pid
    pid=$(cat "$RUN/pids/side.pid")
    dotnet "$LOADGEN_DLL" "${SIDE_LOAD[@]}" --seconds "$warmup_seconds" --rate "$rate" --instances "$instances" --concurrency "$concurrency" >/dev/null 2>&1 || true
    dotnet "$LOADGEN_DLL" "${SIDE_LOAD[@]}" --seconds 30 --rate "$rate" --instances "$instances" --concurrency "$concurrency" >/dev/null 2>&1 &
    local lpid=$!
    sleep 2
    profile_cpu "$pid" 20 gateway
    wait "$lpid" || true
    svc_kill side
    if [ -s "$RUN/profile-gateway.txt" ]; then say "gateway CPU profile: $RUN/profile-gateway.txt"; fi
  fi
}

case $part in
  agent) agent_part ;;
  gateway) gateway_part ;;
  all) agent_part; gateway_part ;;
esac

report_args=("$RESULTS" "$RUN/machine.txt")
if [ "$write_docs" = 1 ]; then report_args+=(--write-docs "$PGOTEL_ROOT/docs/benchmarks.md"); fi
python3 "$PGOTEL_ROOT/scripts/lib/bench_report.py" summary "${report_args[@]}"
