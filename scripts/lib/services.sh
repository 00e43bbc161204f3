# shellcheck shell=bash
# Real servers for tests and the demo, on loopback, free ports and one run directory.
# Sourced by scripts/test.sh, scripts/demo.sh and the generated $PGOTEL_RUN_DIR/ctl.sh.
# Every started process gets its own process group and a pid file, so stop is exact and complete.

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
: "${PGOTEL_ROOT:?PGOTEL_ROOT must point at the repository root}"

svc_log() { printf '[services] %s\n' "$*" >&2; }

# Installs what is missing: Debian packages once, s3rver into tests/tools/s3rver.
svc_install() {
  local need=()
  [ -x "$PGBIN/postgres" ] || need+=(postgresql postgresql-contrib)
  command -v redis-server >/dev/null || need+=(redis-server)
  command -v prometheus >/dev/null || need+=(prometheus)
  command -v prometheus-postgres-exporter >/dev/null || need+=(prometheus-postgres-exporter)
  command -v openssl >/dev/null || need+=(openssl)
  command -v curl >/dev/null || need+=(curl)
  command -v node >/dev/null || need+=(nodejs npm)
  command -v runuser >/dev/null || need+=(util-linux)
  if [ "${PGOTEL_NEED_CHROMIUM:-0}" = 1 ] && ! command -v chromium >/dev/null; then need+=(chromium); fi
  # The deploy/ checks: promtool (with prometheus), kubectl kustomize, docker-compose config.
  command -v promtool >/dev/null || need+=(prometheus)
  command -v kubectl >/dev/null || need+=(kubernetes-client)
  command -v docker-compose >/dev/null || need+=(docker-compose)
  if [ ${#need[@]} -gt 0 ]; then
    svc_log "installing: ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
  # The Debian packages try to start their own servers; ours run on private ports instead.
  local s3dir="$PGOTEL_ROOT/tests/tools/s3rver"
  if [ ! -x "$s3dir/node_modules/.bin/s3rver" ]; then
    svc_log "installing s3rver (npm) into tests/tools/s3rver"
    (cd "$s3dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  fi
}

# A TCP port nothing listens on now.
svc_free_port() {
  local port
  for _ in $(seq 1 200); do
    port=$((20000 + RANDOM % 30000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      if ! grep -qs "^$port\$" "$PGOTEL_RUN_DIR/ports"; then
        echo "$port" >>"$PGOTEL_RUN_DIR/ports"
        echo "$port"
        return 0
      fi
    fi
  done
  svc_log "no free port found"
  return 1
}

# Waits until "$@" succeeds, or fails after $1 seconds naming the service and showing its log tail.
svc_wait_for() {
  local name=$1 seconds=$2
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
      svc_log "$name did not come up within ${seconds}s; last lines of its log:"
      tail -n 30 "$PGOTEL_RUN_DIR/logs/$name.log" >&2 2>/dev/null || true
      return 1
    fi
    sleep 0.2
  done
}

# Starts a command in its own process group with its log and pid file.
svc_spawn() {
  local name=$1
  shift
  setsid "$@" >>"$PGOTEL_RUN_DIR/logs/$name.log" 2>&1 < /dev/null &
  echo $! >"$PGOTEL_RUN_DIR/pids/$name.pid"
}

svc_kill() {
  local name=$1 pidfile="$PGOTEL_RUN_DIR/pids/$1.pid" pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL -- "-$pid" 2>/dev/null || true
  rm -f "$pidfile"
}

# ---------- PostgreSQL 15: primary with TLS and pg_stat_statements, plus a streaming standby ----------

svc_make_certs() {
  local dir="$PGOTEL_RUN_DIR/certs"
  mkdir -p "$dir"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=pgotel test CA" \
    -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$dir/san.ext"
  openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
    -days 2 -extfile "$dir/san.ext" -out "$dir/server.crt" 2>/dev/null
  chown postgres:postgres "$dir/server.key" "$dir/server.crt"
  chmod 600 "$dir/server.key"
  chmod 644 "$dir/ca.crt"
}

svc_pg_conf() {
  local data=$1 port=$2
  cat >>"$data/postgresql.conf" <<CONF
# added by scripts/lib/services.sh
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$PGOTEL_RUN_DIR/sock'
max_connections = 300
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = all
track_io_timing = on
track_functions = all
wal_level = logical
max_wal_senders = 10
max_replication_slots = 10
hot_standby = on
hot_standby_feedback = on
ssl = on
ssl_cert_file = '$PGOTEL_RUN_DIR/certs/server.crt'
ssl_key_file = '$PGOTEL_RUN_DIR/certs/server.key'
ssl_ca_file = '$PGOTEL_RUN_DIR/certs/ca.crt'
fsync = off
synchronous_commit = off
deadlock_timeout = 200ms
log_min_messages = warning
logging_collector = off
CONF
}

svc_setup_postgres() {
  svc_setup_primary
  svc_setup_standby
}

# A primary with TLS, pg_stat_statements and the monitoring role (PG_MONITOR_PASSWORD is set and recorded).
svc_setup_primary() {
  local primary="$PGOTEL_RUN_DIR/pg-primary"
  mkdir -p "$PGOTEL_RUN_DIR/sock"
  chown postgres:postgres "$PGOTEL_RUN_DIR/sock"
  # The run dir must be traversable by the postgres user.
  chmod 755 "$PGOTEL_RUN_DIR"
  svc_make_certs
  mkdir -p "$primary" && chown postgres:postgres "$primary"
  runuser -u postgres -- "$PGBIN/initdb" -D "$primary" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
    -E UTF8 --no-locale --data-checksums >"$PGOTEL_RUN_DIR/logs/initdb.log" 2>&1
  svc_pg_conf "$primary" "$PG_PORT"
  cat >"$primary/pg_hba.conf" <<HBA
local   all          all                      trust
host    all          postgres   127.0.0.1/32  trust
host    replication  all        127.0.0.1/32  trust
hostssl all          all        127.0.0.1/32  scram-sha-256
host    all          all        127.0.0.1/32  scram-sha-256
HBA
  svc_start postgres-primary
  PG_MONITOR_PASSWORD=$(openssl rand -hex 16)
  echo "PG_MONITOR_PASSWORD=$PG_MONITOR_PASSWORD" >>"$PGOTEL_RUN_DIR/services.env"
  # The project's own monitoring-role script sets up the role the agent uses.
  "$PGBIN/psql" -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -v monitor_password="$PG_MONITOR_PASSWORD" \
    -f "$PGOTEL_ROOT/deploy/sql/01-monitoring-role.sql" >>"$PGOTEL_RUN_DIR/logs/setup.log" 2>&1
}

# A streaming standby of the primary, made with pg_basebackup -R.
svc_setup_standby() {
  local standby="$PGOTEL_RUN_DIR/pg-standby"
  mkdir -p "$standby" && chown postgres:postgres "$standby" && chmod 700 "$standby"
  runuser -u postgres -- "$PGBIN/pg_basebackup" -h 127.0.0.1 -p "$PG_PORT" -U postgres -D "$standby" -R -X stream \
    >>"$PGOTEL_RUN_DIR/logs/setup.log" 2>&1
  svc_pg_conf "$standby" "$PG_STANDBY_PORT"
  svc_start postgres-standby
}

svc_pg_ready() { "$PGBIN/psql" -X -tA -h 127.0.0.1 -p "$1" -U postgres -d postgres -c "SELECT 1" | grep -q 1; }
svc_pg_in_recovery() { "$PGBIN/psql" -X -tA -h 127.0.0.1 -p "$1" -U postgres -d postgres -c "SELECT pg_is_in_recovery()" | grep -q t; }

# ---------- start / stop by name (also what ctl.sh runs) ----------

# pg_ctl runs as the postgres user and appends to its log itself.
svc_pg_log() {
  local log="$PGOTEL_RUN_DIR/logs/$1.log"
  touch "$log" && chown postgres:postgres "$log"
  echo "$log"
}

svc_start() {
  case $1 in
    postgres-primary)
      runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGOTEL_RUN_DIR/pg-primary" -l "$(svc_pg_log postgres-primary)" -w -t 60 start >/dev/null
      svc_wait_for postgres-primary 60 svc_pg_ready "$PG_PORT" ;;
    postgres-standby)
      runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGOTEL_RUN_DIR/pg-standby" -l "$(svc_pg_log postgres-standby)" -w -t 60 start >/dev/null
      svc_wait_for postgres-standby 60 svc_pg_in_recovery "$PG_STANDBY_PORT" ;;
    redis)
      mkdir -p "$PGOTEL_RUN_DIR/redis"
      svc_spawn redis redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
        --dir "$PGOTEL_RUN_DIR/redis" --daemonize no
      svc_wait_for redis 30 bash -c "exec 3<>/dev/tcp/127.0.0.1/$REDIS_PORT && printf 'PING\r\n' >&3 && head -c 5 <&3 | grep -q PONG" ;;
    prometheus)
      mkdir -p "$PGOTEL_RUN_DIR/prometheus"
      [ -f "$PGOTEL_RUN_DIR/prometheus.yml" ] || printf 'global:\n  scrape_interval: 15s\n' >"$PGOTEL_RUN_DIR/prometheus.yml"
      svc_spawn prometheus prometheus --config.file="$PGOTEL_RUN_DIR/prometheus.yml" \
        --storage.tsdb.path="$PGOTEL_RUN_DIR/prometheus" --web.listen-address="127.0.0.1:$PROMETHEUS_PORT" \
        --web.enable-remote-write-receiver --web.enable-lifecycle --log.level=warn
      svc_wait_for prometheus 60 curl -fsS "http://127.0.0.1:$PROMETHEUS_PORT/-/ready" ;;
    postgres-exporter)
      svc_spawn postgres-exporter env DATA_SOURCE_NAME="postgresql://postgres@127.0.0.1:$PG_PORT/postgres?sslmode=disable" \
        prometheus-postgres-exporter --web.listen-address="127.0.0.1:$POSTGRES_EXPORTER_PORT"
      svc_wait_for postgres-exporter 60 bash -c "curl -fsS http://127.0.0.1:$POSTGRES_EXPORTER_PORT/metrics | grep -q '^pg_up 1'" ;;
    s3rver)
      mkdir -p "$PGOTEL_RUN_DIR/s3"
      svc_spawn s3rver node "$PGOTEL_ROOT/tests/tools/s3rver/node_modules/.bin/s3rver" --address 127.0.0.1 \
        --port "$S3_PORT" --directory "$PGOTEL_RUN_DIR/s3" --configure-bucket "$S3_BUCKET" --silent
      svc_wait_for s3rver 60 curl -fsS -o /dev/null "http://127.0.0.1:$S3_PORT/" ;;
    *) svc_log "unknown service '$1'"; return 2 ;;
  esac
}

svc_stop() {
  case $1 in
    postgres-primary) runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGOTEL_RUN_DIR/pg-primary" -m fast -w stop >/dev/null 2>&1 || true ;;
    postgres-standby) runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGOTEL_RUN_DIR/pg-standby" -m fast -w stop >/dev/null 2>&1 || true ;;
    redis | prometheus | postgres-exporter | s3rver) svc_kill "$1" ;;
    *) svc_log "unknown service '$1'"; return 2 ;;
  esac
}

# Stops everything this run started, whatever state it is in.
svc_stop_all() {
  local name
  for name in s3rver postgres-exporter prometheus redis postgres-standby postgres-primary; do
    svc_stop "$name" 2>/dev/null || true
  done
}
