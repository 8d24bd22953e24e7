"""The lake aggregate tables: name, the lake tables each is computed from, and its SQL (DuckDB dialect,
transpiled for Athena by the catalog). Every figure is a count or a sum over tokens-only tables: no
aggregate holds a token, a name or an amount of one customer.

Grains (chosen so each table stays small at full size, ~24M transactions over ~30 years):
- `dash_fraud_daily`: day x channel (about 11k days x 3 channels);
- `dash_fraud_by_mcc`, `dash_fraud_by_state`, `dash_fraud_by_hour`: calendar month x channel x the
  dimension (a date filter on those panels counts whole months);
- `dash_alerts_daily`: day x model version of the scored stream (alerts, and once labels are in, the
  alerts that were frauds and the frauds);
- `dash_reason_codes`: month x model version x reason rank x feature of the alerts' reason codes;
- `dash_freshness`: one row per source table (rows, first and last event, last scored) - from this the
  dashboard shows data freshness and the stream's scoring lag.
"""

from __future__ import annotations

from dataclasses import dataclass

TRANSACTIONS = "transactions"
SCORED = "transactions_scored"
ALERTS = "fraud_alerts"
STREAM_QUARANTINE = "stream_quarantine"

REASON_RANKS = 3  # reason codes counted per alert (the serving default)


ROWS_FILTER = "{rows}"  # in a template: where a condition on the source rows may be added


@dataclass(frozen=True)
class Aggregate:
    """One aggregate table: built from `sources` (lake tables that must all be registered) by its SQL.

    `template` is the SQL with `ROWS_FILTER` after each `WHERE` on a source (replaced by nothing for the
    whole table, or by `AND (<condition>)` to aggregate only some rows); `time_column` is its day or month
    column: every output row comes from source rows of that calendar month only, so the table can be
    refreshed month by month (`cdp.aggregates.incremental`)."""

    name: str
    sources: tuple[str, ...]
    template: str
    group: str  # what refreshes it: "fraud" (batch), "stream" (stream landing and scoring)
    time_column: str

    @property
    def sql(self) -> str:
        """The SQL over every row of the sources."""
        return self.template.replace(ROWS_FILTER, "")

    def sql_where(self, condition: str) -> str:
        """The SQL over the source rows that match `condition` (an SQL condition on a source's columns)."""
        return self.template.replace(ROWS_FILTER, f" AND ({condition})")


_MEASURES = """
    CAST(count(*) AS BIGINT) AS transactions,
    CAST(sum(CASE WHEN is_fraud THEN 1 ELSE 0 END) AS BIGINT) AS frauds,
    CAST(sum(amount_cents) AS BIGINT) AS amount_cents,
    CAST(sum(CASE WHEN is_fraud THEN amount_cents ELSE 0 END) AS BIGINT) AS fraud_amount_cents"""

_MONTH = "CAST(date_trunc('month', ts) AS DATE)"
_STATE = "coalesce(nullif(merchant_state, ''), 'online')"


def _by_month(dimension_sql: str, dimension: str) -> str:
    return (
        f"SELECT {_MONTH} AS month, channel, {dimension_sql} AS {dimension},{_MEASURES}\n"
        f"FROM {TRANSACTIONS} WHERE ts IS NOT NULL{ROWS_FILTER} GROUP BY 1, 2, 3"
    )


FRAUD_DAILY = Aggregate(
    "dash_fraud_daily",
    (TRANSACTIONS,),
    f"SELECT CAST(ts AS DATE) AS day, channel,{_MEASURES}\n"
    f"FROM {TRANSACTIONS} WHERE ts IS NOT NULL{ROWS_FILTER} GROUP BY 1, 2",
    "fraud",
    "day",
)
FRAUD_BY_MCC = Aggregate(
    "dash_fraud_by_mcc", (TRANSACTIONS,), _by_month("CAST(mcc AS INTEGER)", "mcc"), "fraud", "month"
)
FRAUD_BY_STATE = Aggregate(
    "dash_fraud_by_state", (TRANSACTIONS,), _by_month(_STATE, "state"), "fraud", "month"
)
FRAUD_BY_HOUR = Aggregate(
    "dash_fraud_by_hour",
    (TRANSACTIONS,),
    _by_month("CAST(extract(hour FROM ts) AS INTEGER)", "hour"),
    "fraud",
    "month",
)

ALERTS_DAILY = Aggregate(
    "dash_alerts_daily",
    (SCORED,),
    f"""SELECT CAST(ts AS DATE) AS day, model, CAST(model_version AS INTEGER) AS model_version,
    CAST(count(*) AS BIGINT) AS scored,
    CAST(sum(CASE WHEN is_alert THEN 1 ELSE 0 END) AS BIGINT) AS alerts,
    CAST(sum(CASE WHEN is_alert AND is_fraud THEN 1 ELSE 0 END) AS BIGINT) AS true_alerts,
    CAST(sum(CASE WHEN is_fraud THEN 1 ELSE 0 END) AS BIGINT) AS frauds,
    CAST(sum(CASE WHEN is_fraud IS NULL THEN 0 ELSE 1 END) AS BIGINT) AS labelled
FROM {SCORED} WHERE ts IS NOT NULL{ROWS_FILTER} GROUP BY 1, 2, 3""",
    "stream",
    "day",
)

_REASON_RANK_SQL = "\nUNION ALL\n".join(
    f"SELECT {_MONTH} AS month, CAST(model_version AS INTEGER) AS model_version, {k} AS reason_rank, "
    f"reasons[{k}].feature AS feature FROM {ALERTS} WHERE array_length(reasons) >= {k}{ROWS_FILTER}"
    for k in range(1, REASON_RANKS + 1)
)
REASON_CODES = Aggregate(
    "dash_reason_codes",
    (ALERTS,),
    "SELECT month, model_version, reason_rank, feature, CAST(count(*) AS BIGINT) AS alerts\n"
    f"FROM (\n{_REASON_RANK_SQL}\n) AS r WHERE feature IS NOT NULL GROUP BY 1, 2, 3, 4",
    "stream",
    "month",
)

# The source columns the aggregates and `dash_freshness` read (a month's refresh reads only these).
SOURCE_COLUMNS: dict[str, tuple[str, ...]] = {
    TRANSACTIONS: ("ts", "channel", "is_fraud", "amount_cents", "mcc", "merchant_state"),
    SCORED: ("ts", "model", "model_version", "is_alert", "is_fraud", "scored_at"),
    ALERTS: ("ts", "model_version", "reasons", "scored_at"),
}

AGGREGATES: tuple[Aggregate, ...] = (
    FRAUD_DAILY,
    FRAUD_BY_MCC,
    FRAUD_BY_STATE,
    FRAUD_BY_HOUR,
    ALERTS_DAILY,
    REASON_CODES,
)

FRESHNESS = "dash_freshness"
# Per source table: the expression of its last scoring time (NULL where nothing is scored).
LAST_SCORED = {
    TRANSACTIONS: "CAST(NULL AS TIMESTAMP)",
    SCORED: "max(scored_at)",
    ALERTS: "max(scored_at)",
    STREAM_QUARANTINE: "CAST(NULL AS TIMESTAMP)",
}


def freshness_sql(present: set[str], refreshed_at: str) -> str | None:
    """The `dash_freshness` SQL over the source tables in `present` (None when none is): rows, first and
    last event and last scoring time per table; `refreshed_at` is an ISO timestamp (seconds)."""
    parts = [
        f"SELECT '{name}' AS table_name, CAST(count(*) AS BIGINT) AS row_count, min(ts) AS first_event, "
        f"max(ts) AS last_event, {last_scored} AS last_scored_at, "
        f"CAST('{refreshed_at}' AS TIMESTAMP) AS refreshed_at FROM {name}"
        for name, last_scored in LAST_SCORED.items()
        if name in present
    ]
    return "\nUNION ALL\n".join(parts) or None


def by_name() -> dict[str, Aggregate]:
    """Every lake aggregate by table name."""
    return {a.name: a for a in AGGREGATES}
