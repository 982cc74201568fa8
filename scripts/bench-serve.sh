#!/usr/bin/env bash
# Serving throughput against PostgreSQL, in the same run: 30 clients for 60 s running the
# per-Workspace reports (workspace-usage, networks, top-sims) on the 1,000,000-record lake,
# each client signed in as the one user of one of the five Workspaces; then the same with one
# more client sending `SELECT COUNT(*) FROM usage a, usage b, usage c` in a loop.
#
#   scripts/bench-serve.sh [CLIENTS] [SECONDS]
#
# Targets: simtally's HTTP API (GET /v1/reports/NAME), simtally's Postgres endpoint and
# PostgreSQL (Debian's package, installed if missing) holding the same rows, with row-level
# security per Workspace and the same 30 s statement timeout; the report SQL is the same text
# (sql/*.sql) for both Postgres targets. Writes $cache/bench-serve.tsv and prints ratios; with
# the defaults, also docs/results/serve.tsv, which docs/performance.md's table is rendered from.
#
# With SIMTALLY_BEFORE=/path/to/an/older/simtally, that binary serves the same lake too (on
# other ports), and the same clients without the hostile one run against it (labelled
# before-pg, before-http), in the order before, after, after, before: a before/after
# comparison in one run, written to docs/results/serve-before.tsv.
set -euo pipefail
cd "$(dirname "$0")/.."
clients="${1:-30}"
seconds="${2:-60}"
records=1000000
source scripts/bench-setup.sh
python="$cache/venv/bin/python"
"$python" -c 'import psycopg, jwt' 2>/dev/null || "$cache/venv/bin/pip" install --quiet 'psycopg[binary]' PyJWT
work="$cache/bench-serve"
rm -rf "$work" && mkdir -p "$work"
workspaces="101 102 103 201 202"

# The lake: the generated data set plus a directory (one Observer per Workspace, and the
# hostile user, an Observer of 101).
"$python" - "$work/directory.ndjson" $workspaces <<'EOF'
import json, sys
out, workspaces = sys.argv[1], [int(w) for w in sys.argv[2:]]
events = [dict(type="workspace_created", workspace_id=w, name=f"Workspace {w}",
               organization_id=w // 100) for w in workspaces]
events += [dict(type="role_granted", user_id=f"u{w}", workspace_id=w, role="Observer")
           for w in workspaces]
events.append(dict(type="role_granted", user_id="mallory", workspace_id=workspaces[0],
                   role="Observer"))
with open(out, "w") as f:
    for i, event in enumerate(events):
        f.write(json.dumps({"event_id": f"dir-{i}", "timestamp": "2026-09-30T00:00:00Z",
                            "actor": {"operator": "bench"}, **event}) + "\n")
EOF
"$bin" ingest --no-progress --lake "$work/lake" --events "$work/directory.ndjson" \
  "$data/events.ndjson" --usage "$data/usage.ndjson" > /dev/null
head -c 48 /dev/urandom | base64 > "$work/users.secret"
head -c 48 /dev/urandom | base64 > "$work/operators.secret"
"$python" - "$work/users.secret" $workspaces > "$work/tokens.json" <<'EOF'
import json, sys, time, jwt
secret = open(sys.argv[1]).read().strip()
users = [f"u{w}" for w in sys.argv[2:]] + ["mallory"]
now = int(time.time())
print(json.dumps({u: jwt.encode({"sub": u, "iat": now, "exp": now + 86400}, secret,
                                algorithm="HS256") for u in users}))
EOF

# PostgreSQL: the rows every report reads (the `usage` view as operators see it, without
# `source`), one role per user, a policy that shows each role its Workspaces only.
pg_bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
if [ -z "$pg_bin" ]; then
  apt-get install -y -qq postgresql > /dev/null
  pg_bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
fi
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
# Outside $HOME: the postgres user may not be able to enter it.
pg_root="$(mktemp -d /tmp/simtally-bench-pg.XXXXXX)"
pg_data="$pg_root/data" pg_sock="$pg_root" pg_port=15499
[ "$(id -u)" = 0 ] && chown postgres "$pg_root"
as_pg "$pg_bin/initdb" -D "$pg_data" -A trust -U postgres > /dev/null
cat >> "$pg_data/postgresql.conf" <<EOF
port = $pg_port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$pg_sock'
max_connections = 100
shared_buffers = 1GB
work_mem = 64MB
EOF
as_pg "$pg_bin/pg_ctl" -D "$pg_data" -l "$pg_root/postgres.log" -w start > /dev/null
server_pid="" before_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2> /dev/null || true
  [ -n "$before_pid" ] && kill "$before_pid" 2> /dev/null || true
  as_pg "$pg_bin/pg_ctl" -D "$pg_data" -m immediate stop > /dev/null 2>&1 || true
  rm -rf "$pg_root"
}
trap cleanup EXIT
columns="workspace_id, usage_date, record_id, slice, iccid, traffic_type, start_time, end_time,
  volume_rx, volume_tx, volume_total, cost, currency, operator_name, mcc, mnc, country_name, imsi"
"$bin" query --lake "$work/lake" --format csv "SELECT $columns FROM usage WHERE reverses_slice IS NULL" \
  > "$work/usage.csv"
psql_pg() { psql -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres "$@"; }
psql_pg <<EOF
CREATE TABLE usage (
  workspace_id bigint NOT NULL, usage_date date NOT NULL, record_id bigint NOT NULL,
  slice smallint NOT NULL, iccid text NOT NULL, traffic_type text NOT NULL,
  start_time timestamptz NOT NULL, end_time timestamptz NOT NULL,
  volume_rx numeric(18,6) NOT NULL, volume_tx numeric(18,6) NOT NULL,
  volume_total numeric(18,6) NOT NULL, cost numeric(20,10) NOT NULL, currency text NOT NULL,
  operator_name text, mcc text, mnc text, country_name text, imsi text);
\copy usage FROM '$work/usage.csv' WITH (FORMAT csv, HEADER true)
CREATE INDEX usage_workspace ON usage (workspace_id, usage_date);
CREATE TABLE access (user_name text NOT NULL, workspace_id bigint NOT NULL);
ALTER TABLE usage ENABLE ROW LEVEL SECURITY;
CREATE POLICY by_workspace ON usage FOR SELECT USING (workspace_id = ANY (ARRAY(
  SELECT workspace_id FROM access WHERE user_name = current_user)));
VACUUM ANALYZE usage;
EOF
for w in $workspaces; do
  psql_pg -c "CREATE ROLE u$w LOGIN; GRANT SELECT ON usage, access TO u$w;
    INSERT INTO access VALUES ('u$w', $w); ALTER ROLE u$w SET statement_timeout = '30s';"
done
psql_pg -c "CREATE ROLE mallory LOGIN; GRANT SELECT ON usage, access TO mallory;
  INSERT INTO access VALUES ('mallory', ${workspaces%% *}); ALTER ROLE mallory SET statement_timeout = '30s';"

# Starts BINARY serving the lake on HTTP_PORT and PG_PORT, logging to LOG; sets $started.
serve_lake() {
  local binary="$1" http="$2" pg="$3" log="$4"
  "$binary" serve --lake "$work/lake" --addr "127.0.0.1:$http" --postgres-addr "127.0.0.1:$pg" \
    --jwt-secret-file "$work/users.secret" --operator-secret-file "$work/operators.secret" \
    2> "$log" &
  started=$!
  until curl -sf "http://127.0.0.1:$http/healthz" > /dev/null; do
    kill -0 "$started" || { cat "$log"; exit 1; }
    sleep 0.2
  done
}
# simtally, with its defaults (30 s deadline, 2 queries per caller, 1 GiB memory pool).
serve_lake "$bin" 18191 15491 "$work/serve.log"
server_pid=$started
if [ -n "${SIMTALLY_BEFORE:-}" ]; then
  serve_lake "$SIMTALLY_BEFORE" 18192 15492 "$work/serve-before.log"
  before_pid=$started
fi

echo "clients: $clients, $seconds s each; machine: $(nproc) cores; $(psql_pg -Atc 'SELECT count(*) FROM usage') rows"
drive() {
  "$python" scripts/bench_serve.py "$@" --clients "$clients" --seconds "$seconds" \
    --tokens "$work/tokens.json" --sql-dir sql --http http://127.0.0.1:18191
}
results="$cache/bench-serve.jsonl"
: > "$results"
for hostile in "" --hostile; do
  drive postgres $hostile --dsn "host=127.0.0.1 port=$pg_port dbname=postgres" | tee -a "$results"
  # Before, after, after, before: neither binary always runs first or last.
  if [ -n "$before_pid" ] && [ -z "$hostile" ]; then
    drive simtally-pg --label before-pg --dsn "host=127.0.0.1 port=15492 dbname=simtally" | tee -a "$results"
  fi
  drive simtally-pg $hostile --dsn "host=127.0.0.1 port=15491 dbname=simtally" | tee -a "$results"
  drive simtally-http $hostile | tee -a "$results"
  if [ -n "$before_pid" ] && [ -z "$hostile" ]; then
    "$python" scripts/bench_serve.py simtally-http --label before-http --clients "$clients" \
      --seconds "$seconds" --tokens "$work/tokens.json" --sql-dir sql \
      --http http://127.0.0.1:18192 | tee -a "$results"
  fi
done
"$python" - "$results" "$cache/bench-serve.tsv" <<'EOF'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
by = {(r["target"], r["hostile"]): r for r in rows}
with open(sys.argv[2], "w") as out:
    out.write("target\thostile\trequests_per_s\tp50_ms\tp99_ms\terrors\n")
    for r in rows:
        out.write(f"{r['target']}\t{r['hostile']}\t{r['rps']}\t{r['p50_ms']}\t{r['p99_ms']}\t{r['errors']}\n")
pg = by[("postgres", False)]
for target in ("simtally-pg", "simtally-http"):
    base, hostile = by[(target, False)], by[(target, True)]
    print(f"{target}: {base['rps'] / pg['rps']:.2f}x PostgreSQL's requests/s, "
          f"p99 {base['p99_ms'] / pg['p99_ms']:.2f}x PostgreSQL's; with the hostile client "
          f"p99 {hostile['p99_ms'] / base['p99_ms']:.2f}x its own baseline "
          f"(goal: >= 1, <= 1, <= 2)")
for target, before in (("simtally-pg", "before-pg"), ("simtally-http", "before-http")):
    if (before, False) in by:
        now, then = by[(target, False)], by[(before, False)]
        print(f"{target}: {now['rps'] / then['rps']:.2f}x the requests/s of the binary before, "
              f"p99 {now['p99_ms'] / then['p99_ms']:.2f}x")
pgh = by[("postgres", True)]
print(f"postgres: with the hostile client p99 {pgh['p99_ms'] / pg['p99_ms']:.2f}x its own baseline")
EOF
if [ "$clients" = 30 ] && [ "$seconds" = 60 ]; then
  cp "$cache/bench-serve.tsv" docs/results/serve.tsv
  [ -n "$before_pid" ] && cp "$cache/bench-serve.tsv" docs/results/serve-before.tsv
  python3 scripts/perf_tables.py
  echo "written: docs/results/serve.tsv, docs/performance.md"
fi
