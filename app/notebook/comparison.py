"""`Platform.compare`: a candidate against the champion with the promotion gate's own holdout, metrics
and gates (`monitoring.promotion.gates`), read through the analyst surface. Nothing is decided or changed:
the gate service decides (`cdp promote`); this shows what it would measure.

A candidate is a registered version or a notebook `TrainingRun` not registered yet (described as the
registry would describe it: its data snapshot hash ties it to its training window, as for a version).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from app.notebook.experiments import TrainingRun
from cdp.registry.port import PENDING, Lineage, ModelVersion
from inference.loaded import LoadedModel
from monitoring.promotion import scoring
from monitoring.promotion.decision import GateResult
from monitoring.promotion.gates import EVALUATORS, Contenders
from monitoring.promotion.policy import PromotionPolicy

UNREGISTERED = 0  # the version number an unregistered notebook run is shown with


@dataclass(frozen=True)
class Comparison:
    """Candidate and champion measured on the same holdout; the gates the candidate would meet."""

    model: str
    candidate: str
    champion: str | None
    metrics: pd.DataFrame  # one row per metric: candidate, champion
    gates: dict[str, GateResult] = field(default_factory=dict)
    holdout: dict[str, Any] = field(default_factory=dict)
    primary: str | None = None
    no_decision: str | None = None  # why the gate could not judge (e.g. too few labelled holdout rows)

    @property
    def passes(self) -> bool:
        """True when the gate could judge and every gate measured here holds (the gate service also checks
        serving latency and the artifacts' PII scan)."""
        return self.no_decision is None and all(g.passed for g in self.gates.values())

    def gates_table(self) -> pd.DataFrame:
        return pd.DataFrame(
            [{"gate": name, **gate.to_dict()} for name, gate in self.gates.items()],
            columns=["gate", "passed", "value", "limit", "comparison"],
        )


def run_as_version(run: TrainingRun) -> tuple[ModelVersion, LoadedModel]:
    """A notebook run as the registry would describe it (pending, unregistered) and as serving loads it."""
    lineage = Lineage(run.data_snapshot_hash, run.features, "notebook", f"mlflow:{run.run_id}")
    version = ModelVersion(
        model_name=run.registered_name, version=UNREGISTERED, status=PENDING, is_champion=False,
        metrics=run.metrics, params=run.params, lineage=lineage, artifacts_uri=run.model_dir.as_uri(),
        created_at=datetime.now(UTC),
    )  # fmt: skip
    return version, run.load()


def compare(
    backends: Any,
    candidate: tuple[ModelVersion, LoadedModel],
    champion: ModelVersion | None,
    policy: PromotionPolicy | None = None,
) -> Comparison:
    """Measure `candidate` and `champion` as the promotion gate does. `backends` is the caller's
    `AnalystBackends`, so the holdout is read through the analyst surface."""
    policy = policy or PromotionPolicy.from_settings(backends.settings)
    version, loaded = candidate
    champion_model = scoring.load(backends, champion) if champion is not None else None
    who = Contenders(version, loaded, champion, champion_model)
    evaluation = EVALUATORS[loaded.kind](backends, who, policy)
    rows = [
        {"metric": name, "candidate": values.get("candidate"), "champion": values.get("champion")}
        for name, values in evaluation.metrics.items()
    ]
    name = (
        f"v{version.version}" if version.version != UNREGISTERED else f"run {version.lineage.pipeline_run_id}"
    )
    return Comparison(
        model=version.model_name,
        candidate=name,
        champion=f"v{champion.version}" if champion is not None else None,
        metrics=pd.DataFrame(rows, columns=["metric", "candidate", "champion"]),
        gates=dict(evaluation.gates),
        holdout=dict(evaluation.description),
        primary=evaluation.primary,
        no_decision=evaluation.no_decision,
    )
