"""The model card of a registered version: what a model-risk reviewer reads before and after approval.

A card is JSON (this `ModelCard`, versioned by `schema`) and the Markdown rendered from it; the registry
keeps both, one revision per change (`ModelRegistry.save_card`, newest wins). It is written when the
version is registered and updated as evidence arrives: each validation (the pipeline's evaluation on its
test split, the promotion gate's judgement on an unseen holdout) adds its metrics, calibration and
fairness figures; an approval records the approver (`record_approval`), who is never the registrant.

A labelled external evaluation (`cdp evaluate ... --record`: the version scored on labelled data brought
from outside its training, e.g. a bank's own confirmed frauds) is kept as an `ExternalEvaluation`, newest
first: the data's fingerprint and counts, the figures with their bootstrap intervals, who ran it and when.

Everything in a card is aggregate: metrics, feature names, group rates of groups with enough customers.
The registry refuses a card that looks like it holds personal data.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

SCHEMA = 1
PIPELINE_EVALUATION = "pipeline-evaluation"
PROMOTION_GATE = "promotion-gate"


class CardError(ValueError):
    """A card change the governance rules refuse (e.g. the registrant approving their own version)."""


@dataclass(frozen=True)
class Validation:
    """One piece of validation evidence: who judged the version, on what rows, with which figures."""

    at: str  # ISO date-time, UTC
    by: str  # PIPELINE_EVALUATION or PROMOTION_GATE
    outcome: str  # evaluated | approved | rejected | no-decision
    data: str  # what the figures were measured on (a split, a holdout)
    metrics: Mapping[str, float | None] = field(default_factory=dict)
    calibration: Mapping[str, float | None] = field(default_factory=dict)
    fairness: Mapping[str, Any] = field(default_factory=dict)
    external: Mapping[str, float | None] = field(default_factory=dict)  # a labelled external evaluation

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Validation:
        return cls(
            at=str(doc["at"]),
            by=str(doc["by"]),
            outcome=str(doc["outcome"]),
            data=str(doc.get("data", "")),
            metrics=dict(doc.get("metrics") or {}),
            calibration=dict(doc.get("calibration") or {}),
            fairness=dict(doc.get("fairness") or {}),
            external=dict(doc.get("external") or {}),
        )


@dataclass(frozen=True)
class ExternalEvaluation:
    """The version measured on labelled data from outside its training: what data (by fingerprint and
    counts, never its rows), which figures with which bootstrap intervals, by whom and when."""

    at: str  # ISO date-time, UTC
    by: str  # the identity that ran and recorded it
    role: str
    data: Mapping[str, Any]  # source (a file's name or a lake table), sha256 and what it hashes, time range
    rows: int
    frauds: int
    threshold: float
    alert_budget: float
    metrics: Mapping[str, float | None] = field(default_factory=dict)
    intervals: Mapping[str, list[float]] = field(default_factory=dict)  # name -> [low, high]
    bootstrap: Mapping[str, Any] = field(default_factory=dict)  # rounds, level, unit

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> ExternalEvaluation:
        return cls(
            at=str(doc["at"]),
            by=str(doc["by"]),
            role=str(doc.get("role", "")),
            data=dict(doc.get("data") or {}),
            rows=int(doc.get("rows", 0)),
            frauds=int(doc.get("frauds", 0)),
            threshold=float(doc.get("threshold", 0.0)),
            alert_budget=float(doc.get("alert_budget", 0.0)),
            metrics=dict(doc.get("metrics") or {}),
            intervals={str(k): [float(x) for x in v] for k, v in (doc.get("intervals") or {}).items()},
            bootstrap=dict(doc.get("bootstrap") or {}),
        )


@dataclass(frozen=True)
class ModelCard:
    """Intended use, data, features, evidence, limitations and accountability of one model version."""

    model_name: str
    version: int
    kind: str  # classification | regression | segmentation
    intended_use: str
    owner: str
    training_data: Mapping[str, Any]  # origin, synthetic (True/False/None), statement, snapshot, run
    features: Mapping[str, Any]  # view, inputs, protected_excluded, sensitive_inputs, statement
    limitations: tuple[str, ...] = ()
    registered_by: str | None = None
    registered_at: str | None = None
    approver: str | None = None  # empty until a named person approves it
    approved_at: str | None = None
    validations: tuple[Validation, ...] = ()
    external_evaluations: tuple[ExternalEvaluation, ...] = ()  # newest first
    retired_by: str | None = None  # set once, when a model-approver retires the version
    retired_at: str | None = None
    retirement_reason: str | None = None
    schema: int = SCHEMA

    # -- evidence ---------------------------------------------------------------------------------
    @property
    def last_validation(self) -> Validation | None:
        """The newest validation (by time), or None."""
        return max(self.validations, key=lambda v: v.at) if self.validations else None

    def latest(self, by: str) -> Validation | None:
        """The newest validation by one judge (PIPELINE_EVALUATION or PROMOTION_GATE)."""
        mine = [v for v in self.validations if v.by == by]
        return max(mine, key=lambda v: v.at) if mine else None

    def next_review(self, review_days: int) -> datetime | None:
        """When the version must be validated again: the last validation + `review_days` (None before any)."""
        last = self.last_validation
        return None if last is None else _parse(last.at) + timedelta(days=review_days)

    # -- JSON -------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["limitations"] = list(self.limitations)
        doc["validations"] = [asdict(v) for v in self.validations]
        doc["external_evaluations"] = [asdict(e) for e in self.external_evaluations]
        return doc

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> ModelCard:
        return cls(
            model_name=str(doc["model_name"]),
            version=int(doc["version"]),
            kind=str(doc.get("kind", "")),
            intended_use=str(doc.get("intended_use", "")),
            owner=str(doc.get("owner", "")),
            training_data=dict(doc.get("training_data") or {}),
            features=dict(doc.get("features") or {}),
            limitations=tuple(str(x) for x in doc.get("limitations") or ()),
            registered_by=doc.get("registered_by"),
            registered_at=doc.get("registered_at"),
            approver=doc.get("approver"),
            approved_at=doc.get("approved_at"),
            validations=tuple(Validation.from_dict(v) for v in doc.get("validations") or ()),
            external_evaluations=tuple(
                ExternalEvaluation.from_dict(e) for e in doc.get("external_evaluations") or ()
            ),
            retired_by=doc.get("retired_by"),
            retired_at=doc.get("retired_at"),
            retirement_reason=doc.get("retirement_reason"),
            schema=int(doc.get("schema", SCHEMA)),
        )


def revision_key() -> str:
    """A new, never reused name for a card revision, sorting in time order: `<us since epoch>-<random>`."""
    moment = datetime.now(UTC)
    micros = int(moment.timestamp()) * 1_000_000 + moment.microsecond
    return f"{micros:017d}-{uuid.uuid4().hex[:12]}"


def now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _parse(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def record_validation(card: ModelCard, validation: Validation) -> ModelCard:
    """The card with one more piece of validation evidence."""
    return replace(card, validations=(*card.validations, validation))


def record_approval(card: ModelCard, approver: str, at: datetime | None = None) -> ModelCard:
    """The card with its named approver. Separation of duties: the registrant may not approve (CardError)."""
    if not approver or not approver.strip():
        raise CardError("an approval needs a named approver")
    if card.registered_by and approver == card.registered_by:
        raise CardError("the identity that registered a version may not approve it")
    moment = (at or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="seconds")
    return replace(card, approver=approver, approved_at=moment)


def record_external_evaluation(card: ModelCard, evaluation: ExternalEvaluation) -> ModelCard:
    """The card with one more labelled external evaluation (kept newest first)."""
    ordered = sorted((evaluation, *card.external_evaluations), key=lambda e: e.at, reverse=True)
    return replace(card, external_evaluations=tuple(ordered))


def record_retirement(card: ModelCard, by: str, reason: str, at: datetime | None = None) -> ModelCard:
    """The card of a retired version: who retired it, when and why (the registry checked the rest)."""
    moment = (at or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="seconds")
    return replace(card, retired_by=by, retired_at=moment, retirement_reason=reason)


# -- Markdown ---------------------------------------------------------------------------------------------


def render_markdown(card: ModelCard) -> str:
    """The card as Markdown (what `cdp models card` prints and the registry keeps beside the JSON)."""
    data, feats = card.training_data, card.features
    lines = [
        f"# Model card: {card.model_name} v{card.version}",
        "",
        f"- kind: {card.kind}",
        f"- owner: {card.owner or 'not set'}",
        f"- registered by: {card.registered_by or 'unknown'} at {card.registered_at or 'unknown'}",
        f"- approver: {card.approver or 'not approved yet'}"
        + (f" at {card.approved_at}" if card.approved_at else ""),
        *(
            [f"- RETIRED by {card.retired_by} at {card.retired_at}: {card.retirement_reason or ''}"]
            if card.retired_at
            else []
        ),
        "",
        "## Intended use",
        card.intended_use or "not stated",
        "",
        "## Training data",
        str(data.get("statement") or "not stated"),
    ]
    for key in ("origin", "data_snapshot_hash", "pipeline_run_id", "code_version"):
        if data.get(key):
            lines.append(f"- {key.replace('_', ' ')}: {data[key]}")
    lines += ["", "## Features", str(feats.get("statement") or "")]
    if feats.get("view"):
        lines.append(f"- feature view: {feats['view']}")
    inputs = list(feats.get("inputs") or [])
    lines.append(f"- inputs ({len(inputs)}): {', '.join(inputs) if inputs else 'not recorded'}")
    if feats.get("protected_excluded"):
        lines.append(f"- protected attributes, never inputs: {', '.join(feats['protected_excluded'])}")
    if feats.get("sensitive_inputs"):
        lines.append(
            f"- inputs that are not protected but may proxy one: {', '.join(feats['sensitive_inputs'])}"
        )
    lines += ["", "## Validation evidence"]
    if not card.validations:
        lines.append("No validation recorded yet.")
    for v in sorted(card.validations, key=lambda v: v.at):
        lines += ["", f"### {v.by}, {v.at}: {v.outcome}", f"On: {v.data}"]
        lines += _figures("Metrics", v.metrics)
        lines += _figures("Metrics on a labelled external evaluation", v.external)
        lines += _figures("Calibration", v.calibration)
        lines += _fairness(v.fairness)
    lines += ["", "## Labelled external evaluations"]
    if not card.external_evaluations:
        lines.append("None recorded (`cdp evaluate --model MODEL --version N --record LABELLED_DATA`).")
    for e in card.external_evaluations:
        lines += _external(e, card.registered_by)
    lines += ["", "## Limitations", *[f"- {x}" for x in card.limitations or ("none stated",)], ""]
    return "\n".join(lines)


def _external(e: ExternalEvaluation, registrant: str | None) -> list[str]:
    """One external evaluation: who, on what data, the figures with their bootstrap intervals."""
    who = "the registrant itself" if registrant and e.by == registrant else "independent of the registrant"
    d = e.data
    span = f", {d['first_ts']} to {d['last_ts']}" if d.get("first_ts") and d.get("last_ts") else ""
    level = e.bootstrap.get("level")
    unit = e.bootstrap.get("unit", "row")
    rounds = e.bootstrap.get("rounds", "?")
    head = f"{level:.0%} bootstrap interval" if isinstance(level, int | float) and level else ""
    out = [
        "",
        f"### {e.at}, by {e.by} ({e.role}; {who})",
        f"On: {d.get('source') or 'unnamed data'}, {e.rows:,} labelled rows, {e.frauds:,} frauds{span}",
        f"- data fingerprint: sha256 {d.get('sha256', 'n/a')} (of the {d.get('hashed', 'data')})",
        f"- threshold {_figure(e.threshold)}, alert budget {_figure(e.alert_budget * 100)}% of rows",
        "",
        f"| figure | value | {head or 'interval'} |",
        "|---|---|---|",
    ]
    for name, value in e.metrics.items():
        bounds = e.intervals.get(name)
        shown = f"{_figure(bounds[0])}-{_figure(bounds[1])}" if bounds else ""
        out.append(f"| {name} | {_figure(value)} | {shown} |")
    if head:
        out += ["", f"(intervals: {rounds} resamples of whole {unit}s)"]
    return out


def _figure(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "n/a" if value is None else str(value)


def _figures(title: str, values: Mapping[str, object]) -> list[str]:
    if not values:
        return []
    rows = [f"| {name} | {_figure(value)} |" for name, value in sorted(values.items())]
    return ["", f"{title}:", "", "| figure | value |", "|---|---|", *rows]


def _fairness(fairness: Mapping[str, Any]) -> list[str]:
    """Per measure: the verdict, then each attribute's groups (rate, ratio to overall and its interval)."""
    if not fairness:
        return []
    out = ["", "Fairness (ratio of each group's figure to the overall one):"]
    for measure, result in sorted(fairness.items()):
        if not isinstance(result, Mapping):
            continue
        verdict = result.get("verdict", "")
        out += ["", f"- {measure}: {verdict}"]
        if result.get("note"):
            out.append(f"  ({result['note']})")
        groups = result.get("groups") or {}
        if groups:
            out += ["", "| attribute | group | customers | rows | value | ratio | interval | judged |"]
            out.append("|---" * 8 + "|")
        for attribute, members in sorted(groups.items()):
            for group, g in sorted(members.items()):
                interval = g.get("interval")
                shown = "n/a" if not interval else f"{_figure(interval[0])}-{_figure(interval[1])}"
                out.append(
                    f"| {attribute} | {group} | {g.get('customers', 'n/a')} | {g.get('rows', 'n/a')} | "
                    f"{_figure(g.get('value'))} | "
                    f"{_figure(g.get('ratio'))} | {shown} | {g.get('status', '')} |"
                )
    return out
