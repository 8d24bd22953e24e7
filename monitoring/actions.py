"""The local event bus's target actions, and the timeline they write for the demo.

- `start-pipeline`: runs the model's pipeline with the local executor, then puts SageMaker's "Model
  Package State Change" event (PendingManualApproval) for the version it registered, so the promotion
  rule fires as it would in AWS;
- `promote-model`: runs the promotion gate on that version; a version that passes becomes the challenger
  (scored in shadow by the stream), one that fails is rejected: the gate never switches serving itself;
- `deploy-champion`: serving reloads the champion by itself (it polls the registry), so deploying means
  recording which version is now champion, in the timeline and the audit log.
`switch_challengers` (run by the monitor run, and by `cdp models shadow --decide`) judges each challenger
on its shadow events; when the approval policy switches one by itself it puts the Approved event, so the
deploy rule fires as it does for a person's approval in AWS.
Each action runs as a platform service identity, as each AWS target runs as its own IAM role: the pipeline
as `ml-pipeline` (recorded as the registrant of the versions it registers), the promotion gate and the
deployment as `promotion-gate` (role `model-approver`), so the gate never approves its own registration.
In AWS the same rules point at a SageMaker pipeline and CodeBuild projects (see `monitoring.rules`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from cdp.events.port import Event, EventBus
from monitoring.rules import DEPLOY_CHAMPION, MODEL_PACKAGE_STATE_CHANGE, PROMOTE_MODEL, START_PIPELINE

if TYPE_CHECKING:
    from cdp.backends import Backends
    from cdp.events.local import TargetAction

PENDING = "PendingManualApproval"
APPROVED = "Approved"
# (pipeline, backends, registered_by=identity) -> (run record, run folder)
PipelineRunner = Callable[..., tuple[Any, Any]]


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime  # wall time (UTC)
    what: str

    def to_dict(self) -> dict[str, str]:
        return {"at": self.at.isoformat(timespec="milliseconds"), "what": self.what}


class Timeline:
    """What happened during a monitor run, in order (thread-safe)."""

    def __init__(self) -> None:
        self._entries: list[TimelineEntry] = []
        self._lock = threading.Lock()

    def add(self, what: str) -> TimelineEntry:
        entry = TimelineEntry(datetime.now(UTC), what)
        with self._lock:
            self._entries.append(entry)
        return entry

    @property
    def entries(self) -> list[TimelineEntry]:
        with self._lock:
            return list(self._entries)


class PipelineRunFailedError(RuntimeError):
    """The pipeline run did not succeed (names the execution, never data)."""


def model_package_arn(model_name: str, version: int, region: str, account: str = "000000000000") -> str:
    return f"arn:aws:sagemaker:{region}:{account}:model-package/{model_name}/{version}"


def model_package_event(
    model_name: str, version: int, status: str, *, region: str = "local", account: str = "000000000000"
) -> Event:
    """SageMaker's "Model Package State Change" event for one version, in the shape SageMaker sends."""
    arn = model_package_arn(model_name, version, region, account)
    now = datetime.now(UTC)
    return Event(
        source="aws.sagemaker",
        detail_type=MODEL_PACKAGE_STATE_CHANGE,
        detail={
            "ModelPackageGroupName": model_name,
            "ModelPackageVersion": int(version),
            "ModelPackageArn": arn,
            "ModelPackageName": f"{model_name}/{version}",
            "ModelApprovalStatus": status,
            "ModelPackageStatus": "Completed",
            "CreationTime": int(now.timestamp() * 1000),
        },
        time=now,
        resources=(arn,),
    )


def _registered(record: Any) -> dict[str, Any]:
    for step in record.steps:
        if step.type == "RegisterModel" and step.status == "Succeeded":
            return dict(step.properties)
    raise PipelineRunFailedError(f"execution {record.execution_id} registered no model version")


def service_caller(backends: Backends, service: str, action: str) -> Any:
    """The `Caller` a platform service acts as for `action` (authenticated, authorized, refusals audited)."""
    from cdp.security.identity.authorize import authorize

    return authorize(backends.identity, backends.audit, action, backends.identity.service(service))


def retrain_on_fresh_features(
    pipeline: str, backends: Backends, registered_by: str | None = None
) -> tuple[Any, Any]:
    """Refresh the feature tables and training sets from the lake (which now holds the streamed events),
    then run the pipeline: a retraining must see the data that drifted. The fraud features table is
    refreshed, not rebuilt: only the months the stream landed in (and those after) are recomputed, equal
    to a full rebuild (`features.materialize`). In AWS the same refresh is the scheduled feature build the
    pipeline's query reads."""
    from features.commands import build
    from pipelines.run import run_local_pipeline

    build(backends.settings, full=False)
    return run_local_pipeline(pipeline, backends, registered_by=registered_by)


def start_pipeline_action(
    backends: Backends, bus: EventBus, timeline: Timeline, run_pipeline: PipelineRunner | None = None
) -> TargetAction:
    """`start-pipeline`: run the pipeline named in the target's parameters, announce the new version."""

    def start_pipeline(parameters: Mapping[str, Any], envelope: Mapping[str, Any]) -> None:
        from cdp.security.identity.port import ML_PIPELINE_SERVICE

        pipeline = str(parameters["pipeline"])
        reason = parameters.get("reason", envelope.get("detail-type", "event"))
        caller = service_caller(backends, ML_PIPELINE_SERVICE, "model-register")
        timeline.add(f"start-pipeline: {pipeline} pipeline started as {caller.id} ({reason})")
        runner = run_pipeline or retrain_on_fresh_features
        record, _ = runner(pipeline, backends, registered_by=caller.id)
        if record.status != "Succeeded":
            timeline.add(f"start-pipeline: {pipeline} execution {record.execution_id} {record.status}")
            raise PipelineRunFailedError(f"{pipeline} execution {record.execution_id} ended {record.status}")
        registered = _registered(record)
        group, version = registered["ModelPackageGroupName"], int(registered["ModelPackageVersion"])
        timeline.add(
            f"start-pipeline: {pipeline} execution {record.execution_id} registered {group} v{version}"
        )
        bus.put_events([model_package_event(group, version, PENDING, region=backends.settings.aws_region)])

    return start_pipeline


def promote_model_action(backends: Backends, bus: EventBus, timeline: Timeline) -> TargetAction:
    """`promote-model`: the promotion gate on the version of the event; Approved event if it passes."""

    def promote_model(parameters: Mapping[str, Any], envelope: Mapping[str, Any]) -> None:
        from cdp.security.identity.port import PROMOTION_GATE_SERVICE
        from monitoring.promotion import promote

        detail = envelope["detail"]
        model_name, version = str(detail["ModelPackageGroupName"]), int(detail["ModelPackageVersion"])
        caller = service_caller(backends, PROMOTION_GATE_SERVICE, "promote")
        decision = promote(backends, model_name, candidate_version=version, actor=caller.id, role=caller.role)
        reasons = "; ".join(str(r) for r in decision.reasons) or "no reason given"
        shown = "challenger, scored in shadow" if decision.passed else decision.outcome
        timeline.add(f"promote-model: {model_name} v{version} {shown} ({reasons})")

    return promote_model


def switch_challengers(
    backends: Backends, bus: EventBus, timeline: Timeline, models: Sequence[str], policy: Any = None
) -> list[Any]:
    """Judge each model's challenger on its shadow events (`monitoring.promotion.switch`) as the
    promotion-gate service; a switch by policy puts the Approved event. Returns the decisions."""
    from cdp.security.identity.port import PROMOTION_GATE_SERVICE
    from monitoring.promotion.switch import NO_CHALLENGER, SWITCHED, decide_switch

    decisions = []
    for model_name in models:
        if backends.model_registry.challenger_version(model_name) is None:
            continue
        caller = service_caller(backends, PROMOTION_GATE_SERVICE, "promote")
        decision = decide_switch(backends, model_name, actor=caller.id, role=caller.role, policy=policy)
        decisions.append(decision)
        if decision.outcome == NO_CHALLENGER:
            continue
        timeline.add(f"shadow comparison: {decision.line()}")
        if decision.outcome == SWITCHED:
            version = int(decision.challenger_version or 0)
            bus.put_events(
                [model_package_event(model_name, version, APPROVED, region=backends.settings.aws_region)]
            )
    return decisions


def deploy_champion_action(backends: Backends, timeline: Timeline) -> TargetAction:
    """`deploy-champion`: record the champion serving now takes (it reloads the registry by itself)."""

    def deploy_champion(parameters: Mapping[str, Any], envelope: Mapping[str, Any]) -> None:
        from cdp.security.identity.port import PROMOTION_GATE_SERVICE

        model_name = str(envelope["detail"]["ModelPackageGroupName"])
        caller = service_caller(backends, PROMOTION_GATE_SERVICE, "deploy-champion")
        champion = backends.model_registry.champion(model_name)
        if champion is None:
            timeline.add(f"deploy-champion: {model_name} has no champion, serving keeps what it has")
            return
        seconds = backends.settings.serve_reload_seconds
        timeline.add(
            f"deploy-champion: {model_name} champion is v{champion.version}; serving reloads it "
            f"within {seconds:g} s"
        )
        from cdp.registry.audit import NO_CUSTOMER

        backends.audit.append(
            actor=caller.id,
            role=caller.role,
            action="deploy-champion",
            customer_token=NO_CUSTOMER,
            fields=(),
            outcome="allowed",
            details={
                "model": model_name,
                "version": champion.version,
                "event_id": str(envelope.get("id", "")),
            },
        )

    return deploy_champion


def local_actions(
    backends: Backends, bus: EventBus, timeline: Timeline, run_pipeline: PipelineRunner | None = None
) -> dict[str, TargetAction]:
    """The three actions by their target action names."""
    return {
        START_PIPELINE: start_pipeline_action(backends, bus, timeline, run_pipeline),
        PROMOTE_MODEL: promote_model_action(backends, bus, timeline),
        DEPLOY_CHAMPION: deploy_champion_action(backends, timeline),
    }


def register_actions(
    bus: Any, backends: Backends, timeline: Timeline, run_pipeline: PipelineRunner | None = None
) -> list[str]:
    """Register the three actions on a local bus (`bus.register_action`); returns their names."""
    actions = local_actions(backends, bus, timeline, run_pipeline)
    for name, action in actions.items():
        bus.register_action(name, action)
    return list(actions)
