"""The customer view's lake tables: `customer_features`, `clv_training_set`, `segmentation_training_set`.

- `customer_features`: one row per (user_token, as_of) for the cut-offs asked (default: the CLV cut-off and
  12 months before it), the committed SQL of the `customer` view.
- `clv_training_set`: the CLV model's declared inputs (`features.model_inputs`: never a protected
  attribute) as of `cutoff - 12 months` with `label` = net spend (cents) in
  [as_of, as_of + 12 months), split train / validation 80/20 by a stable hash of the user token; and the
  features as of `cutoff` with the label over [cutoff, cutoff + 12 months) as split `test`. Beside them
  `heuristic_last_12m`, the net spend in the 12 months before as_of (the baseline to beat).
- `segmentation_training_set`: user_token and the segmentation model's declared inputs as of the cut-off
  (no label). The protected attributes (gender, age) stay in `customer_features` only.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from cdp.backends import Backends
from cdp.lake.tables import LakeTable
from cdp.lake.writer import LakeWriter
from features.asof_render import AS_OF_TABLE
from features.customer import CUSTOMER_VIEW
from features.model_inputs import CLV_INPUTS, SEGMENTATION_INPUTS
from features.views import view_sql

CUSTOMER_FEATURES = "customer_features"
CLV_TRAINING_SET = "clv_training_set"
SEGMENTATION_TRAINING_SET = "segmentation_training_set"
VALIDATION_PERCENT = 20

AS_OF_SCHEMA = pa.schema([("as_of", pa.timestamp("s"))])

# Net spend of each user in the 12 months after and before each cut-off (cents).
_SPEND_AROUND_SQL = """
SELECT
    c.as_of, t.user_token,
    CAST(sum(CASE WHEN t.ts >= c.as_of THEN t.amount_cents ELSE 0 END) AS BIGINT) AS future_spend_12m,
    CAST(sum(CASE WHEN t.ts < c.as_of THEN t.amount_cents ELSE 0 END) AS BIGINT) AS spend_last_12m
FROM transactions AS t
JOIN as_of_dates AS c
    ON t.ts >= c.as_of - INTERVAL 12 MONTH AND t.ts < c.as_of + INTERVAL 12 MONTH
GROUP BY c.as_of, t.user_token
"""


def months_before(day: date, months: int) -> date:
    """The same day `months` calendar months earlier (clamped to the month's last day)."""
    y, m = divmod(day.year * 12 + day.month - 1 - months, 12)
    m += 1
    for d in (day.day, 30, 29, 28):
        try:
            return date(y, m, min(day.day, d))
        except ValueError:
            continue
    raise ValueError(f"no day {day.day} in {y}-{m}")  # pragma: no cover


def _at_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day)


def write_as_of_dates(backends: Backends, days: list[date]) -> None:
    """Replace the lake table `as_of_dates` the as-of SQL reads its cut-offs from."""
    table = LakeTable(AS_OF_TABLE, AS_OF_SCHEMA)
    rows = pa.table({"as_of": pa.array([_at_midnight(d) for d in sorted(set(days))], pa.timestamp("s"))})
    LakeWriter(backends.object_store, backends.settings.lake_bucket).replace_table(table, rows)
    backends.catalog.register_table(table.info(backends.settings.lake_bucket))


def compute_customer_features(backends: Backends, days: list[date]) -> pa.Table:
    """Offline customer features of every user with a transaction before each cut-off in `days`."""
    write_as_of_dates(backends, days)
    return backends.catalog.query(
        f"SELECT v.* FROM (\n{view_sql(CUSTOMER_VIEW.name)}) AS v ORDER BY v.as_of, v.user_token"
    )


def validation_bucket(user_token: str) -> bool:
    """Stable 80/20 assignment: True for the ~20 % of users in the validation split."""
    digest = hashlib.sha256(user_token.encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100 < VALIDATION_PERCENT


def _register(backends: Backends, name: str, rows: pa.Table) -> dict[str, Any]:
    bucket = backends.settings.lake_bucket
    table = LakeTable(name, rows.schema)
    LakeWriter(backends.object_store, bucket).replace_table(table, rows)
    backends.catalog.register_table(table.info(bucket))
    return {"table": name, "location": table.location(bucket), "rows": rows.num_rows}


# CLV training rows: customers as of several earlier cut-offs (each with its full 12-month label before the
# test cut-off), so the model sees every customer at several points of their trajectory.
TRAINING_MONTHS_BEFORE = (12, 15, 18, 21, 24)


def build_customer_tables(
    backends: Backends, cutoff: date | None = None, extra_as_of: list[date] | None = None
) -> dict[str, Any]:
    """Write and register the three customer tables for the CLV cut-off (default `settings.clv_cutoff`);
    returns a summary per table (no PII: counts, dates, table locations)."""
    cutoff = cutoff or backends.settings.clv_cutoff
    train_days = [months_before(cutoff, m) for m in TRAINING_MONTHS_BEFORE]
    days = sorted({*train_days, cutoff, *(extra_as_of or [])})
    write_as_of_dates(backends, days)
    features = CUSTOMER_VIEW.feature_names
    sql = (
        f"WITH f AS (\n{view_sql(CUSTOMER_VIEW.name)}),\ns AS ({_SPEND_AROUND_SQL})\n"
        "SELECT f.*, coalesce(s.future_spend_12m, 0) AS label, "
        "coalesce(s.spend_last_12m, 0) AS heuristic_last_12m\n"
        "FROM f LEFT JOIN s ON s.as_of = f.as_of AND s.user_token = f.user_token\n"
        "ORDER BY f.as_of, f.user_token"
    )
    rows = backends.catalog.query(sql)
    summary: dict[str, Any] = {"cutoff": str(cutoff), "as_of": [str(d) for d in days]}
    summary[CUSTOMER_FEATURES] = _register(
        backends, CUSTOMER_FEATURES, rows.select(["user_token", "as_of", *features])
    )

    as_of = rows["as_of"]
    train_rows = rows.filter(pc.is_in(as_of, pa.array([_at_midnight(d) for d in train_days], as_of.type)))
    test_rows = rows.filter(pc.equal(as_of, pa.scalar(_at_midnight(cutoff), as_of.type)))
    in_validation = [validation_bucket(u) for u in train_rows["user_token"].to_pylist()]
    train_split = pa.array(["validation" if v else "train" for v in in_validation], pa.string())
    clv_columns = ["user_token", "as_of", "split", "label", *CLV_INPUTS.inputs, "heuristic_last_12m"]
    clv = pa.concat_tables(
        [
            train_rows.append_column("split", train_split).select(clv_columns),
            test_rows.append_column("split", pa.array(["test"] * test_rows.num_rows, pa.string())).select(
                clv_columns
            ),
        ]
    )
    summary[CLV_TRAINING_SET] = _register(backends, CLV_TRAINING_SET, clv) | {
        "label": "label = future_spend_12m (net spend in cents over [as_of, as_of + 12 months))",
        "rows_by_split": {
            s: sum(1 for x in clv["split"].to_pylist() if x == s) for s in ("train", "validation", "test")
        },
        "label_window_covered": _label_window_covered(backends, cutoff),
    }
    summary[SEGMENTATION_TRAINING_SET] = _register(
        backends, SEGMENTATION_TRAINING_SET, test_rows.select(["user_token", *SEGMENTATION_INPUTS.inputs])
    )
    return summary


def _label_window_covered(backends: Backends, cutoff: date) -> bool:
    """True when the lake has transactions up to the end of the test label window (12 months later)."""
    last = backends.catalog.query("SELECT max(ts) AS last FROM transactions").to_pylist()[0]["last"]
    end = months_before(cutoff, -12)
    return last is not None and last.date() >= months_before(end, 1)
