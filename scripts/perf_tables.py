#!/usr/bin/env python3
"""The tables of docs/performance.md, rendered from the bench scripts' result files.

A table the page takes from a result file follows a marker line

    <!-- results KIND FILE -->

and ends at the first line that is not a table row. Its header row and separator are
written by hand (they name the columns); every row under them is rendered here from FILE
(under docs/results/, where the bench scripts copy what they measured). KIND is one of
`ingest` (scripts/bench-ingest.sh), `scale-days`, `scale-queries`, `scale-reports`
(scripts/bench-scale.sh), `live` and `live-followers` (scripts/bench-live.sh; FILE may be a
glob, a row per file), `pipeline` (scripts/bench-pipeline.sh), `serve`
(scripts/bench-serve.sh), `kafka` (scripts/bench-kafka.sh; a glob, a row per file) and
`kafka-before` (its before/after rounds), `serve-before` (bench-serve.sh's before/after
runs), `follow` (scripts/bench-follow.sh), `invoice`
(scripts/bench-invoice.sh).

    python3 scripts/perf_tables.py          # rewrites the page
    python3 scripts/perf_tables.py --check  # exits 1 if the page differs (CI)
"""

import json
import re
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "performance.md"
MARKER = re.compile(r"^<!-- results (\S+) (\S+) -->$")


def rows(path):
    """The tab-separated lines of a result file as dicts; the header is its first line."""
    lines = [l.split("\t") for l in path.read_text().splitlines() if l.strip()]
    header = lines[0]
    return [dict(zip(header, l)) for l in lines[1:]]


def runs(path, prefix):
    """The rows named `prefix-N` (N a run number)."""
    return [r for r in rows(path) if re.fullmatch(re.escape(prefix) + r"-\d+", r[next(iter(r))])]


def secs(value):
    return f"{value:.2f} s" if value < 1 else f"{value:.1f} s"


def span(values, fmt):
    low, high = min(values), max(values)
    return fmt(low) if fmt(low) == fmt(high) else f"{fmt(low).split(' ')[0]}-{fmt(high)}"


def mib(value):
    return f"{value:,.0f} MiB"


def ms(value):
    return f"{float(value):,.0f} ms"


def numbered(pattern, number):
    """The files matching `pattern` (a path under ROOT with a glob), in the order of
    `number(path)`."""
    return sorted(ROOT.glob(str(pattern.relative_to(ROOT))), key=number)


def ingest(path):
    def of(name):
        r = runs(path, name)
        return (
            statistics.median(float(x["seconds"]) for x in r),
            [float(x["cpu_seconds"]) for x in r],
            [float(x["peak_MiB"]) for x in r],
        )

    duck = of("duckdb")
    cpu = lambda v: f"{v:.2f} s"
    line = lambda label, sim: (
        f"| {label} | {sim[0]:.3f} s (**{duck[0] / sim[0]:.2f}x**; {sim[0] / duck[0]:.2f} of "
        f"DuckDB's time) | {span(sim[1], cpu)} | {span(sim[2], mib)} |"
    )
    table = [f"| DuckDB reference | {duck[0]:.3f} s | {span(duck[1], cpu)} | {span(duck[2], mib)} |"]
    # SIMTALLY_BEFORE: an older binary, alternated with the other two in the same run.
    if runs(path, "before"):
        table.append(line("simtally before (`SIMTALLY_BEFORE`)", of("before")))
    return table + [line("simtally", of("simtally"))]


def scale_days(path):
    per_day = int(path.stem.rsplit("-", 1)[1])
    table = rows(path)
    days = [r for r in table if r["step"].startswith("day-")]
    last = len(days)
    value = lambda r, k: float(r[k])
    second, final = days[1], days[-1]
    later = days[1:]
    wall = [value(r, "seconds") for r in later]
    peak = [value(r, "peak_MiB") for r in later]
    added = sorted({int(r["files_added"]) for r in later})
    added = f"{added[0]}" if len(added) == 1 else f"{added[0]}-{added[-1]}"
    out = [
        f"| day 1 (with the SIM events) | {secs(value(days[0], 'seconds'))} | "
        f"{mib(value(days[0], 'peak_MiB'))} | {days[0]['files_added']} |",
        f"| day 2 | {secs(value(second, 'seconds'))} | {mib(value(second, 'peak_MiB'))} | "
        f"{second['files_added']} |",
        f"| days 2-{last}: median (range) | {secs(statistics.median(wall))} ({span(wall, secs)}), "
        f"{per_day / statistics.median(wall):,.0f} records/s | {mib(statistics.median(peak))} "
        f"({span(peak, mib)}) | {added} each |",
        f"| day {last} | {secs(value(final, 'seconds'))} (**{value(final, 'seconds') / value(second, 'seconds'):.2f}x** "
        f"day 2) | {mib(value(final, 'peak_MiB'))} (**{value(final, 'peak_MiB') / value(second, 'peak_MiB'):.2f}x** "
        f"day 2) | {final['files_added']} ({final['usage_files']} files, "
        f"{int(final['usage_MiB']):,} MiB in `usage`) |",
    ]
    again = {day: [r for r in table if re.fullmatch(rf"again-day-{day}-\d+", r["step"])] for day in (2, last)}
    if again[2] and again[last]:
        median = lambda day, k: statistics.median(value(r, k) for r in again[day])
        ranged = lambda day, k, fmt: span([value(r, k) for r in again[day]], fmt)
        out.append(
            f"| day 2 and day {last} again, alternated ({len(again[2])} each): median (range) | "
            f"{secs(median(2, 'seconds'))} ({ranged(2, 'seconds', secs)}) and "
            f"{secs(median(last, 'seconds'))} ({ranged(last, 'seconds', secs)}): "
            f"**{median(last, 'seconds') / median(2, 'seconds'):.2f}x** | "
            f"{mib(median(2, 'peak_MiB'))} ({ranged(2, 'peak_MiB', mib)}) and "
            f"{mib(median(last, 'peak_MiB'))} ({ranged(last, 'peak_MiB', mib)}): "
            f"**{median(last, 'peak_MiB') / median(2, 'peak_MiB'):.2f}x** | |"
        )
    files = int(final["usage_files"])
    maintained = [r for r in table if r["step"] == "maintain"]
    if maintained:
        first = maintained[0]
        out.append(
            f"| `lake maintain` after day {last} | {secs(value(first, 'seconds'))} | "
            f"{mib(value(first, 'peak_MiB'))} | {files} -> {first['usage_files']} files "
            f"({int(first['usage_MiB']):,} MiB) |"
        )
        files = int(first["usage_files"])
    again = maintained[1:]
    if again:
        end = again[-1]
        out.append(
            f"| `lake maintain` again until nothing merges ({len(again)} runs) | "
            f"{span([value(r, 'seconds') for r in again], secs)} each | at most "
            f"{mib(max(value(r, 'peak_MiB') for r in again))} | {files} -> "
            f"{end['usage_files']} files ({int(end['usage_MiB']):,} MiB) |"
        )
    return out


def scale_queries(path):
    out = []
    for query, label in [
        ("one-workspace-month", "one Workspace, one month"),
        ("full-aggregation", "full aggregation"),
    ]:
        ours = [float(r["seconds"]) for r in runs(path, f"simtally-{query}")]
        theirs = [float(r["seconds"]) for r in runs(path, f"duckdb-{query}")]
        fmt = lambda v: f"{v:.3f} s"
        out.append(f"| {label} | {span(ours, fmt)} | {span(theirs, fmt)} |")
    return out


def scale_reports(path):
    table = rows(path)
    names = []
    for r in table:
        m = re.fullmatch(r"report-(.+)-(one-workspace|all|two)-\d+", r["step"])
        if m and m.group(1) not in names:
            names.append(m.group(1))
    fmt = lambda v: f"{v:.3f} s" if v < 1 else f"{v:.1f} s"
    gib = lambda v: f"{v / 1024:.1f} GiB"
    out = []
    for name in names:
        cells = []
        for scope in ["one-workspace", "all"]:
            r = runs(path, f"report-{name}-{scope}")
            if not r:
                r = runs(path, f"report-{name}-two") if scope == "one-workspace" else []
            if not r:
                cells.append("")
                continue
            wall = span([float(x["seconds"]) for x in r], fmt)
            peak = [float(x["peak_MiB"]) for x in r]
            cells.append(wall if scope == "one-workspace" else f"{wall}, {span(peak, gib)}")
        out.append(f"| `{name}` | {cells[0]} | {cells[1]} |")
    return out


def live(path):
    """One follower's run (scripts/bench-live.sh)."""
    run = json.loads(path.read_text())
    most, end = run["active_files_max"], run["active_files_end"]
    files = ", ".join(f"`{t}` {most[t]} / {end[t]}" for t in ["usage", "quarantine", "sim_events"])
    return [
        f"| usage messages produced, not in the lake | {run['usage_messages']:,}, {run['not_in_lake']} |",
        f"| passes committed (dropped) | {run['passes']} ({run['dropped']}) |",
        f"| freshness p50 / p99 / max | **{run['freshness_p50']:.1f} s / {run['freshness_p99']:.1f} s** "
        f"/ {run['freshness_max']:.1f} s (after the first minute: "
        f"{run['after_first_minute_p50']:.1f} s / {run['after_first_minute_p99']:.1f} s) |",
        f"| active files, most / at the end | {files} |",
    ]


def live_followers(pattern):
    """Runs of 1, 2, 4... followers (scripts/bench-live.sh), one file each, a row each; a
    file exists only for a run whose lake was exact (the script stops before it otherwise)."""
    out = []
    for path in numbered(pattern, lambda p: int(p.stem.split("-")[1][:-1])):
        run = json.loads(path.read_text())
        followers = int(path.stem.split("-")[1][:-1])
        out.append(
            f"| {followers} | {run['passes']} | {run['dropped']} | {run['retries']} | "
            f"{run['freshness_p50']:.1f} s / {run['freshness_p99']:.1f} s | "
            f"{run['active_files_max']['usage']} | exact |"
        )
    return out


def thousands(value):
    """A rate to the nearest thousand: the digits below are noise."""
    return f"{round(float(value), -3):,.0f}"


def pipeline(path):
    """The criterion bench of the pipeline's core (scripts/bench-pipeline.sh)."""
    what = {
        "decode": "decode (one thread)",
        "decode_each_line_alone": "decode, each line alone, no learnt shape (one thread)",
        "decode_and_attribute": "decode and attribute (one thread)",
        "ingest_one_decode_thread": "whole ingest, one decode thread",
        "ingest_all_cores": "whole ingest, a decode thread per core",
    }
    return [
        f"| {what.get(r['bench'], r['bench'])} | {thousands(r['records_per_second'])} | "
        f"{thousands(r['records_per_second_per_core'])} ({r['cores']} "
        f"{'core' if r['cores'] == '1' else 'cores'}) |"
        for r in rows(path)
    ]


def median_of(path, prefix, key="seconds"):
    return statistics.median(float(r[key]) for r in runs(path, prefix))


def serve(path):
    """Clients against PostgreSQL and simtally, alone and with a hostile client."""
    table = {(r["target"], r["hostile"] == "True"): r for r in rows(path)}
    pg = table[("postgres", False)]
    label = {
        "postgres": "PostgreSQL",
        "simtally-pg": "simtally, Postgres endpoint",
        "simtally-http": "simtally, HTTP",
    }
    out = []
    for hostile in (False, True):
        for target in ("postgres", "simtally-pg", "simtally-http"):
            r = table[(target, hostile)]
            rps, p99 = float(r["requests_per_s"]), float(r["p99_ms"])
            base = table[(target, False)]
            if not hostile and target == "postgres":
                rate, tail = f"{rps:.1f}", ms(p99)
            elif not hostile:
                rate = f"{rps:.1f} (**{rps / float(pg['requests_per_s']):.2f}x**)"
                tail = f"{ms(p99)} (**{p99 / float(pg['p99_ms']):.2f}x**)"
            else:
                rate = f"{rps:.1f}"
                tail = f"{ms(p99)} (**{p99 / float(base['p99_ms']):.2f}x** its baseline)"
            name = f"with the hostile client: {label[target]}" if hostile else label[target]
            out.append(f"| {name} | {rate} | {ms(r['p50_ms'])} | {tail} |")
    errors = sum(int(r["errors"]) for r in table.values())
    out.append(f"| errors, all runs | {errors} | | |")
    return out


def serve_before(path):
    """The same clients against the binary before a change and after it, one after the other."""
    table = {r["target"]: r for r in rows(path) if r["hostile"] == "False"}
    out = []
    for after, before, label in [
        ("simtally-pg", "before-pg", "Postgres endpoint"),
        ("simtally-http", "before-http", "HTTP"),
    ]:
        now, then = table[after], table[before]
        rate = float(now["requests_per_s"]) / float(then["requests_per_s"])
        tail = float(now["p99_ms"]) / float(then["p99_ms"])
        out.append(
            f"| {label} | {then['requests_per_s']}, p99 {ms(then['p99_ms'])} | "
            f"{now['requests_per_s']}, p99 {ms(now['p99_ms'])} | **{rate:.2f}x**, p99 {tail:.2f}x |"
        )
    return out


def kafka(pattern):
    """A row per record count: the consume-and-discard loop against simtally, medians."""
    out = []
    for path in numbered(pattern, lambda p: int(p.stem.split("-")[1])):
        records = int(path.stem.split("-")[1])
        loop, ours = median_of(path, "consume-discard"), median_of(path, "simtally")
        cpu, peak = median_of(path, "simtally", "cpu_seconds"), median_of(path, "simtally", "peak_MiB")
        n = len(runs(path, "simtally"))
        out.append(
            f"| {records / 1e6:g} M records ({n} {'run' if n == 1 else 'runs'}) | {loop:.1f} s | "
            f"{ours:.1f} s | **{loop / ours:.2f}** of the loop's rate | {cpu:.1f} s | {mib(peak)} |"
        )
    return out


def kafka_before(path):
    """The same topics read by the binary before a change and after it, alternating."""
    out = []
    for prefix, label in [("before", "before"), ("simtally", "after")]:
        r = runs(path, prefix)
        wall = [float(x["seconds"]) for x in r]
        cpu = [float(x["cpu_seconds"]) for x in r]
        peak = [float(x["peak_MiB"]) for x in r]
        out.append(
            f"| {label} | {statistics.median(wall):.1f} s ({span(wall, secs)}) | "
            f"{statistics.median(cpu):.1f} s | {mib(statistics.median(peak))} |"
        )
    ratio = median_of(path, "before") / median_of(path, "simtally")
    out.append(f"| after against before | **{ratio:.2f}x** the rate | | |")
    return out


def follow(path):
    """A follower catching up on a backlog, with and without holding usage for its events."""
    return [
        f"| {r['label']} | {float(r['seconds']):.1f} s | {int(r['records']):,} | {r['passes']} | "
        f"{int(r['most_held']):,} |"
        for r in rows(path)
    ]


def invoice(path):
    """Drafts against the DuckDB floor, then issuing, reconciling and the next month."""
    workspaces = int(path.stem.split("-")[2][:-1])
    duck, draft = median_of(path, "duckdb"), median_of(path, "simtally-draft")
    peak = lambda prefix: mib(median_of(path, prefix, "peak_MiB"))
    n = len(runs(path, "duckdb"))
    out = [
        f"| DuckDB, usage lines only (median of {n}) | {secs(duck)} | {peak('duckdb')} |",
        f"| `simtally invoice`, {workspaces:,} drafts (median of {n}) | {secs(draft)} "
        f"(**{duck / draft:.2f}x** DuckDB) | {peak('simtally-draft')} |",
    ]
    steps = {
        "issue": "`simtally invoice --issue` (stores invoices and billed slice keys)",
        "reconcile": "`simtally reconcile` after the issue",
        "next-month-draft": "next month's drafts, with the adjustment check",
    }
    for r in rows(path):
        if r["run"] in steps:
            out.append(f"| {steps[r['run']]} | {secs(float(r['seconds']))} | {mib(float(r['peak_MiB']))} |")
    return out


KINDS = {
    "pipeline": pipeline,
    "live": live,
    "live-followers": live_followers,
    "ingest": ingest,
    "scale-days": scale_days,
    "scale-queries": scale_queries,
    "scale-reports": scale_reports,
    "serve": serve,
    "serve-before": serve_before,
    "kafka": kafka,
    "kafka-before": kafka_before,
    "follow": follow,
    "invoice": invoice,
}


def render(text):
    lines = text.split("\n")
    out, i = [], 0
    while i < len(lines):
        line = lines[i]
        out.append(line)
        i += 1
        marker = MARKER.match(line)
        if not marker:
            continue
        kind, file = marker.groups()
        header = lines[i : i + 2]
        if len(header) < 2 or not all(h.startswith("|") for h in header):
            sys.exit(f"{PAGE}: the marker for {file} is not followed by a table header")
        out.extend(header)
        i += 2
        while i < len(lines) and lines[i].startswith("|"):
            i += 1
        out.extend(KINDS[kind](ROOT / file))
    return "\n".join(out)


def main():
    text = PAGE.read_text()
    rendered = render(text)
    if "--check" in sys.argv[1:]:
        if rendered != text:
            sys.exit(
                f"{PAGE.relative_to(ROOT)} differs from its result files; "
                "run python3 scripts/perf_tables.py"
            )
        return
    PAGE.write_text(rendered)


if __name__ == "__main__":
    main()
