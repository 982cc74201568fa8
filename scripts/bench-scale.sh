#!/usr/bin/env bash
# The lake at provider scale: WORKSPACES Workspaces, SIMS SIMs and RECORDS_PER_DAY usage
# records a day for DAYS days, ingested one day at a time into one growing lake (what a
# nightly job does). Prints per day: ingest wall time, peak memory, files `usage` gained and
# the files it lists; then `simtally lake maintain` (again until it merges nothing more, as
# hourly runs would have); then a one-Workspace month and the full
# aggregation, by `simtally query` (fresh processes) and by DuckDB over the Parquet files the
# Delta log lists; then the reports for one Workspace's month and for every Workspace.
#
#   scripts/bench-scale.sh [WORKSPACES] [DAYS] [RECORDS_PER_DAY] [SIMS] [zstd]
#
# `zstd` generates the day files zstd-compressed (what ingest then reads): the 100 M-record
# lake's 42 GB of NDJSON take about a tenth of that on disk.
# Then day 2 and the last day again, SCALE_REPEATS times each (default 5), alternated, each
# into a fresh copy of the lake it first went into: one sample of a day moves by a fifth
# from run to run on a shared machine, the ratio of the medians much less.
# Writes $cache/bench-scale-WORKSPACESw-DAYSd-RECORDS_PER_DAY.tsv, copies it to docs/results/
# and renders docs/performance.md's tables from it (scripts/perf_tables.py).
set -euo pipefail
cd "$(dirname "$0")/.."
workspaces="${1:-3000}"
days="${2:-30}"
per_day="${3:-100000}"
sims="${4:-100000}"
compressed="${5:-}"
repeats="${SCALE_REPEATS:-5}"
records=$((days * per_day))
gen_sims="$sims" gen_workspaces="$workspaces" gen_days="$days" gen_by_day=1
gen_zstd=$([ "$compressed" = zstd ] && echo 1 || true)
source scripts/bench-setup.sh
work="$cache/bench-scale"
rm -rf "$work" && mkdir -p "$work"
lake="$work/lake"
results="$cache/bench-scale-${workspaces}w-${days}d-${per_day}.tsv"
echo "$workspaces Workspaces, $sims SIMs, $per_day records a day, $days days; machine: $(nproc) cores"
echo -e "step\tseconds\tpeak_MiB\tcpu_seconds\tfiles_added\tusage_files\tusage_MiB" | tee "$results"
before=0
n=0
for day_file in "$data"/usage/*.ndjson*; do
  n=$((n + 1))
  events=()
  [ "$n" = 1 ] && events=(--events "$data/events.ndjson")
  if [ "$n" = 2 ] || [ "$n" = "$days" ]; then cp -a "$lake" "$work/before-day-$n"; fi
  line=$(measure "day-$n" "$bin" ingest --no-progress --lake "$lake" --usage "$day_file" "${events[@]}")
  read -r files bytes < <("$python" scripts/bench_scale.py files "$lake" usage)
  echo -e "$line\t$((files - before))\t$files\t$((bytes / 1048576))" | tee -a "$results"
  before=$files
done
day_files=("$data"/usage/*.ndjson*)
[ "$days" -ge 2 ] || repeats=0
for round in $(seq 1 "$repeats"); do
  for day in 2 "$days"; do
    rm -rf "$work/again" && cp -a "$work/before-day-$day" "$work/again"
    line=$(measure "again-day-$day-$round" "$bin" ingest --no-progress --lake "$work/again" \
      --usage "${day_files[$((day - 1))]}")
    echo -e "$line" | tee -a "$results"
  done
done
rm -rf "$work/again" "$work/before-day-2" "$work/before-day-$days"
line=$(measure maintain "$bin" lake maintain --lake "$lake")
read -r files bytes < <("$python" scripts/bench_scale.py files "$lake" usage)
echo -e "$line\t\t$files\t$((bytes / 1048576))" | tee -a "$results"
# What hourly runs would have done over the month: one run merges at most 256 MiB of small
# files, so it runs again until the count of files stops falling.
round=0
while :; do
  round=$((round + 1))
  line=$(measure "maintain-again-$round" "$bin" lake maintain --lake "$lake")
  read -r now bytes < <("$python" scripts/bench_scale.py files "$lake" usage)
  echo -e "$line\t\t$now\t$((bytes / 1048576))" | tee -a "$results"
  [ "$now" -lt "$files" ] || break
  files=$now
done

from=$(basename "$(ls "$data"/usage/*.ndjson* | head -1)" | cut -c1-10)
scripts/bench-scale-queries.sh "$lake" "$workspaces" "$from" "$days" | tee -a "$results"
cp "$results" "docs/results/scale-${workspaces}w-${days}d-${per_day}.tsv"
python3 scripts/perf_tables.py
echo "written: docs/results/scale-${workspaces}w-${days}d-${per_day}.tsv, docs/performance.md"
