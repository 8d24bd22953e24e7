-- Athena (Trino) translation of ../fraud_card.sql by sqlglot: do not edit.
/* Feature view `fraud_card`: one row per transaction, features from the prior events of the same */
/* card_token. Rendered from the definitions in features/ by `python -m features`: do not edit. */
/* Event order: (ts, source_line, txn_id); prior = strictly earlier in that order. A window of W */
/* seconds holds the prior events with ts in [t - W, t] (an event exactly W earlier is in): the */
/* earlier seconds come from a RANGE frame over epoch seconds, the same second from a ROWS frame. */
WITH events AS (
  SELECT
    t.txn_id,
    t.card_token,
    t.user_token,
    t.ts,
    t.year,
    t.month,
    t.source_line,
    t.is_fraud,
    CAST(TO_UNIXTIME(t.ts) AS BIGINT) AS epoch_s,
    amount_cents AS amount_cents,
    channel AS channel,
    merchant_id AS merchant_id,
    CAST(mcc AS INTEGER) AS mcc,
    merchant_state AS merchant_state,
    CASE
      WHEN channel = 'online'
      THEN NULL
      ELSE CONCAT(
        CAST(merchant_city AS VARCHAR),
        CAST('|' AS VARCHAR),
        CAST(COALESCE(merchant_state, '') AS VARCHAR)
      )
    END AS city_key,
    CAST(HOUR(ts) AS INTEGER) AS hour_of_day,
    channel = 'online' AS is_online,
    COALESCE(LENGTH(merchant_state) > 2, FALSE) AS is_foreign,
    amount_cents < 0 AS is_refund,
    COALESCE(CARDINALITY(errors), 0) > 0 AS has_error,
    COALESCE(ARRAY_JOIN(errors, ','), '') LIKE '%Bad %' AS has_bad_credential,
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
    END AS mcc_group,
    COALESCE(
      CAST(mcc AS INTEGER) IN (4829, 5045, 5094, 5732, 5733, 5734, 5815, 5816, 5817, 5818, 5944, 6051, 7995),
      FALSE
    ) AS is_high_risk_mcc
  FROM transactions AS t
), flagged AS (
  SELECT
    events.*,
    (
      NOT merchant_id IS NULL
      AND ROW_NUMBER() OVER (PARTITION BY card_token, merchant_id ORDER BY epoch_s, source_line, txn_id) = 1
    ) AS _first_merchant_id
  FROM events
), aggregates AS (
  SELECT
    flagged.*,
    COUNT(*) OVER (
      PARTITION BY card_token, epoch_s
      ORDER BY source_line, txn_id
      ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
    ) AS _tie_n, /* prior events in the same second */
    SUM(CAST(_first_merchant_id AS INTEGER)) OVER (
      PARTITION BY card_token, epoch_s
      ORDER BY source_line, txn_id
      ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
    ) AS _tie_sum__first_merchant_id,
    SUM(amount_cents) OVER (
      PARTITION BY card_token, epoch_s
      ORDER BY source_line, txn_id
      ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
    ) AS _tie_sum_amount_cents,
    SUM(CAST(has_bad_credential AS INTEGER)) OVER (
      PARTITION BY card_token, epoch_s
      ORDER BY source_line, txn_id
      ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
    ) AS _tie_sum_has_bad_credential,
    SUM(CAST(has_error AS INTEGER)) OVER (
      PARTITION BY card_token, epoch_s
      ORDER BY source_line, txn_id
      ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
    ) AS _tie_sum_has_error,
    SUM(CAST(is_foreign AS INTEGER)) OVER (
      PARTITION BY card_token, epoch_s
      ORDER BY source_line, txn_id
      ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
    ) AS _tie_sum_is_foreign,
    SUM(CAST(is_online AS INTEGER)) OVER (
      PARTITION BY card_token, epoch_s
      ORDER BY source_line, txn_id
      ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
    ) AS _tie_sum_is_online,
    MAX(amount_cents) OVER (
      PARTITION BY card_token, epoch_s
      ORDER BY source_line, txn_id
      ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
    ) AS _tie_max_amount_cents,
    COUNT(*) OVER (
      PARTITION BY card_token
      ORDER BY epoch_s
      RANGE BETWEEN 3600 PRECEDING AND 1 PRECEDING
    ) AS _1h_n, /* prior events in earlier seconds of the last 1h ([t - 3600 s, t - 1 s]) */
    SUM(CAST(_first_merchant_id AS INTEGER)) OVER (
      PARTITION BY card_token
      ORDER BY epoch_s
      RANGE BETWEEN 3600 PRECEDING AND 1 PRECEDING
    ) AS _1h_sum__first_merchant_id,
    SUM(amount_cents) OVER (
      PARTITION BY card_token
      ORDER BY epoch_s
      RANGE BETWEEN 3600 PRECEDING AND 1 PRECEDING
    ) AS _1h_sum_amount_cents,
    MAX(amount_cents) OVER (
      PARTITION BY card_token
      ORDER BY epoch_s
      RANGE BETWEEN 3600 PRECEDING AND 1 PRECEDING
    ) AS _1h_max_amount_cents,
    COUNT(*) OVER (
      PARTITION BY card_token
      ORDER BY epoch_s
      RANGE BETWEEN 86400 PRECEDING AND 1 PRECEDING
    ) AS _24h_n, /* prior events in earlier seconds of the last 24h ([t - 86400 s, t - 1 s]) */
    SUM(CAST(_first_merchant_id AS INTEGER)) OVER (
      PARTITION BY card_token
      ORDER BY epoch_s
      RANGE BETWEEN 86400 PRECEDING AND 1 PRECEDING
    ) AS _24h_sum__first_merchant_id,
    SUM(amount_cents) OVER (
      PARTITION BY card_token
      ORDER BY epoch_s
      RANGE BETWEEN 86400 PRECEDING AND 1 PRECEDING
    ) AS _24h_sum_amount_cents,
    SUM(CAST(has_bad_credential AS INTEGER)) OVER (
      PARTITION BY card_token
      ORDER BY epoch_s
      RANGE BETWEEN 86400 PRECEDING AND 1 PRECEDING
    ) AS _24h_sum_has_bad_credential,
    SUM(CAST(has_error AS INTEGER)) OVER (
      PARTITION BY card_token
      ORDER BY epoch_s
      RANGE BETWEEN 86400 PRECEDING AND 1 PRECEDING
    ) AS _24h_sum_has_error,
    SUM(CAST(is_foreign AS INTEGER)) OVER (
      PARTITION BY card_token
      ORDER BY epoch_s
      RANGE BETWEEN 86400 PRECEDING AND 1 PRECEDING
    ) AS _24h_sum_is_foreign,
    SUM(CAST(is_online AS INTEGER)) OVER (
      PARTITION BY card_token
      ORDER BY epoch_s
      RANGE BETWEEN 86400 PRECEDING AND 1 PRECEDING
    ) AS _24h_sum_is_online,
    MAX(amount_cents) OVER (
      PARTITION BY card_token
      ORDER BY epoch_s
      RANGE BETWEEN 86400 PRECEDING AND 1 PRECEDING
    ) AS _24h_max_amount_cents,
    COUNT(*) OVER (
      PARTITION BY card_token
      ORDER BY epoch_s
      RANGE BETWEEN 604800 PRECEDING AND 1 PRECEDING
    ) AS _7d_n, /* prior events in earlier seconds of the last 7d ([t - 604800 s, t - 1 s]) */
    SUM(CAST(_first_merchant_id AS INTEGER)) OVER (
      PARTITION BY card_token
      ORDER BY epoch_s
      RANGE BETWEEN 604800 PRECEDING AND 1 PRECEDING
    ) AS _7d_sum__first_merchant_id,
    SUM(amount_cents) OVER (
      PARTITION BY card_token
      ORDER BY epoch_s
      RANGE BETWEEN 604800 PRECEDING AND 1 PRECEDING
    ) AS _7d_sum_amount_cents,
    MAX(amount_cents) OVER (
      PARTITION BY card_token
      ORDER BY epoch_s
      RANGE BETWEEN 604800 PRECEDING AND 1 PRECEDING
    ) AS _7d_max_amount_cents,
    COUNT(*) OVER (
      PARTITION BY card_token
      ORDER BY epoch_s
      RANGE BETWEEN 2592000 PRECEDING AND 1 PRECEDING
    ) AS _30d_n, /* prior events in earlier seconds of the last 30d ([t - 2592000 s, t - 1 s]) */
    SUM(amount_cents) OVER (
      PARTITION BY card_token
      ORDER BY epoch_s
      RANGE BETWEEN 2592000 PRECEDING AND 1 PRECEDING
    ) AS _30d_sum_amount_cents,
    MAX(amount_cents) OVER (
      PARTITION BY card_token
      ORDER BY epoch_s
      RANGE BETWEEN 2592000 PRECEDING AND 1 PRECEDING
    ) AS _30d_max_amount_cents,
    COUNT(*) OVER (
      PARTITION BY card_token
      ORDER BY epoch_s, source_line, txn_id
      ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
    ) AS _hist_n, /* all prior events of the key */
    SUM(amount_cents) OVER (
      PARTITION BY card_token
      ORDER BY epoch_s, source_line, txn_id
      ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
    ) AS _hist_sum_amount_cents,
    SUM(amount_cents * amount_cents) OVER (
      PARTITION BY card_token
      ORDER BY epoch_s, source_line, txn_id
      ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
    ) AS _hist_sumsq_amount_cents,
    LAG(epoch_s) OVER (PARTITION BY card_token ORDER BY epoch_s, source_line, txn_id) AS _prev_epoch_s,
    LAG(channel) OVER (PARTITION BY card_token ORDER BY epoch_s, source_line, txn_id) AS _prev_channel,
    ROW_NUMBER() OVER (PARTITION BY card_token, merchant_id ORDER BY epoch_s, source_line, txn_id) AS _rank_merchant_id,
    ROW_NUMBER() OVER (PARTITION BY card_token, city_key ORDER BY epoch_s, source_line, txn_id) AS _rank_city_key,
    ROW_NUMBER() OVER (PARTITION BY card_token, merchant_state ORDER BY epoch_s, source_line, txn_id) AS _rank_merchant_state,
    ROW_NUMBER() OVER (PARTITION BY card_token, mcc ORDER BY epoch_s, source_line, txn_id) AS _rank_mcc,
    COUNT(*) OVER (
      PARTITION BY card_token, channel
      ORDER BY epoch_s, source_line, txn_id
      ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
    ) AS _same_channel_n,
    COUNT(*) OVER (
      PARTITION BY card_token, hour_of_day
      ORDER BY epoch_s, source_line, txn_id
      ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
    ) AS _same_hour_of_day_n
  FROM flagged
)
SELECT
  a.txn_id,
  a.source_line,
  a.card_token,
  a.user_token,
  a.ts,
  a.year,
  a.month,
  a.is_fraud AS label,
  a.amount_cents AS amount_cents,
  a.is_online AS is_online,
  a.is_foreign AS is_foreign,
  a.is_refund AS is_refund,
  a.has_error AS has_error,
  a.has_bad_credential AS has_bad_credential,
  a.hour_of_day AS hour_of_day,
  a.mcc_group AS mcc_group,
  a.is_high_risk_mcc AS is_high_risk_mcc,
  (
    a._1h_n + a._tie_n
  ) AS txn_count_1h,
  CAST((
    COALESCE(a._1h_sum_amount_cents, 0) + COALESCE(a._tie_sum_amount_cents, 0)
  ) AS BIGINT) AS amount_sum_1h,
  CASE
    WHEN (
      a._1h_n + a._tie_n
    ) = 0
    THEN NULL
    ELSE CAST((
      COALESCE(a._1h_sum_amount_cents, 0) + COALESCE(a._tie_sum_amount_cents, 0)
    ) AS DOUBLE) / (
      a._1h_n + a._tie_n
    )
  END AS amount_mean_1h,
  CAST(GREATEST(
    COALESCE(a._1h_max_amount_cents, a._tie_max_amount_cents),
    COALESCE(a._tie_max_amount_cents, a._1h_max_amount_cents)
  ) AS BIGINT) AS amount_max_1h,
  (
    a._24h_n + a._tie_n
  ) AS txn_count_24h,
  CAST((
    COALESCE(a._24h_sum_amount_cents, 0) + COALESCE(a._tie_sum_amount_cents, 0)
  ) AS BIGINT) AS amount_sum_24h,
  CASE
    WHEN (
      a._24h_n + a._tie_n
    ) = 0
    THEN NULL
    ELSE CAST((
      COALESCE(a._24h_sum_amount_cents, 0) + COALESCE(a._tie_sum_amount_cents, 0)
    ) AS DOUBLE) / (
      a._24h_n + a._tie_n
    )
  END AS amount_mean_24h,
  CAST(GREATEST(
    COALESCE(a._24h_max_amount_cents, a._tie_max_amount_cents),
    COALESCE(a._tie_max_amount_cents, a._24h_max_amount_cents)
  ) AS BIGINT) AS amount_max_24h,
  (
    a._7d_n + a._tie_n
  ) AS txn_count_7d,
  CAST((
    COALESCE(a._7d_sum_amount_cents, 0) + COALESCE(a._tie_sum_amount_cents, 0)
  ) AS BIGINT) AS amount_sum_7d,
  CASE
    WHEN (
      a._7d_n + a._tie_n
    ) = 0
    THEN NULL
    ELSE CAST((
      COALESCE(a._7d_sum_amount_cents, 0) + COALESCE(a._tie_sum_amount_cents, 0)
    ) AS DOUBLE) / (
      a._7d_n + a._tie_n
    )
  END AS amount_mean_7d,
  CAST(GREATEST(
    COALESCE(a._7d_max_amount_cents, a._tie_max_amount_cents),
    COALESCE(a._tie_max_amount_cents, a._7d_max_amount_cents)
  ) AS BIGINT) AS amount_max_7d,
  (
    a._30d_n + a._tie_n
  ) AS txn_count_30d,
  CAST((
    COALESCE(a._30d_sum_amount_cents, 0) + COALESCE(a._tie_sum_amount_cents, 0)
  ) AS BIGINT) AS amount_sum_30d,
  CASE
    WHEN (
      a._30d_n + a._tie_n
    ) = 0
    THEN NULL
    ELSE CAST((
      COALESCE(a._30d_sum_amount_cents, 0) + COALESCE(a._tie_sum_amount_cents, 0)
    ) AS DOUBLE) / (
      a._30d_n + a._tie_n
    )
  END AS amount_mean_30d,
  CAST(GREATEST(
    COALESCE(a._30d_max_amount_cents, a._tie_max_amount_cents),
    COALESCE(a._tie_max_amount_cents, a._30d_max_amount_cents)
  ) AS BIGINT) AS amount_max_30d,
  CAST((
    COALESCE(a._24h_sum_has_error, 0) + COALESCE(a._tie_sum_has_error, 0)
  ) AS BIGINT) AS error_count_24h,
  CAST((
    COALESCE(a._24h_sum_has_bad_credential, 0) + COALESCE(a._tie_sum_has_bad_credential, 0)
  ) AS BIGINT) AS bad_credential_count_24h,
  CAST((
    COALESCE(a._24h_sum_is_online, 0) + COALESCE(a._tie_sum_is_online, 0)
  ) AS BIGINT) AS online_count_24h,
  CAST((
    COALESCE(a._24h_sum_is_foreign, 0) + COALESCE(a._tie_sum_is_foreign, 0)
  ) AS BIGINT) AS foreign_count_24h,
  CASE
    WHEN a._hist_n < 2
    OR a._hist_n * a._hist_sumsq_amount_cents - a._hist_sum_amount_cents * a._hist_sum_amount_cents <= 0
    THEN NULL
    ELSE CAST((
      CAST(a.amount_cents AS DOUBLE) - CAST(a._hist_sum_amount_cents AS DOUBLE) / a._hist_n
    ) AS DOUBLE) / SQRT(
      CAST(a._hist_n * a._hist_sumsq_amount_cents - a._hist_sum_amount_cents * a._hist_sum_amount_cents AS DOUBLE) / (
        CAST(a._hist_n AS DOUBLE) * a._hist_n
      )
    )
  END AS amount_zscore,
  a.epoch_s - a._prev_epoch_s AS seconds_since_previous,
  CASE WHEN a.merchant_id IS NULL THEN FALSE ELSE a._rank_merchant_id = 1 END AS is_new_merchant,
  CASE WHEN a.city_key IS NULL THEN FALSE ELSE a._rank_city_key = 1 END AS is_new_city,
  CASE WHEN a.merchant_state IS NULL THEN FALSE ELSE a._rank_merchant_state = 1 END AS is_new_state_or_country,
  CASE WHEN a.mcc IS NULL THEN FALSE ELSE a._rank_mcc = 1 END AS is_new_mcc,
  CAST((
    COALESCE(a._1h_sum__first_merchant_id, 0) + COALESCE(a._tie_sum__first_merchant_id, 0)
  ) AS BIGINT) AS new_merchant_count_1h,
  CAST((
    COALESCE(a._24h_sum__first_merchant_id, 0) + COALESCE(a._tie_sum__first_merchant_id, 0)
  ) AS BIGINT) AS new_merchant_count_24h,
  CAST((
    COALESCE(a._7d_sum__first_merchant_id, 0) + COALESCE(a._tie_sum__first_merchant_id, 0)
  ) AS BIGINT) AS new_merchant_count_7d,
  CASE
    WHEN a.channel IS NULL OR a._hist_n = 0
    THEN NULL
    ELSE CAST(a._same_channel_n AS DOUBLE) / a._hist_n
  END AS channel_usual_share,
  COALESCE(a.channel <> a._prev_channel, FALSE) AS channel_changed,
  CASE
    WHEN a.hour_of_day IS NULL OR a._hist_n = 0
    THEN NULL
    ELSE CAST(a._same_hour_of_day_n AS DOUBLE) / a._hist_n
  END AS hour_usual_share,
  DATE_DIFF('DAY', DATE_TRUNC('DAY', c.acct_open_date), DATE_TRUNC('DAY', CAST(a.ts AS DATE))) AS card_age_days,
  c.credit_limit AS credit_limit,
  c.has_chip AS has_chip
FROM aggregates AS a
LEFT JOIN cards AS c
  ON c.card_token = a.card_token
