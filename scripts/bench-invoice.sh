#!/usr/bin/env bash
# Times `simtally invoice` (drafts for every Workspace), `invoice --issue` and `reconcile`
# for a month of RECORDS generated records, against DuckDB computing only the usage lines
# from the same Parquet files (scripts/duckdb_invoice_reference.py), alternating, in the
# same run. With WORKSPACES and SIMS: that many generated Workspaces and SIMs (a provider's
# scale: 3000 and 1000000); otherwise the five sample Workspaces and 20,000 SIMs. The price
# list (testdata/prices.toml) names a seller, so every invoice is also a tax document with
# its e-invoice XML and per-SIM annex.
#
#   scripts/bench-invoice.sh [RECORDS] [RUNS] [WORKSPACES] [SIMS]
#
# Writes $cache/bench-invoice[-WORKSPACESw].tsv and docs/results/invoice-RECORDS-WORKSPACESw.tsv,
# which docs/performance.md's tables are rendered from.
set -euo pipefail
cd "$(dirname "$0")/.."
records="${1:-1000000}"
runs="${2:-5}"
gen_workspaces="${3:-}"
gen_sims="${4:-20000}"
source scripts/bench-setup.sh
work="$cache/bench-invoice${gen_workspaces:+-${gen_workspaces}w}"
prices=testdata/prices.toml

rm -rf "$work" && mkdir -p "$work"
"$bin" ingest --no-progress --lake "$work/lake" --usage "$data/usage.ndjson" --events "$data/events.ndjson" > /dev/null
echo "lake: $(du -sh "$work/lake/usage" | cut -f1) of usage from $records records, ${gen_workspaces:-5} Workspaces, $gen_sims SIMs; machine: $(nproc) cores"
echo -e "run\tseconds\tpeak_MiB\tcpu_seconds"

for i in $(seq 1 "$runs"); do
  measure "duckdb-$i" "$cache/venv/bin/python" scripts/duckdb_invoice_reference.py "$work/lake" 2026-11 "$work/duckdb.csv"
  measure "simtally-draft-$i" "$bin" invoice --lake "$work/lake" --period 2026-11 --prices "$prices" --out "$work/drafts"
done | tee "$work.tsv"
awk -F'\t' -v ref=duckdb -v name="DuckDB (usage lines only)" -v goal=1 -f scripts/medians.awk "$work.tsv"

cp -r "$work/lake" "$work/lake-issued"
{
  measure "issue" "$bin" invoice --lake "$work/lake-issued" --period 2026-11 --prices "$prices" --out "$work/issued" --issue
  measure "reconcile" "$bin" reconcile --lake "$work/lake-issued" --period 2026-11 --prices "$prices"
  measure "next-month-draft" "$bin" invoice --lake "$work/lake-issued" --period 2026-12 --prices "$prices" --out "$work/next"
} | tee -a "$work.tsv"
echo "invoices issued: $(ls "$work/issued" | grep -c '\.json$'), e-invoices: $(ls "$work/issued" | grep -c '\.xml$')"
result="docs/results/invoice-$records-${gen_workspaces:-5}w.tsv"
{ echo -e "run\tseconds\tpeak_MiB\tcpu_seconds"; cat "$work.tsv"; } > "$result"
python3 scripts/perf_tables.py
echo "written: $result, docs/performance.md"
