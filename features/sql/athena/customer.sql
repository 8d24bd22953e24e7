-- Athena (Trino) translation of ../customer.sql by sqlglot: do not edit.
/* As-of view `customer`: one row per user_token and cut-off `as_of` (every row of the table */
/* as_of_dates), from the user_token's transactions with ts < as_of only. Rendered from the */
/* definitions in features/ by `python -m features`: do not edit. A period of (start, end) days */
/* holds the events with ts in [as_of - start days, as_of - end days). Amounts are in cents. */
WITH cutoffs AS (
  SELECT
    as_of,
    CAST(TO_UNIXTIME(as_of) AS BIGINT) AS as_of_s
  FROM as_of_dates
), events AS (
  SELECT
    t.user_token,
    CAST(TO_UNIXTIME(t.ts) AS BIGINT) AS epoch_s,
    amount_cents AS amount_cents,
    channel AS channel,
    merchant_id AS merchant_id,
    COALESCE(LENGTH(merchant_state) > 2, FALSE) AS is_foreign,
    amount_cents < 0 AS is_refund,
    amount_cents > 0 AS is_purchase,
    card_token AS card_token,
    COALESCE(CARDINALITY(errors), 0) > 0 AS has_error,
    CASE
      WHEN mcc IS NULL
      THEN NULL
      WHEN mcc BETWEEN 3000 AND 3999
      THEN 'travel'
      WHEN mcc = 4411
      THEN 'travel'
      WHEN mcc = 4511
      THEN 'travel'
      WHEN mcc = 4722
      THEN 'travel'
      WHEN mcc = 7011
      THEN 'travel'
      WHEN mcc = 7512
      THEN 'travel'
      WHEN mcc = 4829
      THEN 'cash_and_gambling'
      WHEN mcc BETWEEN 6010 AND 6012
      THEN 'cash_and_gambling'
      WHEN mcc = 6051
      THEN 'cash_and_gambling'
      WHEN mcc = 7995
      THEN 'cash_and_gambling'
      WHEN mcc = 5300
      THEN 'grocery'
      WHEN mcc = 5411
      THEN 'grocery'
      WHEN mcc = 5422
      THEN 'grocery'
      WHEN mcc = 5441
      THEN 'grocery'
      WHEN mcc = 5451
      THEN 'grocery'
      WHEN mcc = 5462
      THEN 'grocery'
      WHEN mcc = 5499
      THEN 'grocery'
      WHEN mcc = 5921
      THEN 'grocery'
      WHEN mcc BETWEEN 5811 AND 5814
      THEN 'dining'
      WHEN mcc BETWEEN 5541 AND 5542
      THEN 'fuel'
      WHEN mcc BETWEEN 4000 AND 4799
      THEN 'transport'
      WHEN mcc BETWEEN 4800 AND 4999
      THEN 'utilities_and_telecom'
      WHEN mcc BETWEEN 5732 AND 5734
      THEN 'electronics_and_digital'
      WHEN mcc BETWEEN 5815 AND 5818
      THEN 'electronics_and_digital'
      WHEN mcc BETWEEN 5000 AND 5999
      THEN 'retail'
      WHEN mcc BETWEEN 8000 AND 8099
      THEN 'health'
      WHEN mcc BETWEEN 7800 AND 7999
      THEN 'entertainment'
      WHEN mcc BETWEEN 9000 AND 9999
      THEN 'government'
      WHEN mcc BETWEEN 0 AND 9999
      THEN 'services'
      ELSE 'services'
    END AS mcc_group
  FROM transactions AS t
), aggregates AS (
  SELECT
    c.as_of,
    c.as_of_s,
    e.user_token,
    CAST(SUM(CASE WHEN e.epoch_s >= c.as_of_s - 2592000 AND e.is_purchase THEN 1 ELSE 0 END) AS BIGINT) AS _a0,
    CAST(SUM(CASE WHEN e.epoch_s >= c.as_of_s - 2592000 THEN e.amount_cents ELSE 0 END) AS BIGINT) AS _a1,
    CAST(SUM(CASE WHEN e.epoch_s >= c.as_of_s - 7776000 AND e.is_purchase THEN 1 ELSE 0 END) AS BIGINT) AS _a2,
    CAST(SUM(CASE WHEN e.epoch_s >= c.as_of_s - 7776000 THEN e.amount_cents ELSE 0 END) AS BIGINT) AS _a3,
    CAST(SUM(CASE WHEN e.epoch_s >= c.as_of_s - 31536000 AND e.is_purchase THEN 1 ELSE 0 END) AS BIGINT) AS _a4,
    CAST(SUM(CASE WHEN e.epoch_s >= c.as_of_s - 31536000 THEN e.amount_cents ELSE 0 END) AS BIGINT) AS _a5,
    COUNT(*) AS _a6,
    CAST(SUM(
      CASE
        WHEN e.epoch_s >= c.as_of_s - 31536000 AND e.is_purchase
        THEN e.amount_cents
        ELSE 0
      END
    ) AS BIGINT) AS _a7,
    CAST(SUM(
      CASE
        WHEN e.epoch_s >= c.as_of_s - 31536000 AND e.is_purchase AND e.mcc_group = 'travel'
        THEN e.amount_cents
        ELSE 0
      END
    ) AS BIGINT) AS _a8,
    CAST(SUM(
      CASE
        WHEN e.epoch_s >= c.as_of_s - 31536000
        AND e.is_purchase
        AND e.mcc_group = 'cash_and_gambling'
        THEN e.amount_cents
        ELSE 0
      END
    ) AS BIGINT) AS _a9,
    CAST(SUM(
      CASE
        WHEN e.epoch_s >= c.as_of_s - 31536000 AND e.is_purchase AND e.mcc_group = 'grocery'
        THEN e.amount_cents
        ELSE 0
      END
    ) AS BIGINT) AS _a10,
    CAST(SUM(
      CASE
        WHEN e.epoch_s >= c.as_of_s - 31536000 AND e.is_purchase AND e.mcc_group = 'dining'
        THEN e.amount_cents
        ELSE 0
      END
    ) AS BIGINT) AS _a11,
    CAST(SUM(
      CASE
        WHEN e.epoch_s >= c.as_of_s - 31536000 AND e.is_purchase AND e.mcc_group = 'fuel'
        THEN e.amount_cents
        ELSE 0
      END
    ) AS BIGINT) AS _a12,
    CAST(SUM(
      CASE
        WHEN e.epoch_s >= c.as_of_s - 31536000 AND e.is_purchase AND e.mcc_group = 'transport'
        THEN e.amount_cents
        ELSE 0
      END
    ) AS BIGINT) AS _a13,
    CAST(SUM(
      CASE
        WHEN e.epoch_s >= c.as_of_s - 31536000
        AND e.is_purchase
        AND e.mcc_group = 'utilities_and_telecom'
        THEN e.amount_cents
        ELSE 0
      END
    ) AS BIGINT) AS _a14,
    CAST(SUM(
      CASE
        WHEN e.epoch_s >= c.as_of_s - 31536000
        AND e.is_purchase
        AND e.mcc_group = 'electronics_and_digital'
        THEN e.amount_cents
        ELSE 0
      END
    ) AS BIGINT) AS _a15,
    CAST(SUM(
      CASE
        WHEN e.epoch_s >= c.as_of_s - 31536000 AND e.is_purchase AND e.mcc_group = 'retail'
        THEN e.amount_cents
        ELSE 0
      END
    ) AS BIGINT) AS _a16,
    CAST(SUM(
      CASE
        WHEN e.epoch_s >= c.as_of_s - 31536000 AND e.is_purchase AND e.mcc_group = 'health'
        THEN e.amount_cents
        ELSE 0
      END
    ) AS BIGINT) AS _a17,
    CAST(SUM(
      CASE
        WHEN e.epoch_s >= c.as_of_s - 31536000
        AND e.is_purchase
        AND e.mcc_group = 'entertainment'
        THEN e.amount_cents
        ELSE 0
      END
    ) AS BIGINT) AS _a18,
    CAST(SUM(
      CASE
        WHEN e.epoch_s >= c.as_of_s - 31536000 AND e.is_purchase AND e.mcc_group = 'government'
        THEN e.amount_cents
        ELSE 0
      END
    ) AS BIGINT) AS _a19,
    CAST(SUM(
      CASE
        WHEN e.epoch_s >= c.as_of_s - 31536000 AND e.is_purchase AND e.mcc_group = 'services'
        THEN e.amount_cents
        ELSE 0
      END
    ) AS BIGINT) AS _a20,
    CAST(SUM(
      CASE
        WHEN e.epoch_s >= c.as_of_s - 31536000 AND e.channel = 'online'
        THEN 1
        ELSE 0
      END
    ) AS BIGINT) AS _a21,
    CAST(SUM(CASE WHEN e.epoch_s >= c.as_of_s - 31536000 THEN 1 ELSE 0 END) AS BIGINT) AS _a22,
    CAST(SUM(
      CASE WHEN e.epoch_s >= c.as_of_s - 31536000 AND e.channel = 'chip' THEN 1 ELSE 0 END
    ) AS BIGINT) AS _a23,
    CAST(SUM(
      CASE
        WHEN e.epoch_s >= c.as_of_s - 31536000 AND e.channel = 'swipe'
        THEN 1
        ELSE 0
      END
    ) AS BIGINT) AS _a24,
    CAST(SUM(CASE WHEN e.epoch_s >= c.as_of_s - 31536000 AND e.is_refund THEN 1 ELSE 0 END) AS BIGINT) AS _a25,
    CAST(SUM(CASE WHEN e.epoch_s >= c.as_of_s - 31536000 AND e.is_foreign THEN 1 ELSE 0 END) AS BIGINT) AS _a26,
    CAST(SUM(CASE WHEN e.epoch_s >= c.as_of_s - 31536000 AND e.has_error THEN 1 ELSE 0 END) AS BIGINT) AS _a27,
    COUNT(DISTINCT CASE WHEN e.epoch_s >= c.as_of_s - 7776000 THEN e.card_token END) AS _a28,
    COUNT(DISTINCT CASE WHEN e.epoch_s >= c.as_of_s - 31536000 THEN e.card_token END) AS _a29,
    COUNT(DISTINCT CASE WHEN e.epoch_s >= c.as_of_s - 31536000 THEN e.merchant_id END) AS _a30,
    CAST(SUM(
      CASE
        WHEN e.epoch_s >= c.as_of_s - 15552000 AND e.epoch_s < c.as_of_s - 7776000
        THEN e.amount_cents
        ELSE 0
      END
    ) AS BIGINT) AS _a31,
    CAST(SUM(
      CASE
        WHEN e.epoch_s >= c.as_of_s - 23328000 AND e.epoch_s < c.as_of_s - 15552000
        THEN e.amount_cents
        ELSE 0
      END
    ) AS BIGINT) AS _a32,
    CAST(SUM(
      CASE
        WHEN e.epoch_s >= c.as_of_s - 31536000 AND e.epoch_s < c.as_of_s - 23328000
        THEN e.amount_cents
        ELSE 0
      END
    ) AS BIGINT) AS _a33,
    CAST(SUM(
      CASE
        WHEN e.epoch_s >= c.as_of_s - 63072000 AND e.epoch_s < c.as_of_s - 31536000
        THEN e.amount_cents
        ELSE 0
      END
    ) AS BIGINT) AS _a34,
    MAX(CASE WHEN e.is_purchase THEN e.epoch_s END) AS _t0,
    MIN(e.epoch_s) AS _t1
  FROM events AS e
  JOIN cutoffs AS c
    ON e.epoch_s < c.as_of_s
  GROUP BY
    c.as_of,
    c.as_of_s,
    e.user_token
)
SELECT
  a.user_token,
  a.as_of,
  CAST(a.as_of_s - a._t0 AS DOUBLE) / 86400 AS recency_days,
  CAST(a.as_of_s - a._t1 AS DOUBLE) / 86400 AS tenure_days,
  a._a0 AS purchases_30d,
  a._a1 AS net_spend_30d,
  a._a2 AS purchases_90d,
  a._a3 AS net_spend_90d,
  a._a4 AS purchases_365d,
  a._a5 AS net_spend_365d,
  a._a6 AS transactions_ever,
  CASE WHEN a._a4 <= 0 THEN NULL ELSE CAST(a._a7 AS DOUBLE) / a._a4 END AS mean_ticket_365d,
  CASE WHEN a._a7 <= 0 THEN NULL ELSE CAST(a._a8 AS DOUBLE) / a._a7 END AS spend_share_travel_365d,
  CASE WHEN a._a7 <= 0 THEN NULL ELSE CAST(a._a9 AS DOUBLE) / a._a7 END AS spend_share_cash_and_gambling_365d,
  CASE WHEN a._a7 <= 0 THEN NULL ELSE CAST(a._a10 AS DOUBLE) / a._a7 END AS spend_share_grocery_365d,
  CASE WHEN a._a7 <= 0 THEN NULL ELSE CAST(a._a11 AS DOUBLE) / a._a7 END AS spend_share_dining_365d,
  CASE WHEN a._a7 <= 0 THEN NULL ELSE CAST(a._a12 AS DOUBLE) / a._a7 END AS spend_share_fuel_365d,
  CASE WHEN a._a7 <= 0 THEN NULL ELSE CAST(a._a13 AS DOUBLE) / a._a7 END AS spend_share_transport_365d,
  CASE WHEN a._a7 <= 0 THEN NULL ELSE CAST(a._a14 AS DOUBLE) / a._a7 END AS spend_share_utilities_and_telecom_365d,
  CASE WHEN a._a7 <= 0 THEN NULL ELSE CAST(a._a15 AS DOUBLE) / a._a7 END AS spend_share_electronics_and_digital_365d,
  CASE WHEN a._a7 <= 0 THEN NULL ELSE CAST(a._a16 AS DOUBLE) / a._a7 END AS spend_share_retail_365d,
  CASE WHEN a._a7 <= 0 THEN NULL ELSE CAST(a._a17 AS DOUBLE) / a._a7 END AS spend_share_health_365d,
  CASE WHEN a._a7 <= 0 THEN NULL ELSE CAST(a._a18 AS DOUBLE) / a._a7 END AS spend_share_entertainment_365d,
  CASE WHEN a._a7 <= 0 THEN NULL ELSE CAST(a._a19 AS DOUBLE) / a._a7 END AS spend_share_government_365d,
  CASE WHEN a._a7 <= 0 THEN NULL ELSE CAST(a._a20 AS DOUBLE) / a._a7 END AS spend_share_services_365d,
  CASE WHEN a._a22 <= 0 THEN NULL ELSE CAST(a._a21 AS DOUBLE) / a._a22 END AS channel_share_online_365d,
  CASE WHEN a._a22 <= 0 THEN NULL ELSE CAST(a._a23 AS DOUBLE) / a._a22 END AS channel_share_chip_365d,
  CASE WHEN a._a22 <= 0 THEN NULL ELSE CAST(a._a24 AS DOUBLE) / a._a22 END AS channel_share_swipe_365d,
  CASE WHEN a._a22 <= 0 THEN NULL ELSE CAST(a._a25 AS DOUBLE) / a._a22 END AS refund_share_365d,
  CASE WHEN a._a22 <= 0 THEN NULL ELSE CAST(a._a26 AS DOUBLE) / a._a22 END AS foreign_share_365d,
  CASE WHEN a._a22 <= 0 THEN NULL ELSE CAST(a._a27 AS DOUBLE) / a._a22 END AS error_share_365d,
  a._a28 AS active_cards_90d,
  a._a29 AS active_cards_365d,
  a._a30 AS merchants_365d,
  CASE WHEN a._a31 <= 0 THEN NULL ELSE CAST(a._a3 AS DOUBLE) / a._a31 END AS spend_trend_90d,
  a._a31 AS net_spend_90_180d,
  a._a32 AS net_spend_180_270d,
  a._a33 AS net_spend_270_365d,
  a._a34 AS net_spend_365_730d,
  cu.yearly_income AS yearly_income,
  cu.fico_score AS fico_score,
  cu.num_credit_cards AS num_credit_cards,
  cu.gender AS gender,
  CAST(YEAR(a.as_of) - CAST(SPLIT_PART(cu.birth_year_band, '-', 2) AS INTEGER) AS INTEGER) AS age_band_start
FROM aggregates AS a
LEFT JOIN customers AS cu
  ON cu.user_token = a.user_token
