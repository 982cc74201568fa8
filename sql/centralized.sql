-- description: One combined report over two or more Workspaces: per day and currency, each Workspace's row and the combined total.
-- min_workspaces: 2
WITH per_workspace AS (
  SELECT
    usage_date,
    workspace_id,
    currency,
    COUNT(DISTINCT record_id) AS records,
    SUM(CASE WHEN traffic_type = 'data' THEN volume_total ELSE CAST(0 AS DECIMAL(18, 6)) END) AS data_mb,
    SUM(CASE WHEN traffic_type = 'sms' THEN volume_total ELSE CAST(0 AS DECIMAL(18, 6)) END) AS sms,
    SUM(cost) AS cost
  FROM usage
  GROUP BY usage_date, workspace_id, currency
),
combined AS (
  SELECT usage_date, currency, 0 AS part, workspace_id, CAST(workspace_id AS VARCHAR) AS workspace,
         records, data_mb, sms, cost
  FROM per_workspace
  UNION ALL
  -- The combined row is the sum of the Workspace rows: a record split by a transfer
  -- counts once in each Workspace it touched, and so twice here.
  SELECT usage_date, currency, 1 AS part, NULL AS workspace_id, 'combined' AS workspace,
         SUM(records), SUM(data_mb), SUM(sms), SUM(cost)
  FROM per_workspace
  GROUP BY usage_date, currency
)
SELECT usage_date, currency, workspace, records, data_mb, sms, cost
FROM combined
ORDER BY usage_date, currency, part, workspace_id
