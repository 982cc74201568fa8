#!/usr/bin/env bash
# Times `simtally ingest` of 1,000,000 generated usage records against the DuckDB reference
# (scripts/duckdb_reference.py) on the same files, in the same run, and prints the ratio.
#
#   scripts/bench-ingest.sh [RECORDS] [RUNS]
#
# Data and the DuckDB venv are cached under ~/.cache/simtally.
set -euo pipefail
cd "$(dirname "$0")/.."
records="${1:-1000000}"
runs="${2:-3}"
cache="$HOME/.cache/simtally"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/target}"
data="$cache/bench-data/$records"
work="$cache/bench-work"

cargo build --release --locked --quiet
bin="$CARGO_TARGET_DIR/release/simtally"

if [ ! -x "$cache/venv/bin/python" ]; then
  python3 -m venv "$cache/venv"
fi
"$cache/venv/bin/python" -c 'import duckdb' 2>/dev/null || "$cache/venv/bin/pip" install --quiet duckdb

if [ ! -f "$data/expected.json" ]; then
  "$bin" generate --seed 1 --sims 20000 --records "$records" --days 30 --out "$data"
fi
echo "data: $(du -sh "$data/usage.ndjson" | cut -f1) usage, $(wc -l < "$data/events.ndjson") events; machine: $(nproc) cores"
echo -e "run\tseconds\tpeak_MiB\tcpu_seconds"

measure() { "$cache/venv/bin/python" scripts/measure.py "$@"; }
for i in $(seq 1 "$runs"); do
  rm -rf "$work" && mkdir -p "$work"
  # Each run starts with no dirty pages of the previous run left to write back.
  sync
  measure "duckdb-$i" "$cache/venv/bin/python" scripts/duckdb_reference.py \
    "$data/usage.ndjson" "$data/events.ndjson" "$work/duckdb"
  sync
  measure "simtally-$i" "$bin" ingest --no-progress --lake "$work/lake" \
    --usage "$data/usage.ndjson" --events "$data/events.ndjson"
done | tee "$work.tsv"

awk -F'\t' -v ref=duckdb -v name="the DuckDB reference" -v goal=1.5 -f scripts/medians.awk "$work.tsv"
