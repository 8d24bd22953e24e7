"""Per-model evaluation on the holdout: metrics of candidate and champion, and the gates they give.

Each evaluator returns an `Evaluation`: the metrics (candidate and champion on the same rows), the
model-specific gates (the margin over the champion on the primary metric, floors, calibration), the
fairness gates beside them (`monitoring.promotion.fairness`: rates or errors by gender and age band, no
protected attribute among the inputs) with the figures for the model card, and, when the data cannot
support a decision, the reason (`no_decision`) instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cdp.backends import Backends
from cdp.registry.port import ModelVersion
from inference.loaded import LoadedModel
from monitoring.promotion import fairness as fair
from monitoring.promotion import scoring
from monitoring.promotion.decision import GateResult
from monitoring.promotion.groups import customer_groups
from monitoring.promotion.holdout import Holdout, clv_holdout, fraud_holdout, segmentation_holdout
from monitoring.promotion.policy import PromotionPolicy
from monitoring.promotion.windows import training_set_manifests, training_window


@dataclass
class Evaluation:
    holdout: Holdout | None = None
    metrics: dict[str, dict[str, float | None]] = field(default_factory=dict)
    gates: dict[str, GateResult] = field(default_factory=dict)
    description: dict[str, Any] = field(default_factory=dict)
    no_decision: str | None = None
    primary: str | None = None  # the metric the candidate must beat the champion on
    fairness: dict[str, Any] = field(default_factory=dict)  # the candidate's figures by group (model card)


def at_least(value: float | None, limit: float) -> GateResult:
    return GateResult(value is not None and value >= limit, value, limit, ">=")


def at_most(value: float | None, limit: float) -> GateResult:
    return GateResult(value is not None and value <= limit, value, limit, "<=")


@dataclass(frozen=True)
class Contenders:
    """The candidate and (maybe) the champion, each as registered and as loaded for serving."""

    candidate: ModelVersion
    candidate_model: LoadedModel
    champion: ModelVersion | None = None
    champion_model: LoadedModel | None = None


def _metric_table(candidate: dict[str, float], champion: dict[str, float] | None) -> dict[str, dict]:
    return {
        k: {"candidate": v, "champion": None if champion is None else champion.get(k)}
        for k, v in candidate.items()
    }


def _calibration_limit(limit: float, champion: dict[str, float] | None, metric: str) -> float:
    """The policy's calibration limit, or the champion's own figure on the same rows when that is worse:
    a change of regime (a new fraud pattern, a new fraud rate) de-calibrates every model trained before
    it, and the candidate must not be worse calibrated than the model serving now."""
    if champion is None or champion.get(metric) is None:
        return limit
    return max(limit, float(champion[metric]))


NO_GROUPS = (
    "fairness by gender and age band cannot be measured: the holdout rows have no customer groups "
    "(no customers table in the lake, or no user_token column)"
)


def fairness_gates(
    backends: Backends,
    who: Contenders,
    frame: Any,
    years: Any,
    measure: Callable[[Any], dict[str, dict[str, Any]]],
    policy: PromotionPolicy,
) -> tuple[dict[str, GateResult], dict[str, Any]] | None:
    """The fairness gates and figures of the candidate (None when the rows cannot be grouped)."""
    if "user_token" not in getattr(frame, "columns", ()):
        return None
    groups = customer_groups(backends, frame["user_token"], years)
    if groups is None:
        return None
    limits = policy.fairness
    results = measure(groups)
    gates = {
        f"fairness_{name}": fair.gate_of(result, limits)
        for name, result in results.items()
        if name != "segment_composition" or limits.gate_segments
    }
    inputs = who.candidate.lineage.features or who.candidate_model.features
    gates["no_protected_inputs"], found = fair.protected_inputs_gate(tuple(inputs))
    results["protected_inputs"] = {"verdict": f"found: {', '.join(found)}" if found else "none", "groups": {}}
    return gates, results


def evaluate_fraud(backends: Backends, who: Contenders, policy: PromotionPolicy) -> Evaluation:
    """PR-AUC (primary), recall at the alert budget, Brier score and ECE on the newest unseen labelled
    rows."""
    manifests = training_set_manifests(backends)
    versions = [who.candidate] + ([who.champion] if who.champion is not None else [])
    windows = {v.version: training_window(v, manifests) for v in versions}
    unknown = [f"v{n}" for n, w in windows.items() if w is None]
    if unknown:
        return Evaluation(
            no_decision=f"no training-set manifest ties {', '.join(unknown)} to a training window, "
            "so no holdout unseen by it can be chosen"
        )
    after = max(w.last_event for w in windows.values() if w is not None)
    holdout = fraud_holdout(backends, after, policy.max_holdout_rows)
    description = {
        **holdout.description,
        "rows": holdout.rows,
        "positives": holdout.positives,
        "training_windows": {f"v{n}": w.last_event.isoformat() for n, w in windows.items() if w is not None},
    }
    if holdout.rows < policy.min_holdout_rows or (holdout.positives or 0) < policy.min_holdout_positives:
        return Evaluation(
            holdout,
            description=description,
            no_decision=f"holdout too small: {holdout.rows} labelled rows with {holdout.positives or 0} "
            f"frauds "
            f"after {after:%Y-%m-%d %H:%M} (needs {policy.min_holdout_rows} rows and "
            f"{policy.min_holdout_positives} frauds)",
        )
    labels = holdout.labels.to_numpy(np.float64)
    scores = scoring.fraud_probabilities(who.candidate_model, holdout.frame)
    candidate = scoring.fraud_metrics(labels, scores, policy.alert_budget)
    years = holdout.frame["ts"].dt.year.to_numpy() if "ts" in holdout.frame.columns else 0
    people = holdout.frame["user_token"].to_numpy() if "user_token" in holdout.frame.columns else None
    budget = policy.alert_budget
    fairness = fairness_gates(
        backends, who, holdout.frame, years,
        lambda groups: fair.fraud_fairness(labels, scores, groups, people, budget, policy.fairness),
        policy,
    )  # fmt: skip
    if fairness is None:
        return Evaluation(holdout, description=description, no_decision=NO_GROUPS)
    champion = None
    if who.champion_model is not None:
        champion = scoring.fraud_metrics(
            labels, scoring.fraud_probabilities(who.champion_model, holdout.frame), policy.alert_budget
        )
    gates = {}
    if champion is not None:
        gates["beats_champion_pr_auc"] = at_least(
            candidate["pr_auc"], champion["pr_auc"] + policy.fraud_pr_auc_margin
        )
    gates["min_pr_auc"] = at_least(candidate["pr_auc"], policy.min_fraud_pr_auc)
    gates["min_recall_at_budget"] = at_least(candidate["recall_at_budget"], policy.min_fraud_recall_at_budget)
    gates["max_brier"] = at_most(
        candidate["brier"], _calibration_limit(policy.max_fraud_brier, champion, "brier")
    )
    gates["max_ece"] = at_most(candidate["ece"], _calibration_limit(policy.max_fraud_ece, champion, "ece"))
    gates.update(fairness[0])
    return Evaluation(
        holdout,
        _metric_table(candidate, champion),
        gates,
        description,
        primary="pr_auc",
        fairness=fairness[1],
    )


def evaluate_clv(backends: Backends, who: Contenders, policy: PromotionPolicy) -> Evaluation:
    """MAE ratio to the last-12-months heuristic (primary), MAE and RMSE on the latest cut-off's customers."""
    holdout = clv_holdout(backends)
    description = {**holdout.description, "rows": holdout.rows}
    if holdout.labels is None or holdout.rows < policy.min_holdout_customers:
        return Evaluation(
            holdout,
            description=description,
            no_decision=f"CLV holdout too small or unlabelled: {holdout.rows} customers "
            f"(needs {policy.min_holdout_customers} with realised spend)",
        )
    if scoring.HEURISTIC not in holdout.frame.columns:
        return Evaluation(
            holdout, description=description, no_decision=f"the CLV holdout lacks {scoring.HEURISTIC}"
        )
    truth = holdout.labels.to_numpy(np.float64)
    heuristic = holdout.frame[scoring.HEURISTIC].to_numpy(np.float64)
    predicted = scoring.model_outputs(who.candidate_model, holdout.frame)
    candidate = scoring.clv_metrics(truth, predicted, heuristic)
    as_of = holdout.frame["as_of"] if "as_of" in holdout.frame.columns else None
    years = as_of.dt.year.to_numpy() if as_of is not None else backends.settings.clv_cutoff.year
    fairness = fairness_gates(
        backends, who, holdout.frame, years,
        lambda groups: fair.clv_fairness(truth, predicted, heuristic, groups, policy.fairness),
        policy,
    )  # fmt: skip
    if fairness is None:
        return Evaluation(holdout, description=description, no_decision=NO_GROUPS)
    champion = None
    if who.champion_model is not None:
        champion = scoring.clv_metrics(
            truth, scoring.model_outputs(who.champion_model, holdout.frame), heuristic
        )
    gates = {}
    if champion is not None:
        limit = champion["mae_ratio_to_heuristic"] * (1.0 - policy.clv_mae_ratio_margin)
        gates["beats_champion_mae_ratio"] = at_most(candidate["mae_ratio_to_heuristic"], limit)
    gates["max_mae_ratio_to_heuristic"] = at_most(
        candidate["mae_ratio_to_heuristic"], policy.max_clv_mae_ratio
    )
    gates.update(fairness[0])
    return Evaluation(
        holdout, _metric_table(candidate, champion), gates, description, primary="mae_ratio_to_heuristic",
        fairness=fairness[1],
    )  # fmt: skip


def evaluate_segmentation(backends: Backends, who: Contenders, policy: PromotionPolicy) -> Evaluation:
    """Silhouette (primary; both assignments measured in the candidate's standardised space, so the figures
    compare) and stability: the adjusted Rand index of candidate vs champion assignments."""
    holdout = segmentation_holdout(backends)
    description = {**holdout.description, "rows": holdout.rows}
    if holdout.rows < policy.min_holdout_customers:
        return Evaluation(
            holdout,
            description=description,
            no_decision=f"segmentation holdout too small: {holdout.rows} customers "
            f"(needs {policy.min_holdout_customers})",
        )
    frame = holdout.frame
    space = who.candidate_model.model.standardised(frame)
    mine = scoring.model_outputs(who.candidate_model, frame)
    candidate = {"silhouette": scoring.silhouette(space, mine)}
    fairness = fairness_gates(
        backends, who, frame, backends.settings.clv_cutoff.year,
        lambda groups: fair.segment_fairness(mine.astype(int), groups, policy.fairness, _segment_name),
        policy,
    )  # fmt: skip
    if fairness is None:
        return Evaluation(holdout, description=description, no_decision=NO_GROUPS)
    champion = None
    gates = {}
    if who.champion_model is not None:
        theirs = scoring.model_outputs(who.champion_model, frame)
        champion = {"silhouette": scoring.silhouette(space, theirs)}
        candidate["stability_ari"] = scoring.stability(mine, theirs)
        gates["beats_champion_silhouette"] = at_least(
            candidate["silhouette"], champion["silhouette"] + policy.segmentation_silhouette_margin
        )
        gates["min_stability_ari"] = at_least(candidate["stability_ari"], policy.min_segmentation_stability)
    gates["min_silhouette"] = at_least(candidate["silhouette"], policy.min_segmentation_silhouette)
    gates.update(fairness[0])
    return Evaluation(
        holdout, _metric_table(candidate, champion), gates, description, primary="silhouette",
        fairness=fairness[1],
    )  # fmt: skip


def _segment_name(segment: int) -> str:
    return f"segment {segment}"


EVALUATORS = {
    "classification": evaluate_fraud,
    "regression": evaluate_clv,
    "segmentation": evaluate_segmentation,
}
