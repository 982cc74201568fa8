#!/usr/bin/env bash
# Times `simtally invoice` (drafts for every Workspace), `invoice --issue` and `reconcile`
# for a month of the 1,000,000-record benchmark data set, against DuckDB computing only the
# usage lines from the same Parquet files (scripts/duckdb_invoice_reference.py), alternating,
# in the same run.
#
#   scripts/bench-invoice.sh [RECORDS] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
records="${1:-1000000}"
runs="${2:-5}"
cache="$HOME/.cache/simtally"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/target}"
data="$cache/bench-data/$records"
work="$cache/bench-invoice"
prices=testdata/prices.toml

cargo build --release --locked --quiet
bin="$CARGO_TARGET_DIR/release/simtally"
if [ ! -x "$cache/venv/bin/python" ]; then
  python3 -m venv "$cache/venv"
fi
"$cache/venv/bin/python" -c 'import duckdb' 2>/dev/null || "$cache/venv/bin/pip" install --quiet duckdb
if [ ! -f "$data/expected.json" ]; then
  "$bin" generate --seed 1 --sims 20000 --records "$records" --days 30 --out "$data"
fi

rm -rf "$work" && mkdir -p "$work"
"$bin" ingest --no-progress --lake "$work/lake" --usage "$data/usage.ndjson" --events "$data/events.ndjson" > /dev/null
echo "lake: $(du -sh "$work/lake/usage" | cut -f1) of usage from $records records; machine: $(nproc) cores"
echo -e "run\tseconds\tpeak_MiB\tcpu_seconds"

measure() { "$cache/venv/bin/python" scripts/measure.py "$@"; }
for i in $(seq 1 "$runs"); do
  measure "duckdb-$i" "$cache/venv/bin/python" scripts/duckdb_invoice_reference.py "$work/lake" 2026-11 "$work/duckdb.csv"
  measure "simtally-draft-$i" "$bin" invoice --lake "$work/lake" --period 2026-11 --prices "$prices" --out "$work/drafts"
done | tee "$work.tsv"
awk -F'\t' -v ref=duckdb -v name="DuckDB (usage lines only)" -v goal=1 -f scripts/medians.awk "$work.tsv"

cp -r "$work/lake" "$work/lake-issued"
measure "issue" "$bin" invoice --lake "$work/lake-issued" --period 2026-11 --prices "$prices" --out "$work/issued" --issue
measure "reconcile" "$bin" reconcile --lake "$work/lake-issued" --period 2026-11 --prices "$prices"
measure "next-month-draft" "$bin" invoice --lake "$work/lake-issued" --period 2026-12 --prices "$prices" --out "$work/next"
