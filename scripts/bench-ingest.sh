#!/usr/bin/env bash
# Times `simtally ingest` of 1,000,000 generated usage records against the DuckDB reference
# (scripts/duckdb_reference.py) on the same files, in the same run, and prints the ratio.
#
#   scripts/bench-ingest.sh [RECORDS] [RUNS]
#
# SIMTALLY_BEFORE=PATH also times an older simtally binary on the same files, in the same
# run (rows `before-N`), so that a change is measured against the build before it.
#
# Data and the DuckDB venv are cached under ~/.cache/simtally. Writes
# docs/results/ingest-RECORDS.tsv and renders docs/performance.md's tables from it.
set -euo pipefail
cd "$(dirname "$0")/.."
records="${1:-1000000}"
runs="${2:-3}"
source scripts/bench-setup.sh
work="$cache/bench-work"
echo "data: $(du -sh "$data/usage.ndjson" | cut -f1) usage, $(wc -l < "$data/events.ndjson") events; machine: $(nproc) cores"
echo -e "run\tseconds\tpeak_MiB\tcpu_seconds"

for i in $(seq 1 "$runs"); do
  rm -rf "$work" && mkdir -p "$work"
  # Each run starts with no dirty pages of the previous run left to write back.
  sync
  measure "duckdb-$i" "$cache/venv/bin/python" scripts/duckdb_reference.py \
    "$data/usage.ndjson" "$data/events.ndjson" "$work/duckdb"
  sync
  measure "simtally-$i" "$bin" ingest --no-progress --lake "$work/lake" \
    --usage "$data/usage.ndjson" --events "$data/events.ndjson"
  if [ -n "${SIMTALLY_BEFORE:-}" ]; then
    rm -rf "$work/before" && sync
    measure "before-$i" "$SIMTALLY_BEFORE" ingest --no-progress --lake "$work/before" \
      --usage "$data/usage.ndjson" --events "$data/events.ndjson"
  fi
done | tee "$work.tsv"

awk -F'\t' -v ref=duckdb -v name="the DuckDB reference" -v goal=1.5 -f scripts/medians.awk "$work.tsv"
# The result file docs/performance.md's table is rendered from (scripts/perf_tables.py).
{ echo -e "run\tseconds\tpeak_MiB\tcpu_seconds"; cat "$work.tsv"; } > "docs/results/ingest-$records.tsv"
python3 scripts/perf_tables.py
echo "written: docs/results/ingest-$records.tsv, docs/performance.md"
