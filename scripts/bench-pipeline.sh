#!/usr/bin/env bash
# The criterion bench of the pipeline's core (benches/pipeline.rs) on 200,000 generated
# records: records per second decoding, decoding and attributing (one thread), and whole
# ingests into a fresh local lake with one decode thread and with one per core. Writes
# docs/results/pipeline.tsv (median records per second, and per core) and renders
# docs/performance.md's table from it (scripts/perf_tables.py).
#
#   scripts/bench-pipeline.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/simtally/target-release}"
cargo bench --locked --bench pipeline -- --noplot
python3 - "$CARGO_TARGET_DIR/criterion/pipeline" "$(nproc)" > docs/results/pipeline.tsv <<'PY'
import json, sys
from pathlib import Path
base, cores = Path(sys.argv[1]), int(sys.argv[2])
# Threads each bench keeps busy: the ingests run encoders and the collector beside their
# decode threads, so "per core" divides by the machine's cores for both.
benches = [("decode", 1), ("decode_each_line_alone", 1), ("decode_and_attribute", 1),
           ("ingest_one_decode_thread", cores), ("ingest_all_cores", cores)]
print("bench\trecords\tmedian_seconds\trecords_per_second\tcores\trecords_per_second_per_core")
for name, used in benches:
    records = json.loads((base / name / "new" / "benchmark.json").read_text())["throughput"]["Elements"]
    median = json.loads((base / name / "new" / "estimates.json").read_text())["median"]["point_estimate"] / 1e9
    rate = records / median
    print(f"{name}\t{records}\t{median:.6f}\t{rate:.0f}\t{used}\t{rate / used:.0f}")
PY
python3 scripts/perf_tables.py
echo "written: docs/results/pipeline.tsv, docs/performance.md"
