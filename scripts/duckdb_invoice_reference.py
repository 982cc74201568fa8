"""The reference for `simtally invoice`: DuckDB computing the same usage lines (per Workspace,
traffic type, network and currency: records, slices, volume, cost) for one UTC month straight
from the lake's `usage` Parquet files, and writing them as CSV. It does not do SIM fees,
allowances, adjustments or the renderings, so it is a floor, not an equal.

usage: python duckdb_invoice_reference.py LAKE_DIR YYYY-MM OUT.csv
"""

import sys

import duckdb

lake, period, out = sys.argv[1:4]
year, month = (int(part) for part in period.split("-"))
start = f"{year:04d}-{month:02d}-01"
end = f"{year + (month == 12):04d}-{month % 12 + 1:02d}-01"
duckdb.sql(f"""
COPY (
  SELECT workspace_id, traffic_type, operator_name, mcc, mnc, currency,
         COUNT(DISTINCT record_id) AS records, COUNT(*) AS slices,
         SUM(volume_total) AS volume, SUM(cost) AS amount
  FROM read_parquet('{lake}/usage/**/*.parquet', hive_partitioning = true)
  WHERE start_time >= TIMESTAMPTZ '{start} 00:00:00+00' AND start_time < TIMESTAMPTZ '{end} 00:00:00+00'
  GROUP BY ALL ORDER BY ALL
) TO '{out}' (HEADER)
""")
