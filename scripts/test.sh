#!/usr/bin/env bash
# Runs every test of PgOtelGateway against real servers, on a fresh Debian machine with the .NET SDK.
#
#   bash scripts/test.sh [--soak] [--keep] [--no-build] [--services-only] [-- <dotnet test args>]
#
# It installs what is missing (apt-get: postgresql, redis-server, prometheus, prometheus-postgres-exporter,
# chromium, openssl, curl, kubernetes-client, docker-compose; npm: s3rver into tests/tools/s3rver), starts on 127.0.0.1, free ports and one temp
# run directory: a PostgreSQL 15 primary (TLS, pg_stat_statements, logical WAL) and a streaming standby, Redis,
# Prometheus with the remote-write receiver, postgres_exporter and s3rver; hands their endpoints to the tests
# through PGOTEL_TEST_* variables (docs/testing.md lists them); runs each test project; stops everything on
# exit; and prints "N passed, N failed" as its last line, counted from the TRX results.
#
#   --soak           long fault and soak variants (PGOTEL_TEST_SOAK=1); outside CI only
#   --keep           keep the run directory (logs, data) afterwards
#   --no-build       use the existing Release build
#   --services-only  start the servers, print their environment, wait for Ctrl-C (for dotnet test by hand)
set -euo pipefail

PGOTEL_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PGOTEL_ROOT
cd "$PGOTEL_ROOT"

soak=0 keep=0 build=1 services_only=0
test_args=()
while [ $# -gt 0 ]; do
  case $1 in
    --soak) soak=1 ;;
    --keep) keep=1 ;;
    --no-build) build=0 ;;
    --services-only) services_only=1 ;;
    --) shift; test_args=("$@"); break ;;
    -h | --help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) test_args+=("$1") ;;
  esac
  shift
done

# shellcheck source=lib/services.sh
. "$PGOTEL_ROOT/scripts/lib/services.sh"

started=$SECONDS
PGOTEL_NEED_CHROMIUM=1 svc_install

PGOTEL_RUN_DIR=$(mktemp -d /tmp/pgotel-test.XXXXXX)
export PGOTEL_RUN_DIR
mkdir -p "$PGOTEL_RUN_DIR/logs" "$PGOTEL_RUN_DIR/pids" "$PGOTEL_RUN_DIR/results"
: >"$PGOTEL_RUN_DIR/ports"

# Set once the closing "N passed, N failed" line is out; a run that ends before that (a server that did not
# come up, Ctrl-C) still closes with a count line, so CI never mistakes it for a passing run.
summary_printed=0
cleanup() {
  local code=$?
  trap - EXIT INT TERM
  svc_stop_all
  if [ "$summary_printed" = 0 ] && [ "$services_only" = 0 ] && [ "$code" != 0 ]; then
    echo "the run stopped before the tests finished (exit $code); see the lines above"
    echo "0 passed, 1 failed"
  fi
  if [ "$keep" = 1 ]; then
    svc_log "run directory kept: $PGOTEL_RUN_DIR"
  else
    rm -rf "$PGOTEL_RUN_DIR"
  fi
  exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

PG_PORT=$(svc_free_port)
PG_STANDBY_PORT=$(svc_free_port)
REDIS_PORT=$(svc_free_port)
PROMETHEUS_PORT=$(svc_free_port)
POSTGRES_EXPORTER_PORT=$(svc_free_port)
S3_PORT=$(svc_free_port)
S3_BUCKET=pgotel-test
cat >"$PGOTEL_RUN_DIR/services.env" <<ENV
PG_PORT=$PG_PORT
PG_STANDBY_PORT=$PG_STANDBY_PORT
REDIS_PORT=$REDIS_PORT
PROMETHEUS_PORT=$PROMETHEUS_PORT
POSTGRES_EXPORTER_PORT=$POSTGRES_EXPORTER_PORT
S3_PORT=$S3_PORT
S3_BUCKET=$S3_BUCKET
ENV

# Fault-injection tests stop and start a service on the same port and data through this script.
cat >"$PGOTEL_RUN_DIR/ctl.sh" <<CTL
#!/usr/bin/env bash
# usage: ctl.sh start|stop|restart redis|prometheus|s3rver|postgres-exporter|postgres-primary|postgres-standby
set -euo pipefail
export PGOTEL_ROOT='$PGOTEL_ROOT' PGOTEL_RUN_DIR='$PGOTEL_RUN_DIR'
. "\$PGOTEL_ROOT/scripts/lib/services.sh"
. "\$PGOTEL_RUN_DIR/services.env"
case \${1:-} in
  start) svc_start "\$2" ;;
  stop) svc_stop "\$2" ;;
  restart) svc_stop "\$2"; svc_start "\$2" ;;
  *) echo "usage: ctl.sh start|stop|restart SERVICE" >&2; exit 2 ;;
esac
CTL
chmod +x "$PGOTEL_RUN_DIR/ctl.sh"

svc_log "starting servers in $PGOTEL_RUN_DIR"
svc_start redis
svc_start prometheus
svc_start s3rver
svc_setup_postgres
svc_start postgres-exporter
# shellcheck disable=SC1091
. "$PGOTEL_RUN_DIR/services.env"

export PGOTEL_TEST_PG_HOST=127.0.0.1
export PGOTEL_TEST_PG_PORT=$PG_PORT
export PGOTEL_TEST_PG_STANDBY_PORT=$PG_STANDBY_PORT
export PGOTEL_TEST_PG_SUPERUSER=postgres
export PGOTEL_TEST_PG_MONITOR_USER=pgotel_monitor
export PGOTEL_TEST_PG_MONITOR_PASSWORD=$PG_MONITOR_PASSWORD
export PGOTEL_TEST_PG_CA_FILE=$PGOTEL_RUN_DIR/certs/ca.crt
export PGOTEL_TEST_PG_SOCKET_DIR=$PGOTEL_RUN_DIR/sock
export PGOTEL_TEST_PG_BIN=$PGBIN
export PGOTEL_TEST_REDIS=127.0.0.1:$REDIS_PORT
export PGOTEL_TEST_PROMETHEUS_URL=http://127.0.0.1:$PROMETHEUS_PORT
export PGOTEL_TEST_POSTGRES_EXPORTER_URL=http://127.0.0.1:$POSTGRES_EXPORTER_PORT/metrics
export PGOTEL_TEST_S3_ENDPOINT=http://127.0.0.1:$S3_PORT
export PGOTEL_TEST_S3_BUCKET=$S3_BUCKET
export PGOTEL_TEST_S3_ACCESS_KEY=S3RVER
export PGOTEL_TEST_S3_SECRET_KEY=S3RVER
export PGOTEL_TEST_RUN_DIR=$PGOTEL_RUN_DIR
export PGOTEL_TEST_SERVICES_CTL=$PGOTEL_RUN_DIR/ctl.sh
export PGOTEL_TEST_SOAK=$soak
svc_log "servers up after $((SECONDS - started))s"

if [ "$services_only" = 1 ]; then
  env | grep '^PGOTEL_TEST_' | sort | sed 's/^/export /'
  svc_log "servers are running; press Ctrl-C to stop them"
  while true; do sleep 3600; done
fi

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
if [ "$build" = 1 ]; then
  svc_log "building (Release)"
  if ! dotnet build PgOtelGateway.sln -c Release -v quiet -nologo; then
    echo "the build failed; no test ran"
    echo "0 passed, 1 failed"
    summary_printed=1
    exit 1
  fi
fi

# Test projects run one after another, and tests that stop a shared server (trait Category=ServiceFault) run in
# a last pass of their own: xunit would otherwise run other test classes while the server is down.
mapfile -t projects < <(grep -l '<IsTestProject>true</IsTestProject>' tests/*/*.csproj | sort)
status=0
run_tests() { # name, project, extra args...
  local name=$1 project=$2
  shift 2
  svc_log "testing $name"
  if ! dotnet test "$project" -c Release --no-build --nologo \
      --logger "trx;LogFileName=$name.trx" --logger "console;verbosity=normal" \
      --results-directory "$PGOTEL_RUN_DIR/results" "$@"; then
    status=1
  fi
  if [ ! -f "$PGOTEL_RUN_DIR/results/$name.trx" ]; then
    echo "$name produced no results (the test host crashed or did not start)"
    echo "$name" >>"$PGOTEL_RUN_DIR/results/crashed"
    status=1
  fi
}
if [ ${#test_args[@]} -gt 0 ]; then
  for project in "${projects[@]}"; do run_tests "$(basename "$project" .csproj)" "$project" "${test_args[@]}"; done
else
  for project in "${projects[@]}"; do run_tests "$(basename "$project" .csproj)" "$project" --filter "Category!=ServiceFault"; done
  for project in "${projects[@]}"; do
    dir=$(dirname "$project")
    if grep -rqs --include='*.cs' 'Trait("Category", ServiceFaultCollection.Category)' "$dir"; then
      run_tests "$(basename "$project" .csproj).faults" "$project" --filter "Category=ServiceFault"
    fi
  done
fi

# Count from the TRX files: <Counters total= executed= passed= failed= ... notExecuted= ...>.
passed=0 failed=0 skipped=0
for trx in "$PGOTEL_RUN_DIR"/results/*.trx; do
  [ -f "$trx" ] || continue
  counters=$(grep -o '<Counters [^>]*>' "$trx" | head -n 1)
  get() { printf '%s' "$counters" | grep -o " $1=\"[0-9]*\"" | grep -o '[0-9]*' || echo 0; }
  passed=$((passed + $(get passed)))
  failed=$((failed + $(get failed) + $(get error) + $(get timeout) + $(get aborted)))
  skipped=$((skipped + $(get notExecuted)))
done
if [ -f "$PGOTEL_RUN_DIR/results/crashed" ]; then
  failed=$((failed + $(wc -l <"$PGOTEL_RUN_DIR/results/crashed")))
fi
# Name the failures again next to the summary: in a long log, the first lines anyone reads are the last ones.
if [ "$failed" -gt 0 ]; then
  for trx in "$PGOTEL_RUN_DIR"/results/*.trx; do
    [ -f "$trx" ] || continue
    grep -o '<UnitTestResult [^>]*outcome="\(Failed\|Error\|Timeout\|Aborted\)"[^>]*>' "$trx" |
      grep -o ' testName="[^"]*"' | sed -e 's/^ testName="/failed: /' -e 's/"$//'
  done
  if [ -f "$PGOTEL_RUN_DIR/results/crashed" ]; then sed 's/^/crashed: /' "$PGOTEL_RUN_DIR/results/crashed"; fi
fi
if [ $((passed + failed)) -eq 0 ]; then
  echo "no test ran"
  status=1
fi
if [ "$failed" -gt 0 ]; then status=1; fi
# A skipped test hides a gap; CI treats one as a failure of the run.
if [ "$skipped" -gt 0 ] && [ "${CI:-}" = true ]; then
  echo "$skipped tests were skipped; CI does not allow skipped tests"
  status=1
fi
svc_log "tests finished in $((SECONDS - started))s"
summary_printed=1
if [ "$skipped" -gt 0 ]; then
  echo "$passed passed, $failed failed, $skipped skipped"
else
  echo "$passed passed, $failed failed"
fi
exit "$status"
