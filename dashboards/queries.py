"""Every page's SQL, over the aggregate tables, and for the fraud page the same figures from the raw lake
tables (what a page would cost without the aggregates: the bench runs both side by side). `PAGE_TABLES`:
the tables each page reads, the scope of a viewer's read session.

Filter values reach the SQL only as dates (ISO literals) and channels from the fixed channel list, never
as free text.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

CHANNELS = ("chip", "swipe", "online")


@dataclass(frozen=True)
class FraudFilter:
    """The fraud page's filters: an inclusive day range and the channels shown."""

    start: date
    end: date
    channels: tuple[str, ...] = CHANNELS

    def __post_init__(self) -> None:
        if not isinstance(self.start, date) or not isinstance(self.end, date):
            raise TypeError("start and end are dates")
        unknown = set(self.channels) - set(CHANNELS)
        if unknown:
            raise ValueError(f"unknown channels: {', '.join(sorted(unknown))}")

    @property
    def first_month(self) -> date:
        return self.start.replace(day=1)


@dataclass(frozen=True)
class Query:
    """One figure: its SQL over the aggregates (and the tables it needs), and over the raw tables."""

    sql: str
    needs: tuple[str, ...]
    raw_sql: str | None = None
    raw_needs: tuple[str, ...] = ()


_SUMS = (
    "CAST(sum(transactions) AS BIGINT) AS transactions, CAST(sum(frauds) AS BIGINT) AS frauds, "
    "CAST(sum(amount_cents) AS BIGINT) AS amount_cents, "
    "CAST(sum(fraud_amount_cents) AS BIGINT) AS fraud_amount_cents"
)
_RAW_SUMS = (
    "CAST(count(*) AS BIGINT) AS transactions, "
    "CAST(sum(CASE WHEN is_fraud THEN 1 ELSE 0 END) AS BIGINT) AS frauds, "
    "CAST(sum(amount_cents) AS BIGINT) AS amount_cents, "
    "CAST(sum(CASE WHEN is_fraud THEN amount_cents ELSE 0 END) AS BIGINT) AS fraud_amount_cents"
)


def _channels(f: FraudFilter) -> str:
    return ", ".join(f"'{c}'" for c in f.channels) or "NULL"


def fraud_queries(f: FraudFilter) -> dict[str, Query]:
    """The fraud operations page's figures for filter `f`."""
    days = f"day BETWEEN DATE '{f.start.isoformat()}' AND DATE '{f.end.isoformat()}'"
    months = f"month BETWEEN DATE '{f.first_month.isoformat()}' AND DATE '{f.end.isoformat()}'"
    channel = f"channel IN ({_channels(f)})"
    raw_days = f"CAST(ts AS DATE) BETWEEN DATE '{f.start.isoformat()}' AND DATE '{f.end.isoformat()}'"
    raw_months = (
        f"ts >= TIMESTAMP '{f.first_month.isoformat()} 00:00:00' "
        f"AND CAST(ts AS DATE) <= DATE '{f.end.isoformat()}'"
    )
    daily, t = ("dash_fraud_daily",), ("transactions",)

    def by_month(table: str, column: str, raw_column: str) -> Query:
        return Query(
            f"SELECT {column}, {_SUMS} FROM {table} WHERE {months} AND {channel} GROUP BY {column} "
            f"ORDER BY {column}",
            (table,),
            f"SELECT {raw_column} AS {column}, {_RAW_SUMS} FROM transactions "
            f"WHERE {raw_months} AND {channel} GROUP BY 1 ORDER BY 1",
            t,
        )

    return {
        # the page's totals, weekly series and channel split, all from this one query
        "day_channel": Query(
            f"SELECT day, channel, {_SUMS} FROM dash_fraud_daily WHERE {days} AND {channel} "
            "GROUP BY day, channel ORDER BY day, channel",
            daily,
            f"SELECT CAST(ts AS DATE) AS day, channel, {_RAW_SUMS} FROM transactions "
            f"WHERE {raw_days} AND {channel} GROUP BY 1, 2 ORDER BY 1, 2",
            t,
        ),
        "by_mcc": by_month("dash_fraud_by_mcc", "mcc", "CAST(mcc AS INTEGER)"),
        "by_state": by_month(
            "dash_fraud_by_state", "state", "coalesce(nullif(merchant_state, ''), 'online')"
        ),
        "by_hour": by_month("dash_fraud_by_hour", "hour", "CAST(extract(hour FROM ts) AS INTEGER)"),
        "alerts": Query(
            "SELECT day, model_version, CAST(sum(scored) AS BIGINT) AS scored, "
            "CAST(sum(alerts) AS BIGINT) AS alerts, CAST(sum(true_alerts) AS BIGINT) AS true_alerts, "
            f"CAST(sum(frauds) AS BIGINT) AS frauds FROM dash_alerts_daily WHERE {days} "
            "GROUP BY day, model_version ORDER BY day, model_version",
            ("dash_alerts_daily",),
            "SELECT CAST(ts AS DATE) AS day, CAST(model_version AS INTEGER) AS model_version, "
            "CAST(count(*) AS BIGINT) AS scored, "
            "CAST(sum(CASE WHEN is_alert THEN 1 ELSE 0 END) AS BIGINT) AS alerts, "
            "CAST(sum(CASE WHEN is_alert AND is_fraud THEN 1 ELSE 0 END) AS BIGINT) AS true_alerts, "
            "CAST(sum(CASE WHEN is_fraud THEN 1 ELSE 0 END) AS BIGINT) AS frauds FROM transactions_scored "
            f"WHERE {raw_days} GROUP BY 1, 2 ORDER BY 1, 2",
            ("transactions_scored",),
        ),
        "reasons": Query(
            "SELECT feature, CAST(sum(alerts) AS BIGINT) AS alerts, "
            "CAST(sum(CASE WHEN reason_rank = 1 THEN alerts ELSE 0 END) AS BIGINT) AS first_reason "
            f"FROM dash_reason_codes WHERE {months} GROUP BY feature ORDER BY alerts DESC, feature LIMIT 15",
            ("dash_reason_codes",),
        ),
        "freshness": Query("SELECT * FROM dash_freshness ORDER BY table_name", ("dash_freshness",)),
    }


def customer_queries(segments: tuple[str, ...] | None = None) -> dict[str, Query]:
    """The customers page's figures, for the segments chosen (None: all)."""

    def where(column: str = "segment_name") -> str:
        if not segments:
            return ""
        names = ", ".join("'" + s.replace("'", "''") + "'" for s in segments)
        return f" WHERE {column} IN ({names})"

    return {
        "segments": Query(
            f"SELECT * FROM dash_segments{where()} ORDER BY customers DESC", ("dash_segments",)
        ),
        "profiles": Query(
            f"SELECT * FROM dash_segment_profiles{where()} ORDER BY segment_name, feature",
            ("dash_segment_profiles",),
        ),
        "bands": Query("SELECT * FROM dash_clv_bands ORDER BY band_order", ("dash_clv_bands",)),
        "histogram": Query(
            "SELECT * FROM dash_clv_histogram ORDER BY bin_low_cents", ("dash_clv_histogram",)
        ),
        "matrix": Query(
            f"SELECT * FROM dash_segment_clv{where()} ORDER BY segment_name, band_order",
            ("dash_segment_clv",),
        ),
    }


def model_queries() -> dict[str, Query]:
    """The model-health page's figures."""
    return {
        "versions": Query(
            "SELECT * FROM dash_model_versions ORDER BY model_name, version DESC", ("dash_model_versions",)
        ),
        "metrics": Query(
            "SELECT * FROM dash_model_metrics ORDER BY model_name, version, metric", ("dash_model_metrics",)
        ),
        "champions": Query(
            'SELECT * FROM dash_champion_history ORDER BY "at" DESC', ("dash_champion_history",)
        ),
        "monitor": Query(
            'SELECT * FROM dash_monitor_metrics ORDER BY model_name, metric, "at"', ("dash_monitor_metrics",)
        ),
        "alarms": Query(
            "SELECT * FROM dash_alarm_history ORDER BY observed_at, alarm_name", ("dash_alarm_history",)
        ),
        "runs": Query("SELECT * FROM dash_pipeline_runs ORDER BY started_at DESC", ("dash_pipeline_runs",)),
        "reports": Query(
            "SELECT * FROM dash_drift_reports ORDER BY created_at DESC", ("dash_drift_reports",)
        ),
        "quarantine": Query(
            "SELECT * FROM dash_quarantine ORDER BY source, row_count DESC", ("dash_quarantine",)
        ),
    }


FRESHNESS = "freshness"  # the fraud page's query its date range also reads (the newest event)


def page_tables() -> dict[str, frozenset[str]]:
    """The tables each page (`fraud`, `customers`, `models`) reads."""
    any_filter = FraudFilter(date(2000, 1, 1), date(2000, 1, 1))
    pages = {"fraud": fraud_queries(any_filter), "customers": customer_queries(), "models": model_queries()}
    return {page: frozenset(n for q in queries.values() for n in q.needs) for page, queries in pages.items()}


def viewer_tables(pages: tuple[str, ...]) -> frozenset[str]:
    """The tables a viewer who may open `pages` may read: those pages' tables, nothing else."""
    tables = page_tables()
    return frozenset().union(*(tables[p] for p in pages))
