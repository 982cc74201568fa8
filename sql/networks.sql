-- description: Usage by operator network and country, per currency.
SELECT
  COALESCE(operator_name, '(unknown)') AS operator_name,
  COALESCE(country_name, '(unknown)') AS country_name,
  mcc,
  mnc,
  currency,
  COUNT(DISTINCT record_id) AS records,
  SUM(CASE WHEN traffic_type = 'data' THEN volume_total ELSE CAST(0 AS DECIMAL(18, 6)) END) AS data_mb,
  SUM(CASE WHEN traffic_type = 'sms' THEN volume_total ELSE CAST(0 AS DECIMAL(18, 6)) END) AS sms,
  SUM(cost) AS cost
FROM usage
GROUP BY operator_name, country_name, mcc, mnc, currency
ORDER BY currency, cost DESC, operator_name, country_name, mcc, mnc
