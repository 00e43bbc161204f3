#!/usr/bin/env bash
# End-to-end gateway throughput with the `dedupe` processor on vs off, into a real Prometheus, with a real Redis.
# OTLP/gRPC (zstd) at 1,000-point requests of PostgreSQL-shaped data, as fast as the gateway accepts.
# Two workloads, each run in alternating rounds (off, on, off, on, …) with a fresh gateway per round:
#   pair:   every request sent twice, as by the two agents of an HA pair (identical but for agent.id);
#   unique: every request once, so dedupe does all its work (hashing, cache, two Redis round trips per request:
#           the pending claim and, once queued, the confirm) and drops nothing — its pure overhead.
# Reports points/s per round, the on/off ratio of the medians, and Redis round trips per request (on rounds).
#   bash scripts/bench-dedup.sh [--seconds N] [--rounds N] [--concurrency N] [--workloads "pair unique"] [--write-docs]
set -euo pipefail
PGOTEL_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PGOTEL_ROOT
cd "$PGOTEL_ROOT"
seconds=20 rounds=3 concurrency=16 workloads="pair unique" write_docs=0
while [ $# -gt 0 ]; do
  case $1 in
    --seconds) seconds=$2; shift ;;
    --rounds) rounds=$2; shift ;;
    --concurrency) concurrency=$2; shift ;;
    --workloads) workloads=$2; shift ;;
    --write-docs) write_docs=1 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
# shellcheck source=lib/services.sh
. "$PGOTEL_ROOT/scripts/lib/services.sh"
svc_install
PGOTEL_RUN_DIR=$(mktemp -d /tmp/pgotel-bench-dedup.XXXXXX)
export PGOTEL_RUN_DIR
mkdir -p "$PGOTEL_RUN_DIR/logs" "$PGOTEL_RUN_DIR/pids"
: >"$PGOTEL_RUN_DIR/ports"
trap 'svc_kill gateway; svc_stop_all; rm -rf "$PGOTEL_RUN_DIR"' EXIT
dotnet build tests/LoadGen -c Release -v quiet -nologo >/dev/null
# shellcheck source=lib/gateway-build.sh
. "$PGOTEL_ROOT/scripts/lib/gateway-build.sh"
gateway_build r2r
PROMETHEUS_PORT=$(svc_free_port) REDIS_PORT=$(svc_free_port)
export PROMETHEUS_PORT REDIS_PORT
svc_start prometheus
svc_start redis
results="$PGOTEL_RUN_DIR/results.txt"
: >"$results"

run() { # workload (pair|unique), dedupe (on|off), round
  local workload=$1 dedupe=$2 round=$3 replicas=1 procs="batch"
  [ "$workload" = pair ] && replicas=2
  [ "$dedupe" = on ] && procs="dedupe, batch"
  local grpc metrics health
  grpc=$(svc_free_port) metrics=$(svc_free_port) health=$(svc_free_port)
  cat >"$PGOTEL_RUN_DIR/gateway.yaml" <<YAML
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:$grpc
    rate_limiting:
      enabled: false
processors:
  dedupe:
    redis:
      endpoint: 127.0.0.1:$REDIS_PORT
      key_prefix: "bench-$workload-$round:"
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
      processors: [$procs]
      exporters: [prometheusremotewrite]
  telemetry:
    logs:
      level: warn
    metrics:
      address: 127.0.0.1:$metrics
YAML
  svc_spawn gateway dotnet "$GATEWAY_DLL" --config "$PGOTEL_RUN_DIR/gateway.yaml"
  svc_wait_for gateway 60 curl -fsS "http://127.0.0.1:$health/ready"
  local loadgen=(dotnet "$PGOTEL_ROOT/tests/LoadGen/bin/Release/net10.0/pgotel-loadgen.dll" --endpoint "http://127.0.0.1:$grpc"
    --concurrency "$concurrency" --points-per-request 1000 --instances 50 --replicas "$replicas")
  "${loadgen[@]}" --seconds 5 >/dev/null # JIT, connections, Redis
  local trips0 trips1 out
  trips0=$(curl -fsS "http://127.0.0.1:$metrics/metrics" | awk '/^pgotel_gateway_dedup_redis_round_trips_total/ {s += $NF} END {print s + 0}')
  out=$("${loadgen[@]}" --seconds "$seconds")
  trips1=$(curl -fsS "http://127.0.0.1:$metrics/metrics" | awk '/^pgotel_gateway_dedup_redis_round_trips_total/ {s += $NF} END {print s + 0}')
  local dedup
  dedup=$(curl -fsS "http://127.0.0.1:$metrics/metrics" | awk '/^pgotel_gateway_dedup_points_total/ {match($0, /result="[a-z_]*"/); r = substr($0, RSTART + 8, RLENGTH - 9); s[r] += $NF} END {for (r in s) printf "%s=%d ", r, s[r]}')
  svc_kill gateway
  echo "$workload $dedupe $round $out trips=$((trips1 - trips0)) $dedup" | tr '\n' ' ' >>"$results"
  echo >>"$results"
  tail -1 "$results"
}

echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(dotnet --version) SDK"
for workload in $workloads; do
  for round in $(seq 1 "$rounds"); do
    run "$workload" off "$round"
    run "$workload" on "$round"
  done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$results" "$seconds" "$rounds" "$write_docs" "$PGOTEL_ROOT/docs/benchmarks.md" "$(nproc)" "$concurrency" <<'PY'
import sys, statistics, datetime, os
path, seconds, rounds, write_docs, doc, cores, concurrency = sys.argv[1:]
rows = []
for line in open(path):
    parts = line.split()
    if len(parts) < 4:
        continue
    f = dict(kv.split("=", 1) for kv in parts[3:] if "=" in kv)
    rows.append((parts[0], parts[1], int(parts[2]), f))
out = []
for workload in [w for w in ("pair", "unique") if any(r[0] == w for r in rows)]:
    med = {}
    for mode in ("off", "on"):
        rates = [float(f["accepted_per_s"]) for w, m, _, f in rows if w == workload and m == mode]
        med[mode] = statistics.median(rates) if rates else 0
        out.append(f"{workload:6} dedupe {mode:3}: " + ", ".join(f"{r:,.0f}" for r in rates) + f" points/s (median {med[mode]:,.0f})")
    on = [f for w, m, _, f in rows if w == workload and m == "on"]
    reqs = sum(int(f["requests"]) for f in on)
    trips = sum(int(f["trips"]) for f in on)
    passed = sum(int(f.get("passed", 0)) for f in on)
    local = sum(int(f.get("duplicate_local", 0)) for f in on)
    redis = sum(int(f.get("duplicate_redis", 0)) for f in on)
    ratio = med["on"] / med["off"] if med["off"] else 0
    out.append(f"{workload:6} on/off ratio {ratio:.2f}; Redis round trips per request {trips / reqs if reqs else 0:.2f} ({trips:,} for {reqs:,} requests); "
               f"points passed {passed:,}, dropped by the local cache {local:,}, by Redis {redis:,}")
print("\n".join(out))
if write_docs == "1":
    section = ["## Dedupe on vs off (scripts/bench-dedup.sh)", "",
        f"`bash scripts/bench-dedup.sh --seconds {seconds} --rounds {rounds} --concurrency {concurrency}`, run {datetime.date.today()} on this {cores}-core machine "
        "(load tool, gateway, Redis and Prometheus on it, while other builds ran: the figures are noisy; the ratio of "
        "medians of alternating rounds is the number to read). `pair`: every request sent twice as by an HA pair "
        "(the second copy is a duplicate); `unique`: no duplicates, dedupe's pure cost (hash, cache, two Redis round trips "
        "per request: the pending claim and, once the data is queued, the confirm).", "", "```", *out, "```", ""]
    text = open(doc).read() if os.path.exists(doc) else "# Benchmarks\n\n"
    start = text.find("## Dedupe on vs off")
    if start >= 0:
        # The section ends at the next heading or marker comment (the prose after the figures is kept by hand).
        ends = [e for e in (text.find("\n## ", start + 5), text.find("\n**Read with care", start + 5), text.find("\n<!-- ", start + 5)) if e >= 0]
        end = min(ends) if ends else -1
        text = text[:start] + "\n".join(section) + ("\n" + text[end + 1:] if end >= 0 else "")
    else:
        text = text.rstrip() + "\n\n" + "\n".join(section)
    open(doc, "w").write(text)
PY
