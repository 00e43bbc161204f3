#!/usr/bin/env python3
"""Figures for scripts/bench-peers.sh.

  bench_report.py scrape-durations < gateway-log      mean whole-scrape postgresql.scrape.duration (seconds)
  bench_report.py summary RESULTS.tsv MACHINE.txt [--write-docs docs/benchmarks.md]

RESULTS.tsv rows: part, round, side, key, value. The summary takes the median over rounds, prints markdown
tables, the ratios against the peers and the issue's targets; --write-docs replaces only the text between this
script's markers in the doc (other sections are left alone).
"""
import datetime
import json
import os
import re
import statistics
import sys


OTLP_START = re.compile(r'\{\s*"resourceMetrics"')


def strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


def scrape_durations():
    values = []
    decoder = json.JSONDecoder()
    for line in sys.stdin:
        if "postgresql.scrape.duration" not in line:
            continue
        text = line
        try:  # a JSON log line: the OTLP/JSON is inside one of its string fields
            text = next((v for v in strings(json.loads(line)) if OTLP_START.search(v)), line)
        except ValueError:
            pass
        found = OTLP_START.search(text)
        if not found:
            continue
        start = found.start()
        try:
            data, _ = decoder.raw_decode(text[start:])
        except ValueError:
            continue
        for rm in data.get("resourceMetrics", []):
            for sm in rm.get("scopeMetrics", []):
                for m in sm.get("metrics", []):
                    if m.get("name") != "postgresql.scrape.duration":
                        continue
                    for p in (m.get("gauge") or m.get("sum") or {}).get("dataPoints", []):
                        if any(a.get("key") == "database_name" for a in p.get("attributes", [])):
                            continue
                        v = p.get("asDouble", p.get("asInt"))
                        if v is not None:
                            values.append(float(v))
    print(f"{statistics.mean(values):.4f}" if values else "nan")


def counters(path, samples):
    """Totals of a dotnet-counters CSV: allocation and GC per delivered sample (tab-separated key, value)."""
    import csv
    totals = {}
    with open(path) as f:
        for row in csv.DictReader(f):
            name, kind = row.get("Counter Name", ""), row.get("Counter Type", "")
            try:
                value = float(row.get("Mean/Increment", "nan"))
            except ValueError:
                continue
            if kind == "Rate":
                totals[name] = totals.get(name, 0.0) + value
    samples = float(samples) or float("nan")
    allocated = sum(v for k, v in totals.items() if k.startswith("dotnet.gc.heap.total_allocated"))
    pause = sum(v for k, v in totals.items() if k.startswith("dotnet.gc.pause.time"))
    cpu = sum(v for k, v in totals.items() if k.startswith("dotnet.process.cpu.time"))
    gens = [sum(v for k, v in totals.items() if k.startswith("dotnet.gc.collections") and f"gen{g}" in k) for g in range(3)]
    print(f"alloc_bytes_per_sample\t{allocated / samples:.1f}")
    print(f"gc_pause_share_of_cpu\t{pause / cpu if cpu else float('nan'):.4f}")
    print(f"gc_collections_gen0_gen1_gen2\t{gens[0]:.0f}/{gens[1]:.0f}/{gens[2]:.0f}")
    jit = sum(v for k, v in totals.items() if k.startswith("dotnet.jit.compiled_methods"))
    print(f"jit_methods_compiled_in_window\t{jit:.0f}")


def load(path):
    rows = []
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) == 5:
                rows.append(parts)
    return rows


def median(values):
    values = [v for v in values if v == v]
    return statistics.median(values) if values else float("nan")


def num(v):
    try:
        return float(v)
    except ValueError:
        return float("nan")


def fmt(v, digits=3):
    if v != v:
        return "n/a"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.{digits}f}"


def spread(values, digits=2):
    values = [v for v in values if v == v]
    if len(values) < 2:
        return ""
    return f" ({fmt(min(values), digits)}–{fmt(max(values), digits)})"


def summary(results, machine, doc):
    rows = load(results)
    command = next((r[4] for r in rows if r[0] == "meta" and r[3] == "command"), "")
    by = {}
    sides = {"agent": [], "pgbench": [], "gateway": []}
    for part, rnd, side, key, value in rows:
        if part == "meta":
            continue
        by.setdefault((part, side, key), []).append(value)
        if side not in sides.setdefault(part, []) and side != "baseline":
            sides[part].append(side)
    rounds = max([int(r[1]) for r in rows if r[0] != "meta"] or [0])

    def m(part, side, key):
        return median([num(v) for v in by.get((part, side, key), [])])

    def s(part, side, key):
        return spread([num(v) for v in by.get((part, side, key), [])])

    machine_text = open(machine).read().strip() if os.path.exists(machine) else ""
    today = datetime.date.today().isoformat()
    sections = {}

    if sides["agent"]:
        out = [f"Run {today}: `{command}`", "", "```", machine_text, "```", "",
               f"Medians over {rounds} round(s) (range in brackets). CPU = the collector process plus every PostgreSQL "
               "process (live children, and exited ones through the postmaster's cutime/cstime), minus the idle "
               "baseline measured in the same round; connections = `connection authorized` lines of the collector's "
               "role (log_connections); sessions held = the collector role's backends in pg_stat_activity at the end of "
               "the window (what it keeps from max_connections); series = points the agent exported per scrape / sample "
               "lines of the exporter's /metrics minus its own go_/process_ lines.", "",
               "| side | wall s/scrape | CPU s/scrape (total) | collector CPU s | PostgreSQL CPU s | new connections/scrape | sessions held | series/scrape | CPU ms per 1,000 series |",
               "|---|---|---|---|---|---|---|---|---|"]
        for side in sides["agent"]:
            cpu = m("agent", side, "cpu_s_per_scrape")
            series = m("agent", side, "series_per_scrape")
            out.append(f"| {side} | {fmt(m('agent', side, 'wall_s_per_scrape'))}{s('agent', side, 'wall_s_per_scrape')} "
                       f"| {fmt(cpu)}{s('agent', side, 'cpu_s_per_scrape')} | {fmt(m('agent', side, 'collector_cpu_s_per_scrape'))} "
                       f"| {fmt(m('agent', side, 'pg_cpu_s_per_scrape'))} | {fmt(m('agent', side, 'new_connections_per_scrape'), 2)} "
                       f"| {fmt(m('agent', side, 'sessions_held'), 0)} | {fmt(series, 0)} | {fmt(cpu / series * 1e6 if series else float('nan'), 2)} |")
        exp = "postgres_exporter"
        ecpu, eseries, ewall = m("agent", exp, "cpu_s_per_scrape"), m("agent", exp, "series_per_scrape"), m("agent", exp, "wall_s_per_scrape")
        out += ["", "Ratios (agent ÷ postgres_exporter) and targets (issue 8):", ""]
        tps = {side: m("pgbench", side, "tps") for side in sides["pgbench"]}
        none = tps.get("none", float("nan"))
        for side in sides["agent"]:
            if side == exp:
                continue
            cpu, series, wall = m("agent", side, "cpu_s_per_scrape"), m("agent", side, "series_per_scrape"), m("agent", side, "wall_s_per_scrape")
            conns = m("agent", side, "new_connections_per_scrape")
            r_cpu = cpu / ecpu if ecpu else float("nan")
            r_series = series / eseries if eseries else float("nan")
            r_per_series = (cpu / series) / (ecpu / eseries) if series and eseries and ecpu else float("nan")
            ok_cpu = r_cpu <= 0.5 and series >= eseries
            out.append(f"- **{side}**: CPU per scrape {fmt(r_cpu, 2)}× with {fmt(r_series, 2)}× the series "
                       f"(CPU per series {fmt(r_per_series, 2)}×), wall time {fmt(wall / ewall if ewall else float('nan'), 2)}×. "
                       f"Target ≤ 0.5× for at least as many series: **{'met' if ok_cpu else 'missed'}**"
                       + ("" if ok_cpu or r_cpu != r_cpu else f" ({fmt(r_cpu / 0.5, 2)}× the allowed CPU per scrape)") + ". "
                       f"New connections per scrape {fmt(conns, 2)} (target 0: **{'met' if conns == 0 else 'missed'}**).")
        if tps:
            out += ["", f"pgbench (`-c 4 -j 2`, TPC-B-like, db01) with each collector scraping every interval (started, and its first scrape done, before pgbench starts), medians:", "",
                    "| scraping | TPS | vs none |", "|---|---|---|"]
            for side in sides["pgbench"]:
                t = tps[side]
                out.append(f"| {side} | {fmt(t, 0)}{s('pgbench', side, 'tps')} | {'' if side == 'none' else f'{(t / none - 1) * 100:+.1f} %'} |")
            out.append("")
            for side in sides["pgbench"]:
                if side.startswith("agent"):
                    d = (tps[side] / none - 1) * 100
                    out.append(f"- **{side}**: pgbench TPS {d:+.1f} % against no monitoring; target within 1 %: "
                               f"**{'met' if abs(d) <= 1 else 'missed'}** (on a shared machine the round-to-round spread of the "
                               "no-monitoring runs is the noise floor; compare it with the range above).")
        profiled = [side for side in sides["agent"] if by.get(("agent", side, "alloc_bytes_per_sample"))]
        if profiled:
            out += ["", "dotnet-counters over the measured window (`--profile`):", ""]
            for side in profiled:
                out.append(f"- **{side}**: {fmt(m('agent', side, 'alloc_bytes_per_sample'), 0)} bytes allocated per exported point; "
                           f"GC pause time (wall clock, inflated on a busy machine) {fmt(m('agent', side, 'gc_pause_share_of_cpu') * 100, 0)} % of its CPU time; "
                           f"gen0/gen1/gen2 collections {by[('agent', side, 'gc_collections_gen0_gen1_gen2')][-1]}, "
                           f"methods JIT-compiled in the window {by.get(('agent', side, 'jit_methods_compiled_in_window'), ['?'])[-1]} (last round).")
        out += profile_lines(results, "agent", "the agent (two scrapes)")
        sections["agent"] = out

    if sides["gateway"]:
        out = [f"Run {today}: `{command}`", "", "```", machine_text, "```", "",
               f"Medians over {rounds} round(s) (range in brackets). Samples delivered = the increase of Prometheus' "
               "`prometheus_tsdb_head_samples_appended_total` (the same Prometheus for every side), CPU = user + system "
               "seconds of the side's process from /proc over the measured window (after the `--warmup-seconds` warm-up), "
               "peak RSS = VmHWM over the measured window (reset at its start); start-up peak = VmHWM over start-up and the "
               "warm-up; the load tool column is the last round's.", "",
               "| side | CPU s per million samples | points/s per core | peak RSS MiB | start-up peak MiB | samples delivered | out-of-order | load tool |",
               "|---|---|---|---|---|---|---|---|"]
        for side in sides["gateway"]:
            c = m("gateway", side, "cpu_s_per_million_samples")
            lg = by.get(("gateway", side, "loadgen"), [""])[-1]
            f = dict(kv.split("=", 1) for kv in lg.split() if "=" in kv)
            out.append(f"| {side} | {fmt(c, 2)}{s('gateway', side, 'cpu_s_per_million_samples')} | {fmt(1e6 / c if c else float('nan'), 0)} "
                       f"| {fmt(m('gateway', side, 'peak_rss_mib'), 0)}{s('gateway', side, 'peak_rss_mib')} "
                       f"| {fmt(m('gateway', side, 'startup_peak_rss_mib'), 0)} | {fmt(m('gateway', side, 'samples_delivered'), 0)} "
                       f"| {fmt(m('gateway', side, 'out_of_order_samples'), 0)} | accepted {f.get('accepted_per_s', '?')}/s, refused {f.get('refused_points', '?')}, "
                       f"p50 {f.get('latency_ms_p50', '?')} ms, p99 {f.get('p99', '?')} ms |")
        vm = m("gateway", "vmagent", "cpu_s_per_million_samples")
        out += ["", "Ratios (gateway ÷ vmagent) and targets (issues 8 and 4):", ""]
        for side, limit in (("gateway", 1.0), ("gateway + dedupe", 1.3)):
            if side not in sides["gateway"]:
                out.append(f"- **{side}**: not measured in this run (`--dedup off` or `on` measures one of the two gateway sides).")
                continue
            c = m("gateway", side, "cpu_s_per_million_samples")
            r = c / vm if vm else float("nan")
            rss = m("gateway", side, "peak_rss_mib")
            out.append(f"- **{side}**: CPU per million samples {fmt(r, 2)}× vmagent's (target ≤ {limit}×: **{'met' if r <= limit else 'missed'}**"
                       + ("" if r <= limit or r != r else f", {fmt((r / limit - 1) * 100, 0)} % over") + "); "
                       f"{fmt(1e6 / c if c else float('nan'), 0)} points per CPU-second (issue 4 target ≥ 250,000: **{'met' if c and 1e6 / c >= 250000 else 'missed'}**); "
                       f"peak RSS {fmt(rss, 0)} MiB vs vmagent {fmt(m('gateway', 'vmagent', 'peak_rss_mib'), 0)} MiB"
                       + (f" (issue 4 target < 150 MiB at 70,000 points/s: **{'met' if rss < 150 else 'missed'}**)" if "--rate 70000 " in command + " " else "") + ".")
        profiled = [side for side in sides["gateway"] if by.get(("gateway", side, "alloc_bytes_per_sample"))]
        if profiled:
            out += ["", "dotnet-counters over the measured window (`--profile`):", ""]
            for side in profiled:
                out.append(f"- **{side}**: {fmt(m('gateway', side, 'alloc_bytes_per_sample'), 0)} bytes allocated per delivered sample; "
                           f"GC pause time (wall clock, inflated on a busy machine) {fmt(m('gateway', side, 'gc_pause_share_of_cpu') * 100, 0)} % of its CPU time; "
                           f"gen0/gen1/gen2 collections {by[('gateway', side, 'gc_collections_gen0_gen1_gen2')][-1]}, "
                           f"methods still being JIT-compiled in the window {by.get(('gateway', side, 'jit_methods_compiled_in_window'), ['?'])[-1]} (last round).")
        out += profile_lines(results, "gateway", "the gateway (20 s at the same rate)")
        sections["gateway"] = out

    for name, lines in sections.items():
        print(f"\n### {name}\n")
        print("\n".join(lines))
    if doc:
        write_doc(doc, sections)


def profile_lines(results, name, what):
    path = os.path.join(os.path.dirname(results), f"profile-{name}.txt")
    if not os.path.exists(path) or not open(path).read().strip():
        return []
    return ["", f"dotnet-trace CPU sample of {what}, top frames by inclusive time (`--profile`):", "",
            "```", open(path).read().rstrip(), "```"]


MARKERS = {
    "agent": ("<!-- bench-peers:agent:start -->", "<!-- bench-peers:agent:end -->",
              "## Agent vs postgres_exporter (scripts/bench-peers.sh --part agent)"),
    "gateway": ("<!-- bench-peers:gateway:start -->", "<!-- bench-peers:gateway:end -->",
                "## Gateway vs vmagent (scripts/bench-peers.sh --part gateway)"),
}


def write_doc(doc, sections):
    text = open(doc).read() if os.path.exists(doc) else "# Benchmarks\n"
    for name, lines in sections.items():
        start, end, heading = MARKERS[name]
        body = "\n".join([start, heading, "", *lines, end])
        pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
        if pattern.search(text):
            text = pattern.sub(lambda _: body, text)
        else:
            text = text.rstrip() + "\n\n" + body + "\n"
    with open(doc, "w") as f:
        f.write(text)


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "scrape-durations":
        scrape_durations()
    elif len(sys.argv) >= 4 and sys.argv[1] == "counters":
        counters(sys.argv[2], sys.argv[3])
    elif len(sys.argv) >= 4 and sys.argv[1] == "summary":
        doc = sys.argv[sys.argv.index("--write-docs") + 1] if "--write-docs" in sys.argv else None
        summary(sys.argv[2], sys.argv[3], doc)
    else:
        print(__doc__)
        sys.exit(2)
