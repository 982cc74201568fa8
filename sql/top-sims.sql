-- description: The 20 SIMs with the highest cost, with the Workspaces that carried it.
SELECT
  iccid,
  workspace_id,
  COUNT(DISTINCT record_id) AS records,
  SUM(CASE WHEN traffic_type = 'data' THEN volume_total ELSE CAST(0 AS DECIMAL(18, 6)) END) AS data_mb,
  SUM(CASE WHEN traffic_type = 'sms' THEN volume_total ELSE CAST(0 AS DECIMAL(18, 6)) END) AS sms,
  SUM(cost) AS cost
FROM usage
GROUP BY iccid, workspace_id
ORDER BY cost DESC, iccid, workspace_id
LIMIT 20
