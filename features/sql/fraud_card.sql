-- Feature view `fraud_card`: one row per transaction, features from the prior events of the same
-- card_token. Rendered from the definitions in features/ by `python -m features`: do not edit.
-- Event order: (ts, event_seq, txn_id); prior = strictly earlier in that order. A window of W
-- seconds holds the prior events with ts in [t - W, t] (an event exactly W earlier is in): the
-- prior events from the window's first event (the first at or after t - W) to the one before.
-- event_key packs (epoch_s, event_seq) in a BIGINT (a card's events have distinct event_seq).
WITH events AS (
    SELECT
        t.txn_id, t.card_token, t.user_token, t.ts, t.year, t.month, t.event_seq, t.is_fraud,
        CAST(epoch(t.ts) AS BIGINT) AS epoch_s,
        CAST(epoch(t.ts) AS BIGINT) * 2147483648 + t.event_seq AS event_key,
        amount_cents AS amount_cents,
        channel AS channel,
        merchant_id AS merchant_id,
        CAST(mcc AS INTEGER) AS mcc,
        merchant_state AS merchant_state,
        CASE WHEN channel = 'online' THEN NULL ELSE merchant_city || '|' || coalesce(merchant_state, '') END AS city_key,
        CAST(hour(ts) AS INTEGER) AS hour_of_day,
        channel = 'online' AS is_online,
        coalesce(length(merchant_state) > 2, false) AS is_foreign,
        amount_cents < 0 AS is_refund,
        coalesce(array_length(errors), 0) > 0 AS has_error,
        coalesce(array_to_string(errors, ','), '') LIKE '%Bad %' AS has_bad_credential,
        CASE WHEN mcc IS NULL THEN NULL WHEN mcc BETWEEN 3000 AND 3999 THEN 'travel' WHEN mcc = 4411 THEN 'travel' WHEN mcc = 4511 THEN 'travel' WHEN mcc = 4722 THEN 'travel' WHEN mcc = 7011 THEN 'travel' WHEN mcc = 7512 THEN 'travel' WHEN mcc = 4829 THEN 'cash_and_gambling' WHEN mcc BETWEEN 6010 AND 6012 THEN 'cash_and_gambling' WHEN mcc = 6051 THEN 'cash_and_gambling' WHEN mcc = 7995 THEN 'cash_and_gambling' WHEN mcc = 5300 THEN 'grocery' WHEN mcc = 5411 THEN 'grocery' WHEN mcc = 5422 THEN 'grocery' WHEN mcc = 5441 THEN 'grocery' WHEN mcc = 5451 THEN 'grocery' WHEN mcc = 5462 THEN 'grocery' WHEN mcc = 5499 THEN 'grocery' WHEN mcc = 5921 THEN 'grocery' WHEN mcc BETWEEN 5811 AND 5814 THEN 'dining' WHEN mcc BETWEEN 5541 AND 5542 THEN 'fuel' WHEN mcc BETWEEN 4000 AND 4799 THEN 'transport' WHEN mcc BETWEEN 4800 AND 4999 THEN 'utilities_and_telecom' WHEN mcc BETWEEN 5732 AND 5734 THEN 'electronics_and_digital' WHEN mcc BETWEEN 5815 AND 5818 THEN 'electronics_and_digital' WHEN mcc BETWEEN 5000 AND 5999 THEN 'retail' WHEN mcc BETWEEN 8000 AND 8099 THEN 'health' WHEN mcc BETWEEN 7800 AND 7999 THEN 'entertainment' WHEN mcc BETWEEN 9000 AND 9999 THEN 'government' WHEN mcc BETWEEN 0 AND 9999 THEN 'services' ELSE 'services' END AS mcc_group,
        coalesce(CAST(mcc AS INTEGER) IN (4829, 5045, 5094, 5732, 5733, 5734, 5815, 5816, 5817, 5818, 5944, 6051, 7995), false) AS is_high_risk_mcc
    FROM transactions AS t
),
first_merchant_id AS (
    SELECT card_token, min(event_key) AS first_key FROM events GROUP BY card_token, merchant_id
),
first_city_key AS (
    SELECT card_token, min(event_key) AS first_key FROM events GROUP BY card_token, city_key
),
first_merchant_state AS (
    SELECT card_token, min(event_key) AS first_key FROM events GROUP BY card_token, merchant_state
),
first_mcc AS (
    SELECT card_token, min(event_key) AS first_key FROM events GROUP BY card_token, mcc
),
flagged AS (
    SELECT
        e.txn_id, e.event_seq, e.card_token, e.user_token, e.ts, e.year, e.month, e.is_fraud,
        e.epoch_s, e.event_key, e.amount_cents, e.channel, e.hour_of_day, e.is_online, e.is_foreign, e.is_refund,
        e.has_error, e.has_bad_credential, e.mcc_group, e.is_high_risk_mcc,
        -- the key's first event with this value (never for a null value)
        (e.merchant_id IS NOT NULL AND f0.first_key IS NOT NULL) AS _first_merchant_id,
        (e.city_key IS NOT NULL AND f1.first_key IS NOT NULL) AS _first_city_key,
        (e.merchant_state IS NOT NULL AND f2.first_key IS NOT NULL) AS _first_merchant_state,
        (e.mcc IS NOT NULL AND f3.first_key IS NOT NULL) AS _first_mcc
    FROM events AS e
    LEFT JOIN first_merchant_id AS f0 ON f0.card_token = e.card_token AND f0.first_key = e.event_key
    LEFT JOIN first_city_key AS f1 ON f1.card_token = e.card_token AND f1.first_key = e.event_key
    LEFT JOIN first_merchant_state AS f2 ON f2.card_token = e.card_token AND f2.first_key = e.event_key
    LEFT JOIN first_mcc AS f3 ON f3.card_token = e.card_token AND f3.first_key = e.event_key
),
positioned AS (
    SELECT
        flagged.*,
        -- events of the key before each window's first second (t - W)
        count(*) OVER (PARTITION BY card_token ORDER BY epoch_s RANGE BETWEEN UNBOUNDED PRECEDING AND 3601 PRECEDING) AS _1h_start,
        count(*) OVER (PARTITION BY card_token ORDER BY epoch_s RANGE BETWEEN UNBOUNDED PRECEDING AND 86401 PRECEDING) AS _24h_start,
        count(*) OVER (PARTITION BY card_token ORDER BY epoch_s RANGE BETWEEN UNBOUNDED PRECEDING AND 604801 PRECEDING) AS _7d_start,
        count(*) OVER (PARTITION BY card_token ORDER BY epoch_s RANGE BETWEEN UNBOUNDED PRECEDING AND 2592001 PRECEDING) AS _30d_start
    FROM flagged
),
running AS (
    SELECT
        positioned.*,
        -- the event's position = number of prior events
        row_number() OVER (PARTITION BY card_token ORDER BY epoch_s, event_seq, txn_id) - 1 AS _hist_n,
        coalesce(sum(coalesce(amount_cents, 0)) OVER (PARTITION BY card_token ORDER BY epoch_s, event_seq, txn_id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS _cum_amount_cents,
        CAST(coalesce(sum(coalesce(CAST(has_error AS INTEGER), 0)) OVER (PARTITION BY card_token ORDER BY epoch_s, event_seq, txn_id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS BIGINT) AS _cum_has_error,
        CAST(coalesce(sum(coalesce(CAST(has_bad_credential AS INTEGER), 0)) OVER (PARTITION BY card_token ORDER BY epoch_s, event_seq, txn_id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS BIGINT) AS _cum_has_bad_credential,
        CAST(coalesce(sum(coalesce(CAST(is_online AS INTEGER), 0)) OVER (PARTITION BY card_token ORDER BY epoch_s, event_seq, txn_id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS BIGINT) AS _cum_is_online,
        CAST(coalesce(sum(coalesce(CAST(is_foreign AS INTEGER), 0)) OVER (PARTITION BY card_token ORDER BY epoch_s, event_seq, txn_id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS BIGINT) AS _cum_is_foreign,
        CAST(coalesce(sum(coalesce(CAST(_first_merchant_id AS INTEGER), 0)) OVER (PARTITION BY card_token ORDER BY epoch_s, event_seq, txn_id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS BIGINT) AS _cum__first_merchant_id,
        coalesce(sum(coalesce(amount_cents, 0) * coalesce(amount_cents, 0)) OVER (PARTITION BY card_token ORDER BY epoch_s, event_seq, txn_id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS _cumsq_amount_cents,
        lag(epoch_s) OVER (PARTITION BY card_token ORDER BY epoch_s, event_seq, txn_id) AS _prev_epoch_s,
        lag(channel) OVER (PARTITION BY card_token ORDER BY epoch_s, event_seq, txn_id) AS _prev_channel,
        row_number() OVER (PARTITION BY card_token, channel ORDER BY epoch_s, event_seq, txn_id) - 1 AS _same_channel_n,
        row_number() OVER (PARTITION BY card_token, hour_of_day ORDER BY epoch_s, event_seq, txn_id) - 1 AS _same_hour_of_day_n
    FROM positioned
),
aggregates AS (
    SELECT
        running.*,
        -- prior events in the last 1h
        _hist_n - _1h_start AS _1h_n,
        _cum__first_merchant_id - lag(_cum__first_merchant_id, _hist_n - _1h_start) OVER (PARTITION BY card_token ORDER BY epoch_s, event_seq, txn_id) AS _1h_sum__first_merchant_id,
        _cum_amount_cents - lag(_cum_amount_cents, _hist_n - _1h_start) OVER (PARTITION BY card_token ORDER BY epoch_s, event_seq, txn_id) AS _1h_sum_amount_cents,
        max(amount_cents) OVER (PARTITION BY card_token ORDER BY epoch_s, event_seq, txn_id ROWS BETWEEN _hist_n - _1h_start PRECEDING AND 1 PRECEDING) AS _1h_max_amount_cents,
        -- prior events in the last 24h
        _hist_n - _24h_start AS _24h_n,
        _cum__first_merchant_id - lag(_cum__first_merchant_id, _hist_n - _24h_start) OVER (PARTITION BY card_token ORDER BY epoch_s, event_seq, txn_id) AS _24h_sum__first_merchant_id,
        _cum_amount_cents - lag(_cum_amount_cents, _hist_n - _24h_start) OVER (PARTITION BY card_token ORDER BY epoch_s, event_seq, txn_id) AS _24h_sum_amount_cents,
        _cum_has_bad_credential - lag(_cum_has_bad_credential, _hist_n - _24h_start) OVER (PARTITION BY card_token ORDER BY epoch_s, event_seq, txn_id) AS _24h_sum_has_bad_credential,
        _cum_has_error - lag(_cum_has_error, _hist_n - _24h_start) OVER (PARTITION BY card_token ORDER BY epoch_s, event_seq, txn_id) AS _24h_sum_has_error,
        _cum_is_foreign - lag(_cum_is_foreign, _hist_n - _24h_start) OVER (PARTITION BY card_token ORDER BY epoch_s, event_seq, txn_id) AS _24h_sum_is_foreign,
        _cum_is_online - lag(_cum_is_online, _hist_n - _24h_start) OVER (PARTITION BY card_token ORDER BY epoch_s, event_seq, txn_id) AS _24h_sum_is_online,
        max(amount_cents) OVER (PARTITION BY card_token ORDER BY epoch_s, event_seq, txn_id ROWS BETWEEN _hist_n - _24h_start PRECEDING AND 1 PRECEDING) AS _24h_max_amount_cents,
        -- prior events in the last 7d
        _hist_n - _7d_start AS _7d_n,
        _cum__first_merchant_id - lag(_cum__first_merchant_id, _hist_n - _7d_start) OVER (PARTITION BY card_token ORDER BY epoch_s, event_seq, txn_id) AS _7d_sum__first_merchant_id,
        _cum_amount_cents - lag(_cum_amount_cents, _hist_n - _7d_start) OVER (PARTITION BY card_token ORDER BY epoch_s, event_seq, txn_id) AS _7d_sum_amount_cents,
        max(amount_cents) OVER (PARTITION BY card_token ORDER BY epoch_s, event_seq, txn_id ROWS BETWEEN _hist_n - _7d_start PRECEDING AND 1 PRECEDING) AS _7d_max_amount_cents,
        -- prior events in the last 30d
        _hist_n - _30d_start AS _30d_n,
        _cum_amount_cents - lag(_cum_amount_cents, _hist_n - _30d_start) OVER (PARTITION BY card_token ORDER BY epoch_s, event_seq, txn_id) AS _30d_sum_amount_cents,
        max(amount_cents) OVER (PARTITION BY card_token ORDER BY epoch_s, event_seq, txn_id ROWS BETWEEN _hist_n - _30d_start PRECEDING AND 1 PRECEDING) AS _30d_max_amount_cents
    FROM running
)
SELECT
    a.txn_id,
    a.event_seq,
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
    a._1h_n AS txn_count_1h,
    CAST(a._1h_sum_amount_cents AS BIGINT) AS amount_sum_1h,
    CASE WHEN a._1h_n = 0 THEN NULL ELSE CAST(a._1h_sum_amount_cents AS DOUBLE) / a._1h_n END AS amount_mean_1h,
    CAST(a._1h_max_amount_cents AS BIGINT) AS amount_max_1h,
    a._24h_n AS txn_count_24h,
    CAST(a._24h_sum_amount_cents AS BIGINT) AS amount_sum_24h,
    CASE WHEN a._24h_n = 0 THEN NULL ELSE CAST(a._24h_sum_amount_cents AS DOUBLE) / a._24h_n END AS amount_mean_24h,
    CAST(a._24h_max_amount_cents AS BIGINT) AS amount_max_24h,
    a._7d_n AS txn_count_7d,
    CAST(a._7d_sum_amount_cents AS BIGINT) AS amount_sum_7d,
    CASE WHEN a._7d_n = 0 THEN NULL ELSE CAST(a._7d_sum_amount_cents AS DOUBLE) / a._7d_n END AS amount_mean_7d,
    CAST(a._7d_max_amount_cents AS BIGINT) AS amount_max_7d,
    a._30d_n AS txn_count_30d,
    CAST(a._30d_sum_amount_cents AS BIGINT) AS amount_sum_30d,
    CASE WHEN a._30d_n = 0 THEN NULL ELSE CAST(a._30d_sum_amount_cents AS DOUBLE) / a._30d_n END AS amount_mean_30d,
    CAST(a._30d_max_amount_cents AS BIGINT) AS amount_max_30d,
    CAST(a._24h_sum_has_error AS BIGINT) AS error_count_24h,
    CAST(a._24h_sum_has_bad_credential AS BIGINT) AS bad_credential_count_24h,
    CAST(a._24h_sum_is_online AS BIGINT) AS online_count_24h,
    CAST(a._24h_sum_is_foreign AS BIGINT) AS foreign_count_24h,
    CASE WHEN a._hist_n < 2 OR a._hist_n * a._cumsq_amount_cents - a._cum_amount_cents * a._cum_amount_cents <= 0 THEN NULL ELSE (CAST(a.amount_cents AS DOUBLE) - CAST(a._cum_amount_cents AS DOUBLE) / a._hist_n) / sqrt(CAST(a._hist_n * a._cumsq_amount_cents - a._cum_amount_cents * a._cum_amount_cents AS DOUBLE) / (CAST(a._hist_n AS DOUBLE) * a._hist_n)) END AS amount_zscore,
    a.epoch_s - a._prev_epoch_s AS seconds_since_previous,
    a._first_merchant_id AS is_new_merchant,
    a._first_city_key AS is_new_city,
    a._first_merchant_state AS is_new_state_or_country,
    a._first_mcc AS is_new_mcc,
    CAST(a._1h_sum__first_merchant_id AS BIGINT) AS new_merchant_count_1h,
    CAST(a._24h_sum__first_merchant_id AS BIGINT) AS new_merchant_count_24h,
    CAST(a._7d_sum__first_merchant_id AS BIGINT) AS new_merchant_count_7d,
    CASE WHEN a.channel IS NULL OR a._hist_n = 0 THEN NULL ELSE CAST(a._same_channel_n AS DOUBLE) / a._hist_n END AS channel_usual_share,
    coalesce(a.channel <> a._prev_channel, false) AS channel_changed,
    CASE WHEN a.hour_of_day IS NULL OR a._hist_n = 0 THEN NULL ELSE CAST(a._same_hour_of_day_n AS DOUBLE) / a._hist_n END AS hour_usual_share,
    CASE WHEN date_diff('day', c.acct_open_date, CAST(a.ts AS DATE)) < 0 THEN 0 ELSE date_diff('day', c.acct_open_date, CAST(a.ts AS DATE)) END AS card_age_days,
    c.credit_limit AS credit_limit,
    c.has_chip AS has_chip
FROM aggregates AS a
LEFT JOIN cards AS c ON c.card_token = a.card_token
