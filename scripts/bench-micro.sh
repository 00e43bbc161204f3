#!/usr/bin/env bash
# BenchmarkDotNet per-point benchmarks (tests/Benchmarks, *PerPoint* classes): every case handles one 1,000-point
# agent-shaped request per invocation with OperationsPerInvoke = 1000, so Mean and Allocated are per data point.
#   bash scripts/bench-micro.sh [--quick] [--in-process] [--filter GLOB] [--write-docs]
# --quick        BenchmarkDotNet's short job (3 warm-ups, 3 iterations): a smoke run, noisy figures.
# --in-process   no separate benchmark process build (faster on a busy machine, slightly less isolated).
# --write-docs   rewrites only the section between the bench-micro markers in docs/benchmarks.md.
set -euo pipefail
PGOTEL_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$PGOTEL_ROOT"
filter='*PerPoint*' job=() write_docs=0 inproc=()
while [ $# -gt 0 ]; do
  case $1 in
    --quick) job=(--job short) ;;
    --in-process) inproc=(--inProcess) ;;
    --filter) filter=$2; shift ;;
    --write-docs) write_docs=1 ;;
    -h | --help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
artifacts=$(mktemp -d /tmp/pgotel-bdn.XXXXXX)
trap 'rm -rf "$artifacts"' EXIT
dotnet build tests/Benchmarks -c Release -v quiet -nologo >/dev/null
dotnet tests/Benchmarks/bin/Release/net10.0/PgOtelGateway.Benchmarks.dll --filter "$filter" "${job[@]}" "${inproc[@]}" \
  --exporters github --artifacts "$artifacts" | tee "$artifacts/console.txt" | grep -E '^\|' || true
python3 - "$artifacts" "$PGOTEL_ROOT/docs/benchmarks.md" "$write_docs" "$*" "${job[*]:-default job}" <<'PY'
import datetime, glob, html, os, re, sys
artifacts, doc, write, args, job = sys.argv[1:]
reports = sorted(glob.glob(os.path.join(artifacts, "results", "*-report-github.md")))
if not reports:
    sys.exit("no BenchmarkDotNet reports were written; see the console output above")
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
lines = [f"Run {datetime.date.today()} with `bash scripts/bench-micro.sh` ({job}) on {os.cpu_count()} cores ({cpu}), "
         "while other work shared the machine (wall-clock times are only as good as the machine was quiet; "
         "allocations do not depend on it). Every case handles a 1,000-point agent-shaped request per invocation "
         "(OperationsPerInvoke = 1000): **Mean and Allocated are per data point**; Points/s/core = 1 / Mean.", ""]
over = []
for path in reports:
    text = open(path).read()
    table = html.unescape("\n".join(l for l in text.splitlines() if l.startswith("|")))
    name = os.path.basename(path).replace("-report-github.md", "").split(".")[-1]
    lines += [f"**{name}**", "", table, ""]
    for row in table.splitlines()[2:]:
        cells = [c.strip() for c in row.strip("|").split("|")]
        alloc = next((c for c in reversed(cells) if re.fullmatch(r"[\d.,]+ (B|KB|MB)", c)), None)
        if alloc:
            n, unit = alloc.split()
            b = float(n.replace(",", "")) * {"B": 1, "KB": 1024, "MB": 1024 * 1024}[unit]
            # The agent's cases are not on the gateway's hot path, nor are the "object API" cases (the object-based
            # translation the load tool and tests use, kept for comparison); they are listed, not held to the target.
            if b >= 16 and not cells[0].strip("'").startswith(("agent", "object API")):
                over.append(f"{cells[0]} ({alloc}/point)")
lines += ["Target (issue 8): no allocation per data point on the gateway's steady-state hot path (< 16 B/point). "
          + (("Gateway cases at or over 16 B/point: " + "; ".join(over) + ".") if over else "No gateway case in this run is at or over 16 B/point.")
          + " The agent's and the \"object API\" cases are listed for reference (not on the gateway's path)."]
body = "\n".join(lines)
print("\n" + body)
if write == "1":
    start, end = "<!-- bench-micro:start -->", "<!-- bench-micro:end -->"
    heading = "## Per-point microbenchmarks (scripts/bench-micro.sh)"
    text = open(doc).read() if os.path.exists(doc) else "# Benchmarks\n"
    block = f"{start}\n{heading}\n\n{body}\n{end}"
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    open(doc, "w").write(text)
PY
