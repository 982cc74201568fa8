#!/usr/bin/env bash
# Measures a following `simtally ingest --brokers` catching up on a backlog: the data of
# scripts/bench-ingest.sh produced to new topics, then a follower started with each set of
# flags given (default: holding on, then `--hold-minutes 0`), timed from its start to its
# last committed pass (it is stopped once 20 s pass without a commit).
#
#   scripts/bench-follow.sh [RECORDS]
#
# Writes docs/results/follow-RECORDS.tsv, which docs/performance.md's table is rendered from.
set -euo pipefail
cd "$(dirname "$0")/.."
records="${1:-1000000}"
source scripts/bench-setup.sh
work="$cache/bench-follow-work"
brokers="$(scripts/broker.sh start | tail -1)"
tag="follow-$(date +%s)"
"$bin" produce --brokers "$brokers" --usage-topic "$tag-usage" --events-topic "$tag-events" \
  --partitions 4 --usage "$data/usage.ndjson" --events "$data/events.ndjson"

catch_up() {
  local label="$1"; shift
  rm -rf "$work" && mkdir -p "$work"
  local log="$work/follower.log"
  local start
  start="$(date +%s.%N)"
  "$bin" ingest --brokers "$brokers" --usage-topic "$tag-usage" --events-topic "$tag-events" \
    --group "$tag-$label" --pass-seconds 1 --lake "$work/lake" --log simtally=info "$@" \
    2> "$log" &
  local pid=$! previous=-1 quiet=0 passes
  while [ "$quiet" -lt 4 ]; do
    sleep 5
    passes="$(grep -c "pass committed" "$log" || true)"
    if [ "$passes" -gt 0 ] && [ "$passes" = "$previous" ]; then quiet=$((quiet + 1)); else quiet=0; fi
    previous="$passes"
  done
  kill -TERM "$pid"; wait "$pid" || true
  grep "pass committed" "$log" | python3 -c '
import sys, datetime, re
start, label = float(sys.argv[1]), sys.argv[2]
lines = [re.sub(r"\x1b\[[0-9;]*m", "", l) for l in sys.stdin]
last = datetime.datetime.fromisoformat(lines[-1].split()[0].replace("Z", "+00:00")).timestamp()
field = lambda name: [int(m) for l in lines for m in re.findall(name + r"=(\d+)", l)]
records, held = sum(field("records")), max(field("held"))
print(f"{label}: {last - start:.1f} s to the last commit, {records} records, "
      f"{len(lines)} passes, at most {held} held in a pass")
with open(sys.argv[3], "a") as out:
    out.write(f"{label}\t{last - start:.1f}\t{records}\t{len(lines)}\t{held}\n")
' "$start" "$label" "$results"
}

results="$work.tsv"
echo -e "label\tseconds\trecords\tpasses\tmost_held" > "$results"

catch_up holding
catch_up no-holding --hold-minutes 0
cp "$results" "docs/results/follow-$records.tsv"
python3 scripts/perf_tables.py
echo "written: docs/results/follow-$records.tsv, docs/performance.md"
