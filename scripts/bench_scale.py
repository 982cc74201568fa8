"""Helpers of scripts/bench-scale.sh.

  python bench_scale.py files LAKE TABLE
      Prints the number of files and bytes the table's current Delta version lists.
  python bench_scale.py list LAKE TABLE OUT
      Writes the paths of the files the table's current Delta version lists to OUT.
  python bench_scale.py duckdb FILES_LIST one|full WORKSPACE FROM TO
      Runs one query in DuckDB over the listed Parquet files (the counted view: slices not
      reversed by a correction): one Workspace's days FROM to TO, or the full aggregation.
"""

import os
import sys


def active_files(lake, table):
    from deltalake import DeltaTable

    t = DeltaTable(os.path.join(lake, table))
    actions = t.get_add_actions(flatten=True)
    paths = [os.path.join(lake, table, p) for p in actions.column("path").to_pylist()]
    sizes = actions.column("size_bytes").to_pylist()
    return paths, sum(sizes)


def counted(source):
    return f"""(SELECT * FROM {source} WHERE reverses_slice IS NULL) AS counted
      ANTI JOIN (SELECT record_id AS r, reverses_slice AS s FROM {source}
                 WHERE reverses_slice IS NOT NULL) AS reversed
      ON counted.record_id = reversed.r AND counted.slice = reversed.s"""


def duckdb_query(files_list, kind, workspace, start, end):
    """One query as a fresh process would run it: connect, read the listed files, answer."""
    import duckdb

    paths = open(files_list).read().split()
    listed = "[" + ", ".join(f"'{p}'" for p in paths) + "]"
    source = f"read_parquet({listed}, hive_partitioning = true)"
    where = {
        "one": f"WHERE workspace_id = {workspace} AND usage_date BETWEEN '{start}' AND '{end}'",
        "full": "",
    }[kind]
    print(duckdb.connect().execute(f"SELECT COUNT(*), SUM(cost) FROM {counted(source)} {where}").fetchall())


def main():
    command = sys.argv[1]
    if command == "files":
        paths, size = active_files(sys.argv[2], sys.argv[3])
        print(f"{len(paths)}\t{size}")
    elif command == "list":
        paths, _ = active_files(sys.argv[2], sys.argv[3])
        with open(sys.argv[4], "w") as out:
            out.write("\n".join(paths) + "\n")
    elif command == "duckdb":
        duckdb_query(*sys.argv[2:7])
    else:
        sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    main()
