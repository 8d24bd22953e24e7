"""The smoke run's registry steps through the functions behind `cdp models list|approve` and `cdp promote`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cdp.registry.commands import approve_model, list_models
from cdp.registry.port import APPROVED, PENDING


def aws_backends(settings: Any) -> Any:
    """`Backends` in AWS mode over `settings` (whatever `CDP_BACKEND` says)."""
    from cdp.backends import Backends

    return Backends(settings.model_copy(update={"backend": "aws"}))


def list_versions(backends: Any, model_name: str, report: Callable[[str], None]) -> list[Any]:
    """`cdp models list MODEL`, reported one line per version."""
    versions = list_models(backends.model_registry, model_name)
    for v in versions:
        report(f"  {v.model_name} v{v.version} {v.status}{' (champion)' if v.is_champion else ''}")
    return versions


def promote_newest(
    backends: Any, model_name: str, actor: str, run_id: str, report: Callable[[str], None]
) -> int:
    """`cdp promote MODEL`; when the gate cannot decide (a smoke slice has no labelled holdout) the newest
    pending version is approved by hand, as `cdp models approve` does. Returns the champion version."""
    from monitoring.promotion.promote import newest_pending, promote

    decision = promote(backends, model_name)
    report(f"  promotion gate: {decision.outcome} ({'; '.join(decision.reasons)[:200]})")
    registry = backends.model_registry
    if decision.outcome != "approved":
        candidate = newest_pending(list_models(registry, model_name))
        if candidate is None or candidate.status != PENDING:
            raise LookupError(f"{model_name} has no PendingManualApproval version to approve")
        approved = approve_model(
            registry, model_name, candidate.version, actor, f"AWS smoke run {run_id}: end-to-end check"
        )
        report(f"  approved {model_name} v{approved.version} by hand")
    champion = registry.champion(model_name)
    if champion is None or champion.status != APPROVED:
        raise LookupError(f"{model_name} has no approved champion after the decision")
    return int(champion.version)
