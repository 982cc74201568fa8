"""Load driver for scripts/bench-serve.sh: N clients run the per-Workspace reports in a loop
for a fixed time against one target, optionally beside one hostile client that sends a
triple cross join in a loop; prints one JSON line with requests/s, p50 and p99 of the normal
clients.

usage: python bench_serve.py TARGET --clients N --seconds S [--hostile] --tokens FILE
         --sql-dir DIR [--http URL] [--dsn DSN]
TARGET: simtally-http (GET /v1/reports/NAME), simtally-pg or postgres (the same SQL over
psycopg, each client signed in as its own Workspace's user).
"""

import argparse
import http.client
import json
import threading
import time
import urllib.parse
from pathlib import Path

REPORTS = ["workspace-usage", "networks", "top-sims"]
HOSTILE_SQL = "SELECT COUNT(*) FROM usage a, usage b, usage c"


def report_sql(sql_dir):
    out = {}
    for name in REPORTS:
        lines = Path(sql_dir, f"{name}.sql").read_text().splitlines()
        out[name] = "\n".join(line for line in lines if not line.startswith("--"))
    return out


class HttpClient:
    def __init__(self, url, token):
        parsed = urllib.parse.urlparse(url)
        self.conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=120)
        self.headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}

    def report(self, name, _sql):
        self.conn.request("GET", f"/v1/reports/{name}", headers=self.headers)
        response = self.conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {body[:200]!r}")
        return len(json.loads(body))

    def interrupt(self):
        if self.conn.sock is not None:
            self.conn.sock.shutdown(2)

    def hostile(self):
        body = json.dumps({"sql": HOSTILE_SQL})
        self.conn.request("POST", "/v1/query", body=body,
                          headers={**self.headers, "Content-Type": "application/json"})
        response = self.conn.getresponse()
        response.read()
        return response.status


class PgClient:
    def __init__(self, dsn, user, token):
        import psycopg

        self.conn = psycopg.connect(dsn, user=user, password=token, autocommit=True)

    def report(self, _name, sql):
        with self.conn.cursor() as cur:
            cur.execute(sql)
            return len(cur.fetchall())

    def interrupt(self):
        self.conn.cancel()

    def hostile(self):
        import psycopg

        try:
            with self.conn.cursor() as cur:
                cur.execute(HOSTILE_SQL)
                cur.fetchall()
            return "answered"
        except psycopg.Error as e:
            return e.sqlstate


def connect(args, user, tokens):
    if args.target == "simtally-http":
        return HttpClient(args.http, tokens[user])
    return PgClient(args.dsn, user, tokens[user])


def normal_client(args, index, tokens, sqls, stop, out):
    workspaces = sorted(u for u in tokens if u.startswith("u"))
    user = workspaces[index % len(workspaces)]
    client = connect(args, user, tokens)
    latencies, errors, turn = [], [], index
    while time.monotonic() < stop:
        name = REPORTS[turn % len(REPORTS)]
        turn += 1
        started = time.monotonic()
        try:
            rows = client.report(name, sqls[name])
            if rows == 0:
                raise RuntimeError(f"{name} returned no rows for {user}")
            latencies.append(time.monotonic() - started)
        except Exception as e:  # reported, never hidden
            errors.append(str(e)[:200])
            client = connect(args, user, tokens)
    out.append((latencies, errors))


def hostile_client(args, tokens, stop, out, current):
    client = connect(args, "mallory", tokens)
    current.append(client)
    outcomes = {}
    while time.monotonic() < stop:
        try:
            outcome = str(client.hostile())
        except Exception as e:
            outcome = type(e).__name__
            client = connect(args, "mallory", tokens)
            current.append(client)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    out.append(outcomes)


def percentile(sorted_values, fraction):
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, int(round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("target", choices=["simtally-http", "simtally-pg", "postgres"])
    parser.add_argument("--clients", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--hostile", action="store_true")
    parser.add_argument("--tokens", required=True, help="JSON object: user -> token/password")
    parser.add_argument("--sql-dir", required=True)
    parser.add_argument("--http")
    parser.add_argument("--dsn")
    parser.add_argument("--label", help="the name the result carries (default: TARGET)")
    args = parser.parse_args()
    tokens = json.loads(Path(args.tokens).read_text())
    sqls = report_sql(args.sql_dir)
    stop = time.monotonic() + args.seconds
    results, hostile, current = [], [], []
    threads = [threading.Thread(target=normal_client, args=(args, i, tokens, sqls, stop, results))
               for i in range(args.clients)]
    bad = threading.Thread(target=hostile_client, args=(args, tokens, stop, hostile, current))
    started = time.monotonic()
    if args.hostile:
        bad.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    if args.hostile:
        # Its query in flight is stopped rather than waited for.
        while bad.is_alive():
            current[-1].interrupt()
            bad.join(1)
    latencies = sorted(x for lat, _ in results for x in lat)
    errors = [e for _, errs in results for e in errs]
    print(json.dumps({
        "target": args.label or args.target,
        "hostile": args.hostile,
        "clients": args.clients,
        "seconds": round(elapsed, 1),
        "requests": len(latencies),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 1),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
        "hostile_outcomes": hostile[0] if hostile else None,
    }))


if __name__ == "__main__":
    main()
