"""The model-registry port: versioned models with approval status, lineage and a `champion` alias.

Adapters: `MlflowModelRegistry` (local: MLflow with a SQLite backend and a local artifact folder) and
`SageMakerModelRegistry` (AWS: SageMaker model package groups, artifacts in S3).

Lifecycle of a version:
- `register` creates it as `PendingManualApproval` (or the status given), with its metrics, params,
  lineage, plots and model card. Versions of a model are numbered 1, 2, 3... in registration order.
- `approve` sets it `Approved` and moves the `champion` alias to it. The previous champion keeps its
  `Approved` status but is no longer the champion: "Approved" means "passed review", "champion" means
  "the one serving loads". Approving the champion again is allowed (it stays champion).
- `reject` sets it `Rejected`. Rejecting the current champion also removes the alias, so the model has
  no champion until another version is approved (nothing is silently promoted in its place).
- `save_card` keeps a new revision of the version's model card (JSON + Markdown, `cdp.registry.model_card`)
  and `load_card` reads the newest: written at registration, updated by each validation and approval.
- `retire` ends a version's life: status `Retired`, kept for the record, never approved, made challenger
  or rolled back to again (`RetiredVersionError`). Only a model-approver who did not register it may retire
  it (audited as `model-retire`), and never the current champion (`RetireRefusedError`: approve another
  version or roll back first). Retiring the challenger drops its alias.
- `rollback` approves the previous champion again (the one serving before the current one took over, or
  before the champion was rejected), through the same audited approval path.
- `set_challenger` gives a PendingManualApproval version that passed the promotion gate the `challenger`
  alias: the stream scores it in shadow beside the champion (recorded, never acted on) until a shadow
  comparison and the approval policy decide. Approving the challenger moves it to `champion` (the
  `challenger` alias is dropped); rejecting it drops the alias too. At most one challenger per model.
- `record_evidence` keeps a JSON document per kind (`challenger`, `shadow`, `approval`) with the version:
  who decided what, when, on which figures. The audit log holds the tamper-evident record of the same.
Every change of champion is also kept, append-only, as the model's champion history (`history`): who,
when, why, which version became or stopped being champion; `champion_at` answers "which version served
at time T". Every decision is written to the audit log, the tamper-evident record; the version itself
keeps the last decision's reason, the champion history who changed the champion. The registry keeps who
registered a version (`registered_by`): separation of duties refuses an approval (or a rollback) by that
same identity (audited).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

PENDING = "PendingManualApproval"
APPROVED = "Approved"
REJECTED = "Rejected"
RETIRED = "Retired"  # a registry status, not a registration one: set only by `retire`
APPROVAL_STATUSES = (PENDING, APPROVED, REJECTED)
ApprovalStatus = Literal["PendingManualApproval", "Approved", "Rejected"]
CHAMPION = "champion"
CHALLENGER = "challenger"

# SageMaker's model package group name rule, lower-cased so both adapters accept the same names.
_MODEL_NAME = re.compile(r"^[a-z0-9](-?[a-z0-9]){0,62}$")
_PLOT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class RegistryError(Exception):
    """Base class of the model-registry port's errors."""


class InvalidModelNameError(RegistryError, ValueError):
    """Model names are 1-63 lowercase letters or digits, single hyphens between them."""


class ModelVersionNotFoundError(RegistryError, LookupError):
    """No such model, version, or no champion to load."""


class InvalidRegistrationError(RegistryError, ValueError):
    """The registration request is malformed (bad status, metric, plot, or personal data in it)."""


class UnreadableVersionError(RegistryError):
    """A registered version whose description cannot be read (its metrics report is missing or malformed,
    its model location is absent). The message is one line naming the version (its ARN in SageMaker)."""


class RetiredVersionError(RegistryError):
    """The version is retired: it is never approved, made challenger or retired again."""


class RetireRefusedError(RegistryError):
    """The version may not be retired now (it is the champion)."""


def retired_refusal(model_name: str, version: int) -> RetiredVersionError:
    return RetiredVersionError(
        f"{model_name} v{int(version)} is retired: a retired version is never promoted, shadowed or approved"
    )


def champion_retire_refusal(model_name: str, version: int) -> RetireRefusedError:
    return RetireRefusedError(
        f"{model_name} v{int(version)} is the champion: approve another version or roll back before "
        "retiring it"
    )


class NoPreviousChampionError(RegistryError, LookupError):
    """A rollback found no earlier champion to go back to (or every earlier one has been rejected)."""


@dataclass(frozen=True)
class Lineage:
    """Where a model version came from: enough to rebuild it exactly."""

    data_snapshot_hash: str  # hash of the training data snapshot (manifest hash of the lake tables read)
    features: tuple[str, ...]  # the feature columns, in the order the model expects them
    code_version: str  # git commit (or package version) of the training code
    pipeline_run_id: str  # the pipeline execution that produced it

    def __post_init__(self) -> None:
        object.__setattr__(self, "features", tuple(self.features))

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "features": list(self.features)}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Lineage:
        return cls(
            data_snapshot_hash=str(doc["data_snapshot_hash"]),
            features=tuple(str(f) for f in doc["features"]),
            code_version=str(doc["code_version"]),
            pipeline_run_id=str(doc["pipeline_run_id"]),
        )


@dataclass(frozen=True)
class ModelVersion:
    """One registered version of a model, as the registry describes it."""

    model_name: str
    version: int
    status: str  # one of APPROVAL_STATUSES
    is_champion: bool
    metrics: Mapping[str, float]
    params: Mapping[str, str]  # values as strings (MLflow's and SageMaker's common denominator)
    lineage: Lineage
    artifacts_uri: str  # where the model files are (file:// or s3://)
    created_at: datetime
    plots: Mapping[str, str] = field(default_factory=dict)  # plot name -> URI of the image
    model_card_uri: str | None = None
    status_reason: str | None = None  # reason given with the last approve/reject
    registered_by: str | None = None  # the identity that registered it (it may not approve it)
    problem: str | None = None  # set (by `list` only) on a version whose description cannot be read
    is_challenger: bool = False  # scored in shadow beside the champion, awaiting the switch

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (for `cdp models show`)."""
        return {
            "model_name": self.model_name,
            "version": self.version,
            "status": self.status,
            "champion": self.is_champion,
            "metrics": dict(self.metrics),
            "params": dict(self.params),
            "lineage": self.lineage.to_dict(),
            "artifacts_uri": self.artifacts_uri,
            "created_at": self.created_at.isoformat(),
            "plots": dict(self.plots),
            "model_card_uri": self.model_card_uri,
            "status_reason": self.status_reason,
            "registered_by": self.registered_by,
            "challenger": self.is_challenger,
            **({"problem": self.problem} if self.problem else {}),
        }


ChampionChangeKind = Literal["became", "stopped"]


@dataclass(frozen=True)
class ChampionEvent:
    """One entry of a model's champion history: `version` became or stopped being the champion."""

    model_name: str
    version: int
    change: ChampionChangeKind
    at: datetime  # UTC
    actor: str  # who decided (the approver, the rejecter, the rollback's actor)
    action: str  # approve, reject or rollback
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "at": self.at.isoformat()}


@runtime_checkable
class ProbabilityModel(Protocol):
    """A loaded model that scores a feature frame."""

    features: tuple[str, ...]

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        """Probabilities (not labels): shape (n,) = P(positive) for a binary model, (n, k) for k classes."""
        ...


@runtime_checkable
class ModelRegistry(Protocol):
    """Register, review and load versioned models."""

    def register(
        self,
        model_name: str,
        artifacts_uri: str | Path,
        metrics: Mapping[str, float],
        params: Mapping[str, Any],
        lineage: Lineage,
        approval_status: ApprovalStatus = PENDING,
        plots: Mapping[str, str | Path] | None = None,
        model_card: str | None = None,
        registered_by: str | None = None,
    ) -> ModelVersion:
        """Register the model at `artifacts_uri`: a model folder or its `model.tar.gz`, local or `s3://`.

        A model folder holds an XGBoost booster as `model.ubj` or `model.json` (a classifier, or a
        regression with an optional `regression.json`), or a centroid model: `model.json` with
        `"kind": "centroid_model"` (see `cdp.registry.centroid`); other files in it are kept alongside.
        The model's own feature names must equal `lineage.features`, in order. `plots` maps a plot name
        to a local image file; `model_card` is Markdown text. `registered_by` is the registering identity,
        kept with the version: that identity may not approve it.
        """
        ...

    def get(self, model_name: str, version: int) -> ModelVersion:
        """One version; `ModelVersionNotFoundError` if absent."""
        ...

    def list(self, model_name: str | None = None) -> list[ModelVersion]:
        """Every version of one model (or of all models), ordered by model name then version."""
        ...

    def champion(self, model_name: str) -> ModelVersion | None:
        """The version serving should load, or None if no version is champion."""
        ...

    def champion_version(self, model_name: str) -> int | None:
        """Only the champion's version number (a cheap check for pollers), or None."""
        ...

    def approve(
        self, model_name: str, version: int, actor: str, reason: str, *, role: str = "model-approver"
    ) -> ModelVersion:
        """Mark the version Approved and make it the champion; audited. `AccessDenied` (audited) when
        `actor` is the identity that registered the version."""
        ...

    def reject(
        self, model_name: str, version: int, actor: str, reason: str, *, role: str = "model-approver"
    ) -> ModelVersion:
        """Mark the version Rejected (dropping the champion alias if it held it); audited."""
        ...

    def retire(
        self, model_name: str, version: int, actor: str, reason: str, *, role: str = "model-approver"
    ) -> ModelVersion:
        """Mark the version Retired (dropping the challenger alias if it held it); audited as `model-retire`.
        `AccessDenied` (audited) for its registrant; `RetireRefusedError` for the champion;
        `RetiredVersionError` when it is retired already."""
        ...

    def history(self, model_name: str) -> list[ChampionEvent]:
        """Every change of champion of the model, oldest first (append-only; empty for an unknown model).
        A decision that replaces a champion gives two events: the old one `stopped`, the new one `became`."""
        ...

    def champion_at(self, model_name: str, when: datetime) -> int | None:
        """The champion's version at `when` (naive times are UTC), from the history; None if there was none.
        Before the first recorded change: the champion that change replaced (history is kept from then)."""
        ...

    def rollback(
        self, model_name: str, actor: str, reason: str, *, role: str = "model-approver"
    ) -> ModelVersion:
        """Make the previous champion the champion again through the approval path (audited as
        `model-rollback`; its registrant may not do it). `NoPreviousChampionError` if there is none."""
        ...

    def set_challenger(
        self, model_name: str, version: int, actor: str, reason: str, *, role: str = "model-approver"
    ) -> ModelVersion:
        """Give the `challenger` alias to a PendingManualApproval version (replacing any other challenger);
        audited as `model-challenger`. `InvalidRegistrationError` for a version in another status."""
        ...

    def challenger(self, model_name: str) -> ModelVersion | None:
        """The version scored in shadow beside the champion, or None."""
        ...

    def challenger_version(self, model_name: str) -> int | None:
        """Only the challenger's version number (a cheap check for pollers), or None."""
        ...

    def record_evidence(self, model_name: str, version: int, kind: str, document: Mapping[str, Any]) -> None:
        """Keep a JSON document of `kind` (lowercase name) with the version, replacing one of that kind;
        `InvalidRegistrationError` when it is too large or holds personal data."""
        ...

    def evidence(self, model_name: str, version: int) -> dict[str, dict[str, Any]]:
        """Every evidence document of the version, by kind (empty when none)."""

    def save_card(self, model_name: str, version: int, card: Mapping[str, Any], markdown: str) -> str:
        """Keep a new revision of the version's model card (`cdp.registry.model_card`: its JSON and the
        Markdown rendered from it); earlier revisions stay. Returns the Markdown's URI.
        `ModelVersionNotFoundError` for an unknown version; `InvalidRegistrationError` if the card looks
        like it holds personal data."""
        ...

    def load_card(self, model_name: str, version: int) -> dict[str, Any] | None:
        """The newest revision of the version's model card (JSON), or None when it has none."""
        ...

    def load_model(self, model_name: str, version: int | Literal["champion"] = CHAMPION) -> ProbabilityModel:
        """Load a version (or the champion) ready to score.

        Every loaded model has `features`, `kind` and `predict(frame)`: probabilities for a classifier,
        values for a regression, segment ids for a centroid model. `predict_proba(frame)` gives a
        classifier's probabilities or a centroid model's (n, k) soft assignment; a regression refuses it.
        """
        ...


def validate_model_name(model_name: str) -> str:
    if not isinstance(model_name, str) or not _MODEL_NAME.match(model_name):
        raise InvalidModelNameError(
            "model name must be 1-63 lowercase letters or digits, with single hyphens between them"
        )
    return model_name


def validate_status(status: str) -> str:
    if status not in APPROVAL_STATUSES:
        raise InvalidRegistrationError(f"approval status must be one of {', '.join(APPROVAL_STATUSES)}")
    return status


def validate_metrics(metrics: Mapping[str, float]) -> dict[str, float]:
    """Metric values as finite floats; names are kept as given."""
    out: dict[str, float] = {}
    for name, value in metrics.items():
        number = float(value)
        if not math.isfinite(number):
            raise InvalidRegistrationError(f"metric {name!r} is not a finite number")
        out[str(name)] = number
    return out


def validate_plots(plots: Mapping[str, str | Path] | None) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for name, path in (plots or {}).items():
        if not _PLOT_NAME.match(name):
            raise InvalidRegistrationError("plot names are lowercase letters, digits, '_' or '-'")
        file = Path(path)
        if not file.is_file():
            raise InvalidRegistrationError(f"plot {name!r}: no file at the given path")
        out[name] = file
    return out


def params_as_text(params: Mapping[str, Any]) -> dict[str, str]:
    """Params as strings, the form both registries store."""
    return {str(k): str(v) for k, v in params.items()}
