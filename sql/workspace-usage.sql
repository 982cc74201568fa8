-- description: Usage per Workspace and day: records, data (MB), SMS and cost (per currency: amounts in different currencies are never added).
SELECT
  workspace_id,
  usage_date,
  currency,
  COUNT(DISTINCT record_id) AS records,
  SUM(CASE WHEN traffic_type = 'data' THEN volume_total ELSE CAST(0 AS DECIMAL(18, 6)) END) AS data_mb,
  SUM(CASE WHEN traffic_type = 'sms' THEN volume_total ELSE CAST(0 AS DECIMAL(18, 6)) END) AS sms,
  SUM(cost) AS cost
FROM usage
GROUP BY workspace_id, usage_date, currency
ORDER BY workspace_id, usage_date, currency
