#!/usr/bin/env bash
# Followers on a live feed: FOLLOWERS `simtally ingest --brokers` in one consumer group,
# 5-second passes, writing one lake, while scripts/bench_live.py produces a generated data set
# of 3,000 Workspaces and 100,000 SIMs at RATE messages a second for MINUTES minutes, in time
# order, and reads the lake's Delta log for the positions each pass records. `simtally lake
# maintain` runs every 5 minutes beside them, as a scheduler would.
#
#   scripts/bench-live.sh [MINUTES] [RATE] [FOLLOWERS] [local|s3] [chaos]
#
# With `s3` the lake is in a bucket of a local S3 server (moto, as the tests use). With
# `chaos` (and two followers or more) the last follower is killed (SIGKILL) a third of the
# way in and started again at half way, and the one before it is paused (SIGSTOP) for 30 s,
# longer than the group's session timeout, at two thirds.
#
# Prints the freshness of the usage messages (produce call to the first read of the Delta
# log that records them: a query started then sees them), active files per table, passes,
# passes dropped because another member committed first and fence retries; then checks the
# lake (`lake check`, and every Workspace day against the generator's expected.json). Writes
# $cache/bench-live-<label>.json, copies it to docs/results/ and renders docs/performance.md's
# tables from it (scripts/perf_tables.py).
set -euo pipefail
cd "$(dirname "$0")/.."
minutes="${1:-30}"
rate="${2:-500}"
followers="${3:-1}"
store="${4:-local}"
chaos="${5:-}"
per_day=100000
records=$((minutes * 60 * rate * 98 / 100))
days=$(((records + per_day - 1) / per_day))
gen_sims=100000 gen_workspaces=3000 gen_days="$days" gen_by_day=1
source scripts/bench-setup.sh
label="${followers}f-${store}${chaos:+-chaos}"
work="$cache/bench-live-work"
rm -rf "$work" && mkdir -p "$work"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -CONT "$pid" 2>/dev/null || true; kill "$pid" 2>/dev/null || true; done
  [ -n "${s3_pid:-}" ] && kill "$s3_pid" 2>/dev/null || true
  # The broker only if this run started it (one already running is left as it was).
  [ -n "${started_broker:-}" ] && scripts/broker.sh stop >/dev/null 2>&1 || true
  true
}
trap cleanup EXIT

lake="$work/lake"
if [ "$store" = s3 ]; then
  "$python" -c 'import moto.server' 2>/dev/null || "$cache/venv/bin/pip" install --quiet "moto[server]==5.*"
  port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "$cache/venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
  s3_pid=$!
  until curl -sf -o /dev/null "http://127.0.0.1:$port/"; do sleep 0.2; done
  curl -sf -o /dev/null -X PUT "http://127.0.0.1:$port/bench-live"
  export AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_ALLOW_HTTP=true
  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
  lake="s3://bench-live/lake"
fi
broker_pid="$cache/broker/pid"
[ -f "$broker_pid" ] && kill -0 "$(cat "$broker_pid")" 2>/dev/null || started_broker=1
brokers="$(scripts/broker.sh start | tail -1)"
prefix="live-$(date +%s)"
"$python" scripts/bench_live.py topics "$brokers" "$prefix" 8

start_follower() {
  local n="$1"
  "$bin" ingest --brokers "$brokers" --usage-topic "$prefix-usage" --events-topic \
    "$prefix-events" --group "$prefix" --pass-seconds 5 --lake "$lake" --log simtally=info \
    2>>"$work/follower-$n.log" &
  pids[$n]=$!
}
for n in $(seq 1 "$followers"); do start_follower "$n"; done
(
  while sleep 300; do
    "$bin" lake maintain --lake "$lake" >>"$work/maintain.log" 2>&1 || echo "maintain failed" >>"$work/maintain.log"
  done
) &
pids[0]=$!
if [ -n "$chaos" ] && [ "$followers" -ge 2 ]; then
  seconds=$((minutes * 60))
  (
    sleep $((seconds / 3)); kill -KILL "${pids[$followers]}"; echo "killed follower $followers"
    sleep $((seconds / 2 - seconds / 3)); echo "restarting follower $followers"
  ) &
  chaos_pid=$!
  if [ "$followers" -ge 3 ]; then
    victim="${pids[$((followers - 1))]}"
    ( sleep $((seconds * 2 / 3)); kill -STOP "$victim"; echo "paused follower $((followers - 1))"
      sleep 30; kill -CONT "$victim"; echo "resumed it" ) &
  fi
fi

echo "$followers follower(s), $store lake, $rate messages/s for $minutes min, $records records of 3,000 Workspaces${chaos:+, killed and paused}"
"$python" scripts/bench_live.py run "$brokers" "$prefix" 8 "$data" "$rate" "$lake" \
  "$work/result.json" &
feed_pid=$!
if [ -n "${chaos_pid:-}" ]; then
  wait "$chaos_pid"
  start_follower "$followers"
fi
wait "$feed_pid"
for n in $(seq 1 "$followers"); do kill -TERM "${pids[$n]}"; wait "${pids[$n]}" || true; done
# Its sleep first: it holds this script's output open, and the loop ends with it.
pkill -P "${pids[0]}" 2>/dev/null || true
kill "${pids[0]}" 2>/dev/null || true

strip() { sed 's/\x1b\[[0-9;]*m//g' "$@"; }
passes=$(strip "$work"/follower-*.log | grep -c "pass committed" || true)
dropped=$(strip "$work"/follower-*.log | grep -c "pass dropped" || true)
retries=$(strip "$work"/follower-*.log | grep -c "reading it again" || true)
echo "passes committed: $passes; dropped (another member committed first): $dropped; fence retries: $retries"
"$bin" lake check --lake "$lake"
"$bin" query --lake "$lake" --format csv \
  "SELECT CONCAT(CAST(workspace_id AS VARCHAR), '|', CAST(usage_date AS VARCHAR)), SUM(volume_total), SUM(cost) FROM usage GROUP BY 1 ORDER BY 1" \
  >"$work/days.csv"
"$python" scripts/bench_live.py exact "$work/days.csv" "$data/expected.json"
"$python" - "$work/result.json" "$cache/bench-live-$label.json" "$passes" "$dropped" "$retries" <<'EOF'
import json, sys
result = json.load(open(sys.argv[1]))
result.update(passes=int(sys.argv[3]), dropped=int(sys.argv[4]), retries=int(sys.argv[5]))
json.dump(result, open(sys.argv[2], "w"), indent=1)
EOF
cp "$cache/bench-live-$label.json" "docs/results/live-$label.json"
python3 scripts/perf_tables.py
echo "written: $cache/bench-live-$label.json, docs/results/live-$label.json, docs/performance.md"
