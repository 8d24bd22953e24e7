"""`cdp explain TXN_ID`: reproduce a past fraud decision from what the lake keeps.

The scored event (`transactions_scored`) records the model and version that scored it, the feature view's
version, its features and their hash. To reproduce it:
1. its card's earlier events are read from the lake's `transactions` (every event before it in the view's
   event order: ts, event_seq, txn_id) and replayed through the online feature code the stream handler
   uses (`features.online.OnlineFeatures` of the fraud view, from an empty state, as the online sync
   does), then the event itself gives its features: point in time, from the lake alone;
2. the same model version is loaded from the registry and scores them with the serving code (the same
   encoding, probability and SHAP reason codes; the degraded rules for an event they scored);
3. the recomputed features' hash is compared with the recorded one (equal: the decision is reproduced from
   the lake; different: the features that differ are listed, e.g. an event that reached the lake after
   the decision), and the probability and reason codes with the served ones.
Nothing personal is printed: tokens, times, feature values and scores only.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cdp.streaming.records import RECORD_FIELDS
from features.fraud import FRAUD_VIEW
from features.online import CardProfile, OnlineFeatures
from features.version import view_version
from inference.streaming.scored import feature_hash, features_json

if TYPE_CHECKING:
    from cdp.backends import Backends
    from cdp.scoring.port import Score

_TXN_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_CARD = re.compile(r"^crd_[A-Za-z0-9_-]{1,128}$")
PROBABILITY_TOLERANCE = 1e-6
RULES_MODEL = "rules"  # the degraded rules' model name (version 0)


class ExplainError(LookupError):
    """The decision cannot be explained (one line: no such scored event, a model version gone, ...)."""


class _MemoryStore:
    """An online store in memory: the replay starts from nothing and keeps nothing."""

    def __init__(self) -> None:
        self.items: dict[str, bytes] = {}

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        return {k: self.items[k] for k in keys if k in self.items}

    def put_many(self, items: Mapping[str, bytes]) -> None:
        self.items.update(items)

    def delete_many(self, keys: Iterable[str]) -> None:
        for k in keys:
            self.items.pop(k, None)

    def keys(self, prefix: str = "") -> list[str]:
        return sorted(k for k in self.items if k.startswith(prefix))

    def snapshot(self) -> int:
        return 0


@dataclass(frozen=True)
class Explanation:
    """A past decision beside its recomputation."""

    txn_id: str
    card_token: str
    customer_token: str  # what the audit record of an explanation is keyed by (never printed)
    ts: str
    model: str
    model_version: int
    scored_at: str
    feature_view: str | None  # as recorded (None: scored before views were versioned)
    current_feature_view: str
    threshold: float
    served_probability: float
    served_reasons: list[tuple[str, float]]
    recomputed_probability: float
    recomputed_reasons: list[tuple[str, float]]
    served_hash: str | None
    recomputed_hash: str
    prior_events: int  # the card's earlier events replayed from the lake
    differing_features: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def features_match(self) -> bool:
        return self.served_hash == self.recomputed_hash

    @property
    def score_matches(self) -> bool:
        return abs(self.served_probability - self.recomputed_probability) <= PROBABILITY_TOLERANCE

    @property
    def reasons_match(self) -> bool:
        return [f for f, _ in self.served_reasons] == [f for f, _ in self.recomputed_reasons]

    @property
    def reproduced(self) -> bool:
        return self.features_match and self.score_matches and self.reasons_match

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "features_match": self.features_match,
            "score_matches": self.score_matches,
            "reasons_match": self.reasons_match,
            "reproduced": self.reproduced,
        }

    def lines(self) -> list[str]:
        """What `cdp explain` prints."""
        alert = "alert" if self.served_probability >= self.threshold else "no alert"
        again = "alert" if self.recomputed_probability >= self.threshold else "no alert"
        view = self.feature_view or "not recorded"
        lines = [
            f"{self.txn_id} (card {self.card_token}, {self.ts}): scored by {self.model} "
            f"v{self.model_version} at {self.scored_at}; feature view {view} "
            f"(current definitions: {self.current_feature_view})",
            f"served:     p={self.served_probability:.6f} ({alert} at {self.threshold:.4g}); "
            f"reason codes: {_reasons(self.served_reasons)}",
            f"recomputed: p={self.recomputed_probability:.6f} ({again}); "
            f"reason codes: {_reasons(self.recomputed_reasons)} "
            f"(features from {self.prior_events} earlier events of the card in the lake)",
        ]
        if self.features_match:
            lines.append(f"features: hash equal ({self.recomputed_hash})")
        else:
            served = self.served_hash or "not recorded"
            lines.append(f"features: hash differs (served {served}, recomputed {self.recomputed_hash})")
            for name, values in self.differing_features.items():
                lines.append(f"  {name}: served {values['served']!r}, recomputed {values['recomputed']!r}")
        verdict = "reproduced" if self.reproduced else "NOT reproduced"
        checks = [
            f"features {'match' if self.features_match else 'differ'}",
            f"score {'matches' if self.score_matches else 'differs'}",
            f"reason codes {'match' if self.reasons_match else 'differ'}",
        ]
        lines.append(f"decision {verdict}: {', '.join(checks)}")
        return lines


def _reasons(reasons: list[tuple[str, float]]) -> str:
    return ", ".join(f"{f} ({c:+.3f})" for f, c in reasons) or "none"


def scored_event(backends: Backends, txn_id: str) -> dict[str, Any]:
    """The `transactions_scored` row of `txn_id`; `ExplainError` when there is none."""
    from cdp.catalog.port import CatalogError

    if not isinstance(txn_id, str) or not _TXN_ID.match(txn_id):
        raise ExplainError("a transaction id is 1-128 letters, digits, '-' or '_'")
    try:
        rows = backends.catalog.query(
            f"SELECT * FROM transactions_scored WHERE txn_id = '{txn_id}' ORDER BY scored_at LIMIT 1"
        ).to_pylist()
    except CatalogError:
        rows = []
    if not rows:
        raise ExplainError(f"no scored event {txn_id} in the lake (transactions_scored)")
    return rows[0]


def recompute_features(backends: Backends, event: Mapping[str, Any]) -> tuple[dict[str, Any], int]:
    """The event's fraud-view features from its card's earlier lake events, point in time (and how many
    earlier events were replayed)."""
    card = str(event["card_token"])
    if not _CARD.match(card):
        raise ExplainError("the scored event's card token is malformed")
    columns = ", ".join(RECORD_FIELDS)
    bound = event["ts"].isoformat(sep=" ")
    history = backends.catalog.query(
        f"SELECT {columns} FROM transactions WHERE card_token = '{card}' AND ts <= TIMESTAMP '{bound}' "
        f"ORDER BY ts, event_seq, txn_id"
    ).to_pylist()
    key = (event["ts"], event["event_seq"], event["txn_id"])
    earlier = [r for r in history if (r["ts"], r["event_seq"], r["txn_id"]) < key]
    online = OnlineFeatures(FRAUD_VIEW, _MemoryStore(), cards=_card_profile(backends, card))
    for row in earlier:
        online.update(row)
    return online.update({name: event[name] for name in RECORD_FIELDS}), len(earlier)


def _card_profile(backends: Backends, card: str) -> dict[str, CardProfile]:
    from cdp.catalog.port import CatalogError

    try:
        rows = backends.catalog.query(
            "SELECT card_token, acct_open_date, credit_limit, has_chip FROM cards "
            f"WHERE card_token = '{card}'"
        ).to_pylist()
    except CatalogError:  # no cards table: the stream scored without card attributes too
        return {}
    return {r["card_token"]: CardProfile.from_row(r) for r in rows}


def rescore(
    backends: Backends,
    model: str,
    version: int,
    features: Mapping[str, Any],
    reason_codes: int,
    explain_from: float | None = None,
) -> Score:
    """The features scored again by the version that scored them (the degraded rules for version 0);
    reason codes only when the score reaches `explain_from` (the stream explains its alerts only)."""
    if model == RULES_MODEL or int(version) == 0:
        from inference.degraded import rules_batch

        return rules_batch([dict(features)]).scores[0]
    from cdp.registry.port import ModelVersionNotFoundError
    from inference.fraud_scoring import encode, encode_rows, score_frame
    from inference.loaded import load_version

    try:
        registered = backends.model_registry.get(model, int(version))
    except ModelVersionNotFoundError:
        raise ExplainError(f"{model} v{version} is no longer in the registry") from None
    loaded = load_version(registered, backends.object_store)
    rows = [dict(features)]
    inputs = encode_rows(loaded, rows) if loaded.one_hot else encode(loaded, rows)
    return score_frame(loaded, inputs, reason_codes, explain_from=explain_from)[0]


def _differences(served: Mapping[str, Any], recomputed: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The features whose values differ (as JSON keeps them), by name."""
    again = json.loads(features_json(recomputed))
    out = {}
    for name in sorted(set(served) | set(again)):
        a, b = served.get(name), again.get(name)
        same = a == b or (isinstance(a, float) and isinstance(b, float) and math.isclose(a, b, rel_tol=1e-12))
        if not same:
            out[name] = {"served": a, "recomputed": b}
    return out


def explain_transaction(backends: Backends, txn_id: str) -> Explanation:
    """Find the scored event, recompute its features from the lake, score them with the same version."""
    event = scored_event(backends, txn_id)
    features, prior = recompute_features(backends, event)
    text = features_json(features)
    served_reasons = [(str(r["feature"]), float(r["contribution"])) for r in event.get("reasons") or []]
    from inference.config import ServingConfig

    codes = len(served_reasons) or ServingConfig.from_settings(backends.settings).reason_codes
    threshold = event.get("threshold")
    score = rescore(
        backends,
        str(event["model"]),
        int(event["model_version"]),
        features,
        max(codes, 1),
        explain_from=None if threshold is None else float(threshold),
    )
    recomputed_reasons = [(str(f), float(c)) for f, c in score.reasons][: len(served_reasons) or None]
    served_features = json.loads(event["features"]) if event.get("features") else {}
    return Explanation(
        txn_id=txn_id,
        card_token=str(event["card_token"]),
        customer_token=str(event.get("user_token") or "-"),
        ts=_moment(event["ts"]),
        model=str(event["model"]),
        model_version=int(event["model_version"]),
        scored_at=_moment(event.get("scored_at")),
        feature_view=event.get("feature_view"),
        current_feature_view=view_version(FRAUD_VIEW.name),
        threshold=float(event["threshold"]),
        served_probability=float(event["fraud_probability"]),
        served_reasons=served_reasons,
        recomputed_probability=float(score.probability),
        recomputed_reasons=recomputed_reasons,
        served_hash=event.get("feature_hash"),
        recomputed_hash=feature_hash(text),
        prior_events=prior,
        differing_features=_differences(served_features, features),
    )


def _moment(value: Any) -> str:
    return value.isoformat(sep=" ") if isinstance(value, datetime) else str(value)
