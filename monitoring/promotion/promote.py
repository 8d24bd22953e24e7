"""`promote(backends, model_name)`: judge the pending candidate against the champion; the one that passes
becomes the challenger, the one that fails is rejected.

Outcomes:
- `challenger`: every gate passed (with a champion, the candidate beat it by the policy margin on the
  primary metric on the same holdout). `registry.set_challenger` gives it the challenger alias and its
  `challenger` evidence records when, by whom and on which figures: the stream scores it in shadow, and
  the switch is decided later by the shadow comparison and the approval policy
  (`monitoring.promotion.switch`). Its status stays PendingManualApproval until then.
- `rejected`: at least one gate failed. `registry.reject` marks it Rejected with the failed gates' figures;
  the champion is untouched (a pending candidate is never the champion).
- `no-decision`: the data cannot support a judgement (no labelled rows unseen by both models, too few of
  them, no training window known, no pending candidate). Nothing changes: the candidate stays
  PendingManualApproval and the gate can run again when labels arrive.
The judgement (holdout, metrics, calibration, fairness by group) is added to the candidate's model card
before the registry records the decision (`card_evidence`); the approver is named there when the
challenger is switched in (`monitoring.promotion.switch`).
The registry decisions are audited by the registry (actor = `actor`, in `role`: the gate's service
identity, which is not the pipeline's that registered the candidate). `dry_run` computes the decision and
changes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime

from cdp.backends import Backends
from cdp.registry.audit import MAX_REASON_LENGTH
from cdp.registry.evidence import CHALLENGER_KIND
from cdp.registry.port import PENDING, RETIRED, ModelVersion
from monitoring.promotion import scoring
from monitoring.promotion.artifacts import artifact_findings
from monitoring.promotion.card_evidence import record_judgement
from monitoring.promotion.decision import CHALLENGER, NO_DECISION, REJECTED, GateResult, PromotionDecision
from monitoring.promotion.gates import EVALUATORS, Contenders, Evaluation, at_most
from monitoring.promotion.latency import p99_latency_ms
from monitoring.promotion.policy import PromotionPolicy

LATENCY_GATE = "max_latency_p99_ms"
PII_GATE = "pii_scan"


def newest_pending(versions: list[ModelVersion]) -> ModelVersion | None:
    pending = [v for v in versions if v.status == PENDING]
    return max(pending, key=lambda v: v.version) if pending else None


def promote(
    backends: Backends,
    model_name: str,
    *,
    candidate_version: int | None = None,
    policy: PromotionPolicy | None = None,
    actor: str = "promotion-gate",
    role: str = "model-approver",
    dry_run: bool = False,
) -> PromotionDecision:
    """Decide on `candidate_version` (default: the newest PendingManualApproval version) of `model_name`."""
    policy = policy or PromotionPolicy.from_settings(backends.settings)
    registry = backends.model_registry
    champion = registry.champion(model_name)
    champion_number = champion.version if champion else None
    if candidate_version is None:
        candidate = newest_pending(registry.list(model_name))
        if candidate is None:
            return _undecided(
                model_name, None, champion_number, "no version is PendingManualApproval", dry_run
            )
    else:
        candidate = registry.get(model_name, candidate_version)
        if candidate.status == RETIRED:
            reason = f"v{candidate.version} is retired: a retired version is never promoted again"
            return _undecided(model_name, candidate.version, champion_number, reason, dry_run)
        if candidate.status != PENDING:
            reason = f"v{candidate.version} is {candidate.status}, not PendingManualApproval"
            return _undecided(model_name, candidate.version, champion_number, reason, dry_run)

    candidate_model = scoring.load(backends, candidate)
    champion_model = scoring.load(backends, champion) if champion is not None else None
    who = Contenders(candidate, candidate_model, champion, champion_model)
    evaluation = EVALUATORS[candidate_model.kind](backends, who, policy)
    if evaluation.no_decision is not None:
        return _undecided(
            model_name, candidate.version, champion_number, evaluation.no_decision, dry_run, evaluation
        )

    gates = dict(evaluation.gates)
    p99 = p99_latency_ms(candidate_model, evaluation.holdout.frame, policy.latency_rows)
    gates[LATENCY_GATE] = at_most(p99, policy.max_latency_p99_ms)
    findings = artifact_findings(candidate, backends.object_store)
    gates[PII_GATE] = GateResult(not findings, float(len(findings)), 0.0, "<=")

    failed = [name for name, gate in gates.items() if not gate.passed]
    shown = failed or list(gates)  # a rejection lists the failed gates, an approval every gate
    reasons = [_gate_line(name, gate) for name, gate in gates.items() if name in shown]
    reasons += [f"{PII_GATE}: {f.kind} in {f.path} ({f.where})" for f in findings[:5]]
    headline = _primary_line(evaluation)
    if headline:
        reasons.insert(0, headline)
    if champion is None:
        reasons.insert(0, "no champion yet: the gates alone decide")
    outcome = REJECTED if failed else CHALLENGER
    verdict = "rejected by" if failed else "passed"
    summary = f"{verdict} the promotion gate on {evaluation.holdout.rows} holdout rows: " + "; ".join(reasons)
    if not dry_run:
        record_judgement(backends, candidate, candidate_model.kind, outcome, evaluation)
        if failed:
            registry.reject(model_name, candidate.version, actor, _fit(summary), role=role)
        else:
            registry.set_challenger(model_name, candidate.version, actor, _fit(summary), role=role)
            registry.record_evidence(
                model_name,
                candidate.version,
                CHALLENGER_KIND,
                {
                    "at": datetime.now(UTC).isoformat(timespec="seconds"),
                    "by": actor,
                    "champion_version": champion_number,
                    "gate": _fit(summary),
                },
            )
    return PromotionDecision(
        model_name=model_name,
        candidate_version=candidate.version,
        champion_version=champion_number,
        outcome=outcome,
        reasons=reasons,
        metrics=evaluation.metrics,
        gates=gates,
        holdout=evaluation.description,
        dry_run=dry_run,
    )


def _primary_line(evaluation: Evaluation) -> str | None:
    values = evaluation.metrics.get(evaluation.primary or "")
    if not values:
        return None
    champion = values.get("champion")
    against = "no champion" if champion is None else f"champion {champion:.4g}"
    return f"{evaluation.primary}: candidate {values['candidate']:.4g}, {against}"


def _gate_line(name: str, gate: GateResult) -> str:
    value = "n/a" if gate.value is None else f"{gate.value:.4g}"
    verdict = "passed" if gate.passed else "failed"
    return f"{name} {verdict}: {value} (required {gate.comparison} {gate.limit:.4g})"


def _fit(reason: str) -> str:
    """The registry keeps at most MAX_REASON_LENGTH characters of a reason."""
    return reason if len(reason) <= MAX_REASON_LENGTH else reason[: MAX_REASON_LENGTH - 3] + "..."


def _undecided(
    model_name: str,
    candidate: int | None,
    champion: int | None,
    reason: str,
    dry_run: bool,
    evaluation: Evaluation | None = None,
) -> PromotionDecision:
    return PromotionDecision(
        model_name=model_name,
        candidate_version=candidate,
        champion_version=champion,
        outcome=NO_DECISION,
        reasons=[reason],
        metrics=evaluation.metrics if evaluation else {},
        gates=evaluation.gates if evaluation else {},
        holdout=evaluation.description if evaluation else {},
        dry_run=dry_run,
    )
