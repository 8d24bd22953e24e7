"""Degraded mode: fraud decisions from a small, documented rule set when no model can score.

With no fraud champion loaded, or the model failing on a request, the API and the stream handler answer
from these rules over the same online features instead of failing, and say so: the decision carries
`model = "rules"` and version 0. Each rule that fires is a reason (contribution 1.0); the probability is
k / (k + 1) for k rules fired (0 when none), so one rule reaches the rules' threshold of 0.5 (an alert).

The rules (amounts in cents; a feature that is missing or null never fires a rule):
- `amount_far_above_card_mean`: at least 500.00 and at least 5x the card's 30-day mean amount;
- `new_country_high_amount`: abroad, in a state or country the card never used, at least 200.00;
- `card_not_present_burst`: online, after 5 or more online transactions of the card in the last 24 hours;
- `repeated_bad_credentials`: a bad CVV / PIN / card number / expiry, after 2 or more in the last 24 hours.

Every degraded decision is counted in the `DegradedDecisions` metric (namespace `CDP/Serving`, dimension
`Model` = the fraud model's registry name); `monitoring.rules.degraded_alarms` alarms on it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cdp.metrics.port import MetricDatum, MetricsStore
from cdp.scoring.port import Score, ScoredBatch

log = logging.getLogger("cdp.inference.degraded")

RULES_MODEL = "rules"
RULES_VERSION = 0
RULES_THRESHOLD = 0.5
SERVING_NAMESPACE = "CDP/Serving"
DEGRADED_DECISIONS = "DegradedDecisions"


def _number(row: Mapping[str, Any], name: str) -> float | None:
    value = row.get(name)
    if value is None or isinstance(value, bool | str):
        return None
    return float(value)


def _amount_far_above_card_mean(row: Mapping[str, Any]) -> bool:
    amount, mean = _number(row, "amount_cents"), _number(row, "amount_mean_30d")
    return amount is not None and mean is not None and amount >= 50_000 and amount >= 5 * max(mean, 0.0)


def _new_country_high_amount(row: Mapping[str, Any]) -> bool:
    amount = _number(row, "amount_cents")
    return (
        bool(row.get("is_foreign")) and bool(row.get("is_new_state_or_country")) and (amount or 0) >= 20_000
    )


def _card_not_present_burst(row: Mapping[str, Any]) -> bool:
    return bool(row.get("is_online")) and (_number(row, "online_count_24h") or 0) >= 5


def _repeated_bad_credentials(row: Mapping[str, Any]) -> bool:
    return bool(row.get("has_bad_credential")) and (_number(row, "bad_credential_count_24h") or 0) >= 2


@dataclass(frozen=True)
class Rule:
    name: str
    fires: Callable[[Mapping[str, Any]], bool]


RULES = (
    Rule("amount_far_above_card_mean", _amount_far_above_card_mean),
    Rule("new_country_high_amount", _new_country_high_amount),
    Rule("card_not_present_burst", _card_not_present_burst),
    Rule("repeated_bad_credentials", _repeated_bad_credentials),
)


def rules_score(row: Mapping[str, Any]) -> Score:
    """One transaction's degraded score from its online features."""
    fired = [rule.name for rule in RULES if rule.fires(row)]
    return Score(len(fired) / (len(fired) + 1), [(name, 1.0) for name in fired])


def rules_batch(feature_rows: Sequence[Mapping[str, Any]]) -> ScoredBatch:
    """A batch scored by the rules (`model = "rules"`, version 0, threshold 0.5)."""
    return ScoredBatch(RULES_MODEL, RULES_VERSION, RULES_THRESHOLD, [rules_score(r) for r in feature_rows])


class DegradedDecisions:
    """Counts degraded decisions per model and publishes them to the metrics store: at once with
    `flush_seconds` 0 (the stream handler: one datum per batch), else at most every `flush_seconds` (the
    API: no metrics write per request) and at `flush()`. A failing store is logged, never raised."""

    def __init__(
        self,
        metrics: Callable[[], MetricsStore] | None,
        flush_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._metrics = metrics
        self.flush_seconds = flush_seconds
        self._clock = clock
        self._pending: Counter[str] = Counter()
        self._last_flush = clock()
        self._lock = threading.Lock()
        self.total: Counter[str] = Counter()

    def count(self, model_name: str, decisions: int) -> None:
        with self._lock:
            self._pending[model_name] += decisions
            self.total[model_name] += decisions
            due = self._clock() - self._last_flush >= self.flush_seconds
        if due:
            self.flush()

    def flush(self) -> None:
        """Publish the counts gathered since the last flush (one datum per model)."""
        with self._lock:
            pending, self._pending = self._pending, Counter()
            self._last_flush = self._clock()
        if not pending:
            return
        for model_name, n in pending.items():
            log.warning("%d fraud decisions of %s came from the degraded rules", n, model_name)
        if self._metrics is None:
            return
        now = datetime.now(UTC)
        data = [
            MetricDatum(SERVING_NAMESPACE, DEGRADED_DECISIONS, float(n), now, {"Model": name}, "Count")
            for name, n in sorted(pending.items())
        ]
        try:
            self._metrics().put_metric_data(data)
        except Exception as error:  # counting must never fail a decision
            log.warning("publishing %s failed: %s", DEGRADED_DECISIONS, type(error).__name__)
