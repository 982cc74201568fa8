-- description: The 20 SIMs with the highest cost in each currency, with the Workspaces that carried it.
WITH per_sim AS (
  SELECT
    iccid,
    workspace_id,
    currency,
    COUNT(DISTINCT record_id) AS records,
    SUM(CASE WHEN traffic_type = 'data' THEN volume_total ELSE CAST(0 AS DECIMAL(18, 6)) END) AS data_mb,
    SUM(CASE WHEN traffic_type = 'sms' THEN volume_total ELSE CAST(0 AS DECIMAL(18, 6)) END) AS sms,
    SUM(cost) AS cost
  FROM usage
  GROUP BY iccid, workspace_id, currency
),
ranked AS (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY currency ORDER BY cost DESC, iccid, workspace_id) AS place
  FROM per_sim
)
SELECT iccid, workspace_id, currency, records, data_mb, sms, cost
FROM ranked
WHERE place <= 20
ORDER BY currency, place
