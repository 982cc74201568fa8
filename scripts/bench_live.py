"""The producer and the probe of scripts/bench-live.sh.

  python bench_live.py topics BROKERS PREFIX PARTITIONS
      Creates the topics PREFIX-usage and PREFIX-events, PARTITIONS each.
  python bench_live.py run BROKERS PREFIX PARTITIONS DATA RATE LAKE OUT
      Produces the data set in DATA as a live feed: first the events dated before its first
      day at once (the feed starts once the lake holds them), then the days in time order
      (usage by end time, merged with the events by timestamp) at RATE messages a second,
      keyed like `simtally produce`. Meanwhile it polls the Delta log of LAKE/usage for the
      Kafka positions each pass records, and every 10 s counts each table's active files.
      When the lake's positions reach the end of both topics, it writes OUT (JSON): each
      usage message's freshness (from the produce call to the first read of the log that
      records it in the lake) as p50, p99 and max, and the active files over time.
  python bench_live.py exact LAKE_QUERY_CSV EXPECTED
      Compares `simtally query --format csv` output of per-Workspace-day sums with the
      generator's expected.json; exit 1 on any difference.
"""

import bisect
import csv
import glob
import heapq
import json
import os
import re
import sys
import threading
import time

TS = re.compile(rb'"end_timestamp": "([^"]+)"')
EVENT_TS = re.compile(rb'"timestamp": "([^"]+)"')
ICCID = re.compile(rb'"iccid": "([^"]+)"')
TYPE = re.compile(rb'"type": "([^"]+)"')
DIRECTORY_TYPES = {b"workspace_created", b"workspaces_linked", b"workspace_unlinked",
                   b"role_granted", b"role_revoked", b"superadmin_assigned",
                   b"default_workspace_set", b"sso_enabled", b"sso_disabled"}
TABLES = ["usage", "quarantine", "sim_events", "dead_letters", "workspaces", "memberships"]


def key_of(line, usage):
    found = ICCID.search(line)
    if found:
        return found.group(1)
    kind = TYPE.search(line)
    if not usage and kind and kind.group(1) in DIRECTORY_TYPES:
        return b"directory"
    return None


def stamped(lines, pattern):
    """(timestamp, line) pairs; a line without one takes the timestamp of the line before."""
    last = b""
    for line in lines:
        found = pattern.search(line)
        last = found.group(1) if found else last
        yield last, line


def feed(data):
    """("usage" | "events", line) in the order a live source would send them, and whether
    the message belongs to the initial backlog."""
    with open(os.path.join(data, "events.ndjson"), "rb") as f:
        events = sorted(stamped(f, EVENT_TS), key=lambda e: e[0])
    days = sorted(glob.glob(os.path.join(data, "usage", "*.ndjson")))
    first = os.path.basename(days[0])[:10].encode()
    cut = bisect.bisect_left([e[0] for e in events], first)
    for _, line in events[:cut]:
        yield "events", line, True
    events = [(ts, "events", line) for ts, line in events[cut:]]
    usage = []
    for day in days:
        with open(day, "rb") as f:
            usage.extend(sorted(stamped(f, TS), key=lambda u: u[0]))
    usage = [(ts, "usage", line) for ts, line in usage]
    for _, kind, line in heapq.merge(usage, events, key=lambda m: m[0]):
        yield kind, line, False


class Probe(threading.Thread):
    """Reads the lake's recorded positions as they move, and its active files."""

    def __init__(self, lake, prefix, partitions):
        super().__init__(daemon=True)
        self.lake, self.prefix, self.partitions = lake, prefix, partitions
        # (topic, p) -> [(position, first seen at)]
        self.seen = {(f"{prefix}-{kind}", p): [] for kind in ("usage", "events")
                     for p in range(partitions)}
        self.keys = {}  # p -> the positions of `seen`, once the run is over
        self.files = []  # (seconds since start, {table: active files})
        self.started = time.time()
        self.stop = threading.Event()
        self.options = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}

    def table(self, name):
        from deltalake import DeltaTable

        return DeltaTable(f"{self.lake}/{name}", storage_options=self.options)

    def positions(self, usage):
        now = time.time()
        for (topic, p), marks in self.seen.items():
            position = usage.transaction_version(f"simtally:kafka:{topic}:{p}")
            if position is not None and (not marks or marks[-1][0] < position):
                marks.append((position, now))

    def count_files(self):
        counts = {}
        for name in TABLES:
            try:
                counts[name] = len(self.table(name).file_uris())
            except Exception:  # the table does not exist yet
                counts[name] = 0
        self.files.append((round(time.time() - self.started, 1), counts))

    def run(self):
        usage, next_count = None, 0.0
        while not self.stop.is_set():
            try:
                usage = usage or self.table("usage")
                usage.update_incremental()
                self.positions(usage)
            except Exception:  # not created yet
                usage = None
            if time.time() >= next_count:
                self.count_files()
                next_count = time.time() + 10
            time.sleep(0.2)

    def reached(self, ends):
        return all(self.seen[tp] and self.seen[tp][-1][0] >= end for tp, end in ends.items())

    def first_seen(self, topic, partition, offset):
        """When the lake first recorded a position past `offset`."""
        marks = self.seen[(topic, partition)]
        if (topic, partition) not in self.keys:
            self.keys[(topic, partition)] = [m[0] for m in marks]
        i = bisect.bisect_right(self.keys[(topic, partition)], offset)
        return marks[i][1] if i < len(marks) else None


def topics(brokers, prefix, partitions):
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": brokers})
    names = [f"{prefix}-usage", f"{prefix}-events"]
    done = admin.create_topics([NewTopic(n, int(partitions), 1) for n in names])
    for future in done.values():
        future.result()


def produce(brokers, prefix, data, rate, probe):
    """Produces the feed: the backlog, then (once the lake holds it) the live part, paced.
    Returns [(topic, partition, offset, produced at)]; produced at is None for the backlog."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": brokers, "linger.ms": 5,
                         "enable.idempotence": True})
    delivered, failed = [], []

    def on_delivery(at):
        def done(err, msg):
            if err is not None:
                failed.append(str(err))
            else:
                delivered.append((msg.topic(), msg.partition(), msg.offset(), at))
        return done

    start, sent = None, 0
    for kind, line, backlog in feed(data):
        key = key_of(line, kind == "usage")
        now = None
        if not backlog:
            if start is None:
                producer.flush()
                wait_for(probe, ends_of(delivered), "the backlog")
                print(f"backlog of {len(delivered)} messages in the lake; the live feed starts",
                      flush=True)
                start = time.monotonic()
            sent += 1
            ahead = start + sent / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
            now = time.time()
        while True:
            try:
                producer.produce(f"{prefix}-{kind}", value=line.rstrip(b"\n"), key=key,
                                 on_delivery=on_delivery(now))
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    producer.flush()
    if failed:
        sys.exit(f"{len(failed)} messages not delivered: {failed[0]}")
    return delivered


def ends_of(delivered):
    ends = {}
    for topic, p, offset, _ in delivered:
        ends[(topic, p)] = max(ends.get((topic, p), 0), offset + 1)
    return ends


def wait_for(probe, ends, what):
    deadline = time.time() + 900
    while not probe.reached(ends):
        if time.time() > deadline:
            sys.exit(f"the lake did not take {what} in 15 minutes")
        time.sleep(0.5)


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else None


def run(brokers, prefix, partitions, data, rate, lake, out):
    partitions = int(partitions)
    probe = Probe(lake, prefix, partitions)
    probe.start()
    delivered = produce(brokers, prefix, data, float(rate), probe)
    live = [d for d in delivered if d[3] is not None]
    started = min(at for *_, at in live)
    produced = max(at for *_, at in live) - started
    wait_for(probe, ends_of(delivered), "the feed")
    probe.count_files()
    probe.stop.set()
    freshness, warm, unseen = [], [], 0
    for topic, p, offset, at in live:
        if not topic.endswith("-usage"):
            continue
        seen = probe.first_seen(topic, p, offset)
        if seen is None:
            unseen += 1
            continue
        freshness.append(seen - at)
        if at - started > 60:
            warm.append(seen - at)
    summary = {
        "usage_messages": len(freshness) + unseen,
        "produce_seconds": round(produced, 1),
        "rate": float(rate),
        "not_in_lake": unseen,
        "freshness_p50": percentile(freshness, 0.5),
        "freshness_p99": percentile(freshness, 0.99),
        "freshness_max": max(freshness, default=None),
        "after_first_minute_p50": percentile(warm, 0.5),
        "after_first_minute_p99": percentile(warm, 0.99),
        "active_files_max": {t: max(c[t] for _, c in probe.files) for t in TABLES},
        "active_files_end": probe.files[-1][1],
        "active_files": probe.files,
    }
    with open(out, "w") as f:
        json.dump(summary, f, indent=1)
    shown = {k: (round(v, 2) if isinstance(v, float) else v)
             for k, v in summary.items() if k != "active_files"}
    print(json.dumps(shown))
    if unseen:
        sys.exit(f"{unseen} usage messages never reached the lake's positions")


def exact(query_csv, expected_path):
    expected = json.load(open(expected_path))["days"]
    want = {k: (v["volume_total"], v["cost"]) for k, v in expected.items()}
    with open(query_csv) as f:
        rows = list(csv.reader(f))[1:]
    got = {r[0]: (r[1], r[2]) for r in rows}
    wrong = [k for k in sorted(set(want) | set(got)) if want.get(k) != got.get(k)]
    print(f"{len(want)} Workspace days expected, {len(got)} in the lake, {len(wrong)} differ")
    for k in wrong[:10]:
        print(f"  {k}: expected {want.get(k)}, lake {got.get(k)}")
    sys.exit(1 if wrong else 0)


if __name__ == "__main__":
    {"topics": topics, "run": run, "exact": exact}[sys.argv[1]](*sys.argv[2:])
