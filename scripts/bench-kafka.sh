#!/usr/bin/env bash
# Measures `simtally ingest --brokers --exit-at-end` against the practical limit on this
# machine: a plain rdkafka loop that reads the same usage topic and discards every message
# (examples/consume_discard.rs), in the same run, alternating, and prints the ratio.
#
#   scripts/bench-kafka.sh [RECORDS] [RUNS]
#
# With SIMTALLY_BEFORE=/path/to/an/older/simtally, each round also runs that binary
# (labelled `before`) on the same topics, for a before/after comparison in one run.
#
# Writes docs/results/kafka-RECORDS.tsv (and kafka-before-RECORDS.tsv with SIMTALLY_BEFORE),
# which docs/performance.md's tables are rendered from.
#
# Uses the broker of scripts/broker.sh (started if needed) and the data of
# scripts/bench-ingest.sh (generated if needed), both cached under ~/.cache/simtally.
set -euo pipefail
cd "$(dirname "$0")/.."
records="${1:-1000000}"
runs="${2:-3}"
source scripts/bench-setup.sh
# Its own build: an example links the dev-dependencies, so it is not built with the binary.
cargo build --release --locked --quiet --example consume_discard
work="$cache/bench-kafka-work"
loop="$CARGO_TARGET_DIR/release/examples/consume_discard"
brokers="$(scripts/broker.sh start | tail -1)"
tag="bench-$(date +%s)"
usage_topic="$tag-usage"
events_topic="$tag-events"
echo "broker $brokers; producing $(wc -l < "$data/usage.ndjson") usage lines and $(wc -l < "$data/events.ndjson") events"
echo -e "step\tseconds\tpeak_MiB\tcpu_seconds"
"$python" scripts/measure.py produce "$bin" produce --brokers "$brokers" \
  --usage-topic "$usage_topic" --events-topic "$events_topic" --partitions 4 \
  --usage "$data/usage.ndjson" --events "$data/events.ndjson"

echo -e "run\tseconds\tpeak_MiB\tcpu_seconds"
for i in $(seq 1 "$runs"); do
  rm -rf "$work" && mkdir -p "$work"
  sync
  "$python" scripts/measure.py "consume-discard-$i" "$loop" "$brokers" "$usage_topic"
  sync
  "$python" scripts/measure.py "simtally-$i" "$bin" ingest --no-progress --exit-at-end \
    --brokers "$brokers" --usage-topic "$usage_topic" --events-topic "$events_topic" \
    --lake "$work/lake"
  if [ -n "${SIMTALLY_BEFORE:-}" ]; then
    rm -rf "$work/lake-before"
    sync
    "$python" scripts/measure.py "before-$i" "$SIMTALLY_BEFORE" ingest --no-progress \
      --exit-at-end --brokers "$brokers" --usage-topic "$usage_topic" \
      --events-topic "$events_topic" --lake "$work/lake-before"
  fi
done | tee "$work.tsv"

awk -F'\t' -v ref=consume-discard -v name="the consume-and-discard loop" -v goal=0.7 -f scripts/medians.awk "$work.tsv"
if [ -n "${SIMTALLY_BEFORE:-}" ]; then
  awk -F'\t' -v ref=before -v name="the binary before" -v goal=1 -f scripts/medians.awk "$work.tsv"
fi
header="run\tseconds\tpeak_MiB\tcpu_seconds"
{ echo -e "$header"; cat "$work.tsv"; } > "docs/results/kafka-$records.tsv"
if [ -n "${SIMTALLY_BEFORE:-}" ]; then
  cp "docs/results/kafka-$records.tsv" "docs/results/kafka-before-$records.tsv"
fi
python3 scripts/perf_tables.py
echo "written: docs/results/kafka-*$records.tsv, docs/performance.md"
