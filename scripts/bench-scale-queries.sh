#!/usr/bin/env bash
# The query and report steps of scripts/bench-scale.sh on an existing lake, as fresh
# processes: a one-Workspace month and the full aggregation by `simtally query` and by
# DuckDB over the Parquet files the Delta log lists (three rounds), then the reports for one
# Workspace's month and for every Workspace (two rounds). Prints a result line per step
# (step, seconds, peak MiB, CPU seconds); the answers go to standard error.
#
#   scripts/bench-scale-queries.sh LAKE WORKSPACES FROM DAYS
#
# bench-scale.sh runs it after its ingests; run alone, it measures a lake again, e.g. after
# more `lake maintain` runs:
#
#   { echo -e "step\tseconds\tpeak_MiB\tcpu_seconds"
#     scripts/bench-scale-queries.sh ~/.cache/simtally/bench-scale/lake 3000 2026-11-01 30
#   } > docs/results/scale-3000w-30d-3333334-compacted.tsv
set -euo pipefail
cd "$(dirname "$0")/.."
lake="$1"
workspaces="$2"
from="$3"
days="$4"
source scripts/bench-setup.sh
listing="$(dirname "$lake")/usage-files.txt"
# Queries: a Workspace in the middle, the first month of data.
workspace=$((1000 + workspaces / 2))
to=$(date -d "$from + $((days - 1)) days" +%F)
one="SELECT COUNT(*), SUM(cost) FROM usage WHERE workspace_id = $workspace AND usage_date BETWEEN DATE '$from' AND DATE '$to'"
full="SELECT COUNT(*), SUM(cost) FROM usage"
"$python" scripts/bench_scale.py list "$lake" usage "$listing"
# Read once, untimed, so that neither tool pays for a cold page cache by running first.
xargs cat < "$listing" > /dev/null
for round in 1 2 3; do
  measure "simtally-one-workspace-month-$round" "$bin" query --lake "$lake" "$one"
  measure "duckdb-one-workspace-month-$round" "$python" scripts/bench_scale.py duckdb \
    "$listing" one "$workspace" "$from" "$to"
  measure "simtally-full-aggregation-$round" "$bin" query --lake "$lake" "$full"
  measure "duckdb-full-aggregation-$round" "$python" scripts/bench_scale.py duckdb \
    "$listing" full "$workspace" "$from" "$to"
done
{
  echo "answers: simtally, then DuckDB"
  "$bin" query --lake "$lake" --format csv "$one" | tail -1
  "$python" scripts/bench_scale.py duckdb "$listing" one "$workspace" "$from" "$to"
  "$bin" query --lake "$lake" --format csv "$full" | tail -1
  "$python" scripts/bench_scale.py duckdb "$listing" full "$workspace" "$from" "$to"
} >&2

# The reports, as fresh processes: for the same Workspace and month, then over every
# Workspace (twice each).
second=$((workspace + 1))
for round in 1 2; do
  for report in workspace-usage networks top-sims; do
    measure "report-$report-one-workspace-$round" "$bin" report "$report" --lake "$lake" \
      --workspace "$workspace" --from "$from" --to "$to"
    measure "report-$report-all-$round" "$bin" report "$report" --lake "$lake" \
      --from "$from" --to "$to"
  done
  measure "report-centralized-two-$round" "$bin" report centralized --lake "$lake" \
    --workspace "$workspace" --workspace "$second" --from "$from" --to "$to"
done
