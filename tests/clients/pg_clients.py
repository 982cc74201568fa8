"""Real PostgreSQL clients against the Postgres endpoint of a running `simtally serve`:
psycopg 3 (extended protocol, binary results, server-side cursors, prepared statements),
psycopg2 (simple protocol), SQLAlchemy 2 with both drivers (`inspect()` as Superset calls
it, pandas.read_sql), and the introspection statements Grafana, Metabase and DBeaver send
(tests/clients/introspection/). Run by tests/services/serve_clients.rs, which starts the server and
passes what each person must see, computed from the test's fixture.

Usage: pg_clients.py HOST PORT EXPECTED_JSON INTROSPECTION_DIR
Tokens come in SIMTALLY_TOKEN_<USER> variables. Exits non-zero on the first failed check.
"""

import datetime
import decimal
import threading
import json
import os
import pathlib
import sys

import pandas
import psycopg
import psycopg2
import sqlalchemy

HOST, PORT, EXPECTED, INTROSPECTION = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4]


def token(user):
    return os.environ[f"SIMTALLY_TOKEN_{user.upper()}"]


def dsn(user):
    return f"host={HOST} port={PORT} dbname=simtally user={user} password={token(user)}"


def url(user, driver):
    return f"postgresql+{driver}://{user}:{token(user)}@{HOST}:{PORT}/simtally"


def check(name, condition, detail=""):
    if not condition:
        raise AssertionError(f"{name}: {detail}")
    print(f"ok: {name}")


def statements(path):
    text = path.read_text()
    lines = [l for l in text.splitlines() if not l.startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";\n") if s.strip()]


def psycopg3(user, want):
    with psycopg.connect(dsn(user)) as conn:
        check(f"{user}: psycopg 3 sees server version 16", conn.info.server_version // 10000 == 16,
              conn.info.server_version)
        check(f"{user}: not a superuser", conn.info.parameter_status("is_superuser") == "off")
        total = conn.execute(
            "SELECT sum(cost) FROM usage WHERE workspace_id = ANY(%s)", (want["workspaces"] or [0],)
        ).fetchone()[0]
        expected = decimal.Decimal(want["cost"]) if want["rows"] else None
        check(f"{user}: parameters bound over the extended protocol", total == expected,
              f"{total!r} != {expected!r}")
        with conn.cursor(binary=True) as cur:
            cur.execute("SELECT workspace_id, cost, start_time FROM usage ORDER BY record_id")
            rows = cur.fetchall()
        check(f"{user}: binary results", len(rows) == want["rows"], rows)
        for workspace, cost, start in rows:
            check(f"{user}: binary types exact", isinstance(cost, decimal.Decimal)
                  and isinstance(start, datetime.datetime) and start.tzinfo is not None
                  and workspace in want["workspaces"], (workspace, cost, start))
        starts = sorted(r[2] for r in rows)
        check(f"{user}: instants", [s.isoformat() for s in starts] == want["starts"], starts)
        for _ in range(2):
            again = conn.execute("SELECT count(*) FROM usage", prepare=True).fetchone()[0]
            check(f"{user}: prepared statement", again == want["rows"], again)
        with conn.transaction():
            with conn.cursor(name="pages") as cursor:
                cursor.itersize = 1
                cursor.execute("SELECT workspace_id, cost FROM usage ORDER BY record_id")
                paged = list(cursor)
        check(f"{user}: server-side cursor", [r[0] for r in paged] == [r[0] for r in rows], paged)
        conn.execute("SET TIME ZONE 'Europe/Berlin'")
        shown = conn.execute("SELECT start_time FROM usage ORDER BY start_time").fetchall()
        berlin = [s[0] for s in shown]
        check(f"{user}: TimeZone honoured", all(b.utcoffset() == datetime.timedelta(hours=2)
              for b in berlin) and berlin == starts, berlin)
        check(f"{user}: SHOW TimeZone", conn.execute("SHOW TimeZone").fetchone()[0] == "Europe/Berlin")
        try:
            with conn.cursor() as cur:
                with cur.copy("COPY usage TO STDOUT") as copy:
                    list(copy)
            check(f"{user}: COPY refused", False, "COPY answered")
        except psycopg.errors.InsufficientPrivilege:
            check(f"{user}: COPY refused (42501)", True)


ENDLESS = "SELECT count(*) FROM generate_series(1, 100000) a, generate_series(1, 100000) b"


def cancel(user):
    """A running statement stops when its client cancels it (psycopg's cancel() sends a
    CancelRequest on a second connection), long before its deadline."""
    with psycopg.connect(dsn(user), autocommit=True) as conn:
        outcome = {}

        def run():
            try:
                conn.execute(ENDLESS)
                outcome["error"] = None
            except Exception as e:  # noqa: BLE001 - the error is what is checked
                outcome["error"] = e

        started = datetime.datetime.now()
        worker = threading.Thread(target=run)
        worker.start()
        while worker.is_alive():
            conn.cancel_safe(timeout=5)
            worker.join(timeout=0.2)
        error = outcome["error"]
        check(f"{user}: CancelRequest stops the statement (57014, user request)",
              isinstance(error, psycopg.errors.QueryCanceled) and "user request" in str(error),
              repr(error))
        took = datetime.datetime.now() - started
        check(f"{user}: canceled before the deadline", took < datetime.timedelta(seconds=20), took)
        check(f"{user}: the session goes on", conn.execute("SELECT 1").fetchone() == (1,))


def psycopg2_simple(user, want):
    conn = psycopg2.connect(dsn(user))
    try:
        cur = conn.cursor()
        cur.execute("SELECT count(*), sum(cost) FROM usage")
        count, total = cur.fetchone()
        expected = decimal.Decimal(want["cost"]) if want["rows"] else None
        check(f"{user}: psycopg2 simple protocol", (count, total) == (want["rows"], expected),
              (count, total))
        cur.execute("SELECT current_database(), current_user, session_user")
        check(f"{user}: who am I", cur.fetchone() == ("simtally", user, user))
    finally:
        conn.close()


def sqlalchemy_clients(user, want):
    for driver in ("psycopg", "psycopg2"):
        engine = sqlalchemy.create_engine(url(user, driver))
        inspector = sqlalchemy.inspect(engine)
        check(f"{user}/{driver}: schemas", "public" in inspector.get_schema_names())
        check(f"{user}/{driver}: views", sorted(inspector.get_view_names()) == want["views"],
              inspector.get_view_names())
        check(f"{user}/{driver}: no tables", inspector.get_table_names() == [])
        columns = {c["name"]: str(c["type"]) for c in inspector.get_columns("usage")}
        check(f"{user}/{driver}: columns", columns.get("cost") == "NUMERIC"
              and "source" not in columns, columns)
        # What Superset asks for each table it shows (superset/models/core.py, db_engine_specs).
        check(f"{user}/{driver}: no primary key",
              inspector.get_pk_constraint("usage")["constrained_columns"] == [])
        check(f"{user}/{driver}: no foreign keys", inspector.get_foreign_keys("usage") == [])
        check(f"{user}/{driver}: no indexes", inspector.get_indexes("usage") == [])
        check(f"{user}/{driver}: no unique constraints",
              inspector.get_unique_constraints("usage") == [])
        check(f"{user}/{driver}: table comment", inspector.get_table_comment("usage") == {"text": None})
        with engine.connect() as conn:
            with conn.begin():
                savepoint = conn.begin_nested()
                conn.execute(sqlalchemy.text("SELECT 1"))
                savepoint.rollback()
            frame = pandas.read_sql(
                sqlalchemy.text("SELECT workspace_id, sum(cost) AS cost FROM usage GROUP BY 1"), conn)
        check(f"{user}/{driver}: pandas.read_sql", sorted(frame["workspace_id"].tolist())
              == sorted(set(want["workspaces_with_usage"])), frame)
        engine.dispose()


def introspection(user):
    for path in sorted(pathlib.Path(INTROSPECTION).glob("*.sql")):
        for sql in statements(path):
            with psycopg.connect(dsn(user), autocommit=True) as conn:
                cursor = conn.execute(sql)
                if cursor.description:
                    cursor.fetchall()
            conn2 = psycopg2.connect(dsn(user))
            try:
                conn2.cursor().execute(sql)
            finally:
                conn2.close()
        check(f"{user}: {path.stem} introspection over both protocols", True)


for user, want in EXPECTED.items():
    psycopg3(user, want)
    psycopg2_simple(user, want)
    cancel(user)
    sqlalchemy_clients(user, want)
    introspection(user)
print("all clients answered as expected")
