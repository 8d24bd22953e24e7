"""Local adapter of the model-registry port: MLflow 3 with a SQLite backend and a local artifact folder.

Layout under the state folder: `mlflow.db` (tracking + registry) and `mlruns/<model>/<run>/artifacts/`.
Each registration is one MLflow run in the experiment `cdp-<model>` holding the params, metrics, plots
(`plots/<name>.<ext>`), the model card (`model_card.md`) and the model (`model/`, an MLflow pyfunc whose
`predict` returns probabilities). The registered model version points at that run's `model/` folder and
carries the approval status and the lineage as tags; the champion is the registered-model alias
`champion`. The champion history is one registered-model tag per change (`cdp.champion.<time>-<random>`,
a JSON record): only ever added under a new key, it lives in the registry beside the alias it explains
(MLflow allows 100 000 characters per value; a record is at most ~1.3 k). MLflow is imported on first use
(the import takes seconds).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import unquote, urlparse

import numpy as np
import pandas as pd

from cdp.registry import history as champions
from cdp.registry.audit import (
    APPROVE_ACTION,
    REJECT_ACTION,
    RETIRE_ACTION,
    ROLLBACK_ACTION,
    AuditSource,
    LazyAudit,
    audited_decision,
)
from cdp.registry.checks import check_card, check_registration
from cdp.registry.evidence import CHALLENGER_ACTION, decode_evidence, encode_evidence
from cdp.registry.model_card import revision_key
from cdp.registry.port import (
    APPROVED,
    CHALLENGER,
    CHAMPION,
    PENDING,
    REJECTED,
    RETIRED,
    ApprovalStatus,
    ChampionEvent,
    InvalidRegistrationError,
    Lineage,
    ModelVersion,
    ModelVersionNotFoundError,
    NoPreviousChampionError,
    champion_retire_refusal,
    retired_refusal,
    validate_model_name,
)
from cdp.registry.scoring import NotAProbabilityModelError, check_lineage_features
from cdp.registry.sources import local_model_dir

if TYPE_CHECKING:
    from cdp.objectstore.port import ObjectStore
    from cdp.security.audit.port import AuditLog
    from cdp.settings import Settings

STATUS_TAG = "approval_status"
REASON_TAG = "status_reason"
REGISTERED_BY_TAG = "registered_by"
LINEAGE_TAGS = ("data_snapshot_hash", "code_version", "pipeline_run_id")
FEATURES_TAG = "features"  # JSON list
# classification, regression or segmentation (versions registered without it are classifiers)
KIND_TAG = "model_kind"
MODEL_ARTIFACT = "model"
CARD_ARTIFACT = "model_card.md"
CARD_REVISIONS = "model_card"  # governance card revisions: <key>.json + <key>.md (cdp.registry.model_card)
PLOTS_ARTIFACT = "plots"
EXPERIMENT_PREFIX = "cdp-"
EVIDENCE_TAG_PREFIX = "cdp.evidence."  # + kind: one model-version tag per evidence document
HISTORY_TAG_PREFIX = "cdp.champion."  # + champions.record_key(change): one registered-model tag per change


class PyfuncProbabilities:
    """A model loaded through `mlflow.pyfunc`, scoring like the folder's own model (`cdp.registry.scoring`).

    The pyfunc's `predict` gives probabilities (classifier), values (regression) or the (n, k) soft
    assignment (segmentation); `kind` (from the version's tag) says which, so `predict` and
    `predict_proba` mean the same here as on the SageMaker adapter's loaded models.
    """

    def __init__(self, pyfunc_model: Any, features: tuple[str, ...], kind: str = "classification") -> None:
        self._pyfunc = pyfunc_model
        self.features = features
        self.kind = kind

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        if self.kind == "regression":
            raise NotAProbabilityModelError("a regression model gives values: call predict")
        return np.asarray(self._pyfunc.predict(features), dtype=np.float64)

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        output = np.asarray(self._pyfunc.predict(features), dtype=np.float64)
        if self.kind == "segmentation":
            return np.argmax(output, axis=1).astype(np.int64)
        return output


def _import_mlflow() -> Any:
    # A bank's registry must not phone home; MLflow only honours DO_NOT_TRACK when it is "true".
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import mlflow

    return mlflow


class MlflowModelRegistry:
    """`ModelRegistry` on MLflow (`sqlite:///<state_dir>/mlflow.db`, artifacts in `<state_dir>/mlruns`)."""

    def __init__(
        self, state_dir: Path | str, audit: AuditSource, object_store: ObjectStore | None = None
    ) -> None:
        self.state_dir = Path(state_dir).resolve()
        self.db_path = self.state_dir / "mlflow.db"
        self.artifact_root = self.state_dir / "mlruns"
        self.tracking_uri = f"sqlite:///{self.db_path}"
        self._audit_source = LazyAudit(audit)  # opened by a decision only: reads never touch it
        self._object_store = object_store
        self._client_instance: Any = None

    @property
    def _audit(self) -> AuditLog:
        return self._audit_source.log

    @classmethod
    def from_settings(
        cls, settings: Settings, audit: AuditSource, object_store: ObjectStore | None = None
    ) -> MlflowModelRegistry:
        """The registry under `settings.state_dir`, auditing to `audit` (`Backends.model_registry` passes the
        platform audit log, or a function opening it)."""
        return cls(settings.state_dir, audit, object_store)

    # -- MLflow plumbing ------------------------------------------------------------------------------
    @property
    def _client(self) -> Any:
        if self._client_instance is None:
            mlflow = _import_mlflow()
            self.state_dir.mkdir(parents=True, exist_ok=True)
            self.artifact_root.mkdir(parents=True, exist_ok=True)
            self._client_instance = mlflow.MlflowClient(
                tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri
            )
        return self._client_instance

    def _experiment_id(self, model_name: str) -> str:
        from mlflow.exceptions import MlflowException

        name = EXPERIMENT_PREFIX + model_name
        experiment = self._client.get_experiment_by_name(name)
        if experiment is not None:
            return str(experiment.experiment_id)
        location = (self.artifact_root / model_name).as_uri()
        try:
            return str(self._client.create_experiment(name, artifact_location=location))
        except MlflowException:  # created meanwhile by another process
            experiment = self._client.get_experiment_by_name(name)
            if experiment is None:
                raise
            return str(experiment.experiment_id)

    def _ensure_registered_model(self, model_name: str) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self._client.get_registered_model(model_name)
        except MlflowException:
            try:
                self._client.create_registered_model(model_name)
            except MlflowException:
                self._client.get_registered_model(model_name)  # created meanwhile; re-raise if still absent

    def _model_version(self, model_name: str, version: int) -> Any:
        from mlflow.exceptions import MlflowException

        validate_model_name(model_name)
        try:
            return self._client.get_model_version(model_name, str(int(version)))
        except MlflowException:
            raise ModelVersionNotFoundError(f"no version {version} of model {model_name!r}") from None

    def _champion_version(self, model_name: str, alias: str = CHAMPION) -> Any | None:
        from mlflow.exceptions import MlflowException

        try:
            return self._client.get_model_version_by_alias(model_name, alias)
        except MlflowException:
            return None

    def _drop_challenger_of(self, model_name: str, version: int) -> None:
        """Remove the challenger alias when it points at `version` (it was approved or rejected)."""
        challenger = self._champion_version(model_name, CHALLENGER)
        if challenger is not None and int(challenger.version) == int(version):
            self._client.delete_registered_model_alias(model_name, CHALLENGER)

    def _describe(self, mv: Any) -> ModelVersion:
        run = self._client.get_run(mv.run_id)
        tags = dict(mv.tags)
        lineage = Lineage(
            data_snapshot_hash=tags.get("data_snapshot_hash", ""),
            features=tuple(json.loads(tags.get(FEATURES_TAG, "[]"))),
            code_version=tags.get("code_version", ""),
            pipeline_run_id=tags.get("pipeline_run_id", ""),
        )
        base = run.info.artifact_uri.rstrip("/")
        plots = {
            Path(f.path).stem: f"{base}/{f.path}"
            for f in self._client.list_artifacts(mv.run_id, PLOTS_ARTIFACT)
            if not f.is_dir
        }
        has_card = any(f.path == CARD_ARTIFACT for f in self._client.list_artifacts(mv.run_id))
        return ModelVersion(
            model_name=mv.name,
            version=int(mv.version),
            status=tags.get(STATUS_TAG, PENDING),
            is_champion=CHAMPION in (getattr(mv, "aliases", None) or []),
            is_challenger=CHALLENGER in (getattr(mv, "aliases", None) or []),
            metrics=dict(run.data.metrics),
            params=dict(run.data.params),
            lineage=lineage,
            artifacts_uri=mv.source,
            created_at=datetime.fromtimestamp(mv.creation_timestamp / 1000, tz=UTC),
            plots=plots,
            model_card_uri=f"{base}/{CARD_ARTIFACT}" if has_card else None,
            status_reason=tags.get(REASON_TAG),
            registered_by=tags.get(REGISTERED_BY_TAG),
        )

    # -- the port -------------------------------------------------------------------------------------
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
        from mlflow.entities import Metric, Param

        checked = check_registration(model_name, approval_status, metrics, params, lineage, plots, model_card)
        metric_values, param_values, plot_files = checked.metrics, checked.params, checked.plots

        with local_model_dir(artifacts_uri, self._object_store) as model_dir:
            kind = check_lineage_features(model_dir, lineage).kind
            experiment_id = self._experiment_id(model_name)
            run = self._client.create_run(experiment_id, run_name=f"{model_name}-registration")
            run_id = run.info.run_id
            now = int(time.time() * 1000)
            self._client.log_batch(
                run_id,
                metrics=[Metric(k, v, now, 0) for k, v in metric_values.items()],
                params=[Param(k, v) for k, v in param_values.items()],
            )
            with tempfile.TemporaryDirectory(prefix="cdp-register-") as tmp:
                staging = Path(tmp)
                from cdp.registry.pyfunc_flavor import save_pyfunc

                save_pyfunc(model_dir, staging / MODEL_ARTIFACT)
                self._client.log_artifacts(run_id, str(staging / MODEL_ARTIFACT), MODEL_ARTIFACT)
                if plot_files:
                    plot_dir = staging / PLOTS_ARTIFACT
                    plot_dir.mkdir()
                    for name, path in plot_files.items():
                        shutil.copyfile(path, plot_dir / f"{name}{path.suffix.lower()}")
                    self._client.log_artifacts(run_id, str(plot_dir), PLOTS_ARTIFACT)
                if model_card is not None:
                    card = staging / CARD_ARTIFACT
                    card.write_text(model_card, encoding="utf-8")
                    self._client.log_artifact(run_id, str(card))
            self._client.set_terminated(run_id)

        self._ensure_registered_model(model_name)
        source = f"{run.info.artifact_uri.rstrip('/')}/{MODEL_ARTIFACT}"
        tags = {
            STATUS_TAG: approval_status,
            KIND_TAG: kind,
            FEATURES_TAG: json.dumps(list(lineage.features)),
            **{k: getattr(lineage, k) for k in LINEAGE_TAGS},
            **({REGISTERED_BY_TAG: registered_by} if registered_by else {}),
        }
        mv = self._client.create_model_version(model_name, source=source, run_id=run_id, tags=tags)
        return self._describe(self._client.get_model_version(model_name, mv.version))

    def get(self, model_name: str, version: int) -> ModelVersion:
        return self._describe(self._model_version(model_name, version))

    def list(self, model_name: str | None = None) -> list[ModelVersion]:
        if model_name is not None:
            validate_model_name(model_name)
        filter_string = f"name = '{model_name}'" if model_name else None
        found: list[Any] = []
        token = None
        while True:
            page = self._client.search_model_versions(filter_string, page_token=token)
            found.extend(page)
            token = page.token
            if not token:
                break
        found.sort(key=lambda mv: (mv.name, int(mv.version)))
        # search results may omit aliases: fetch each version fully
        return [self._describe(self._client.get_model_version(mv.name, mv.version)) for mv in found]

    def champion(self, model_name: str) -> ModelVersion | None:
        validate_model_name(model_name)
        mv = self._champion_version(model_name)
        return None if mv is None else self._describe(mv)

    def champion_version(self, model_name: str) -> int | None:
        validate_model_name(model_name)
        mv = self._champion_version(model_name)  # one alias lookup: no run, no artifact listing
        return None if mv is None else int(mv.version)

    def approve(
        self, model_name: str, version: int, actor: str, reason: str, *, role: str = "model-approver"
    ) -> ModelVersion:
        return self._approve(model_name, version, actor, reason, role, APPROVE_ACTION)

    def _approve(
        self, model_name: str, version: int, actor: str, reason: str, role: str, action: str
    ) -> ModelVersion:
        def decide() -> ModelVersion:
            mv = self._model_version(model_name, version)
            if dict(mv.tags).get(STATUS_TAG) == RETIRED:
                raise retired_refusal(model_name, version)
            before = self.champion_version(model_name)
            self._client.set_model_version_tag(model_name, mv.version, STATUS_TAG, APPROVED)
            self._client.set_model_version_tag(model_name, mv.version, REASON_TAG, reason)
            # the status is set before the alias moves, so the champion is always an Approved version
            self._client.set_registered_model_alias(model_name, CHAMPION, mv.version)
            self._drop_challenger_of(model_name, int(version))
            if before != int(version):
                kind = champions.ROLLBACK if action == ROLLBACK_ACTION else champions.APPROVE
                self._record(champions.new_change(model_name, actor, kind, reason, before, int(version)))
            return self.get(model_name, version)

        def registrant() -> str | None:
            return dict(self._model_version(model_name, version).tags).get(REGISTERED_BY_TAG)

        current = self.champion_version(model_name) if action == ROLLBACK_ACTION else None
        return audited_decision(
            self._audit, action=action, actor=actor, role=role, model_name=model_name, version=version,
            reason=reason, decide=decide, registrant=registrant,
            extra={"rolled_back_from": current} if action == ROLLBACK_ACTION else None,
        )  # fmt: skip

    def reject(
        self, model_name: str, version: int, actor: str, reason: str, *, role: str = "model-approver"
    ) -> ModelVersion:
        def decide() -> ModelVersion:
            mv = self._model_version(model_name, version)
            champion = self._champion_version(model_name)
            if champion is not None and champion.version == mv.version:
                self._client.delete_registered_model_alias(model_name, CHAMPION)
                self._record(
                    champions.new_change(model_name, actor, champions.REJECT, reason, int(version), None)
                )
            self._drop_challenger_of(model_name, int(version))
            self._client.set_model_version_tag(model_name, mv.version, STATUS_TAG, REJECTED)
            self._client.set_model_version_tag(model_name, mv.version, REASON_TAG, reason)
            return self.get(model_name, version)

        return audited_decision(
            self._audit, action=REJECT_ACTION, actor=actor, role=role, model_name=model_name,
            version=version, reason=reason, decide=decide,
        )  # fmt: skip

    def retire(
        self, model_name: str, version: int, actor: str, reason: str, *, role: str = "model-approver"
    ) -> ModelVersion:
        def decide() -> ModelVersion:
            mv = self._model_version(model_name, version)
            if dict(mv.tags).get(STATUS_TAG) == RETIRED:
                raise retired_refusal(model_name, version)
            if self.champion_version(model_name) == int(version):
                raise champion_retire_refusal(model_name, version)
            self._drop_challenger_of(model_name, int(version))
            self._client.set_model_version_tag(model_name, mv.version, STATUS_TAG, RETIRED)
            self._client.set_model_version_tag(model_name, mv.version, REASON_TAG, reason)
            return self.get(model_name, version)

        def registrant() -> str | None:
            return dict(self._model_version(model_name, version).tags).get(REGISTERED_BY_TAG)

        return audited_decision(
            self._audit, action=RETIRE_ACTION, actor=actor, role=role, model_name=model_name,
            version=version, reason=reason, decide=decide, registrant=registrant,
        )  # fmt: skip

    # -- challenger and evidence ----------------------------------------------------------------------
    def set_challenger(
        self, model_name: str, version: int, actor: str, reason: str, *, role: str = "model-approver"
    ) -> ModelVersion:
        def decide() -> ModelVersion:
            mv = self._model_version(model_name, version)
            status = dict(mv.tags).get(STATUS_TAG, PENDING)
            if status == RETIRED:
                raise retired_refusal(model_name, version)
            if status != PENDING:
                raise InvalidRegistrationError(
                    f"v{int(version)} is {status}: only a pending version challenges"
                )
            self._client.set_registered_model_alias(model_name, CHALLENGER, mv.version)
            return self.get(model_name, version)

        return audited_decision(
            self._audit, action=CHALLENGER_ACTION, actor=actor, role=role, model_name=model_name,
            version=version, reason=reason, decide=decide,
        )  # fmt: skip

    def challenger(self, model_name: str) -> ModelVersion | None:
        validate_model_name(model_name)
        mv = self._champion_version(model_name, CHALLENGER)
        return None if mv is None else self._describe(mv)

    def challenger_version(self, model_name: str) -> int | None:
        validate_model_name(model_name)
        mv = self._champion_version(model_name, CHALLENGER)
        return None if mv is None else int(mv.version)

    def record_evidence(self, model_name: str, version: int, kind: str, document: Mapping[str, Any]) -> None:
        text = encode_evidence(kind, document)
        mv = self._model_version(model_name, version)
        self._client.set_model_version_tag(model_name, mv.version, EVIDENCE_TAG_PREFIX + kind, text)

    def evidence(self, model_name: str, version: int) -> dict[str, dict[str, Any]]:
        tags = dict(self._model_version(model_name, version).tags)
        return {
            key[len(EVIDENCE_TAG_PREFIX) :]: decode_evidence(value)
            for key, value in sorted(tags.items())
            if key.startswith(EVIDENCE_TAG_PREFIX)
        }

    # -- champion history -----------------------------------------------------------------------------
    def _record(self, change: champions.ChampionChange) -> None:
        self._client.set_registered_model_tag(
            change.model_name, HISTORY_TAG_PREFIX + champions.record_key(change), change.to_json()
        )

    def _changes(self, model_name: str) -> list[champions.ChampionChange]:
        from mlflow.exceptions import MlflowException

        validate_model_name(model_name)
        try:
            tags = dict(self._client.get_registered_model(model_name).tags)
        except MlflowException:
            return []
        return champions.ordered(
            champions.ChampionChange.from_json(value)
            for key, value in sorted(tags.items())
            if key.startswith(HISTORY_TAG_PREFIX)
        )

    def history(self, model_name: str) -> list[ChampionEvent]:
        return champions.events(self._changes(model_name))

    def champion_at(self, model_name: str, when: datetime) -> int | None:
        return champions.champion_at(self._changes(model_name), when, self.champion_version(model_name))

    def rollback(
        self, model_name: str, actor: str, reason: str, *, role: str = "model-approver"
    ) -> ModelVersion:
        current = self.champion_version(model_name)
        target = champions.previous_champion(
            self._changes(model_name),
            current,
            lambda v: dict(self._model_version(model_name, v).tags).get(STATUS_TAG, PENDING),
        )
        if target is None:
            raise NoPreviousChampionError(f"model {model_name!r} has no earlier champion to roll back to")
        return self._approve(model_name, target, actor, reason, role, ROLLBACK_ACTION)

    # -- model cards ----------------------------------------------------------------------------------
    def save_card(self, model_name: str, version: int, card: Mapping[str, Any], markdown: str) -> str:
        body = check_card(model_name, card, markdown)
        mv = self._model_version(model_name, version)
        key = revision_key()
        with tempfile.TemporaryDirectory(prefix="cdp-card-") as tmp:
            folder = Path(tmp)
            (folder / f"{key}.json").write_bytes(body)
            (folder / f"{key}.md").write_text(markdown, encoding="utf-8")
            self._client.log_artifacts(mv.run_id, str(folder), CARD_REVISIONS)
        base = self._client.get_run(mv.run_id).info.artifact_uri.rstrip("/")
        return f"{base}/{CARD_REVISIONS}/{key}.md"

    def load_card(self, model_name: str, version: int) -> dict[str, Any] | None:
        mv = self._model_version(model_name, version)
        revisions = sorted(
            f.path
            for f in self._client.list_artifacts(mv.run_id, CARD_REVISIONS)
            if not f.is_dir and f.path.endswith(".json")
        )
        if not revisions:
            return None
        base = self._client.get_run(mv.run_id).info.artifact_uri.rstrip("/")
        if base.startswith("file:"):  # this adapter's artifact folder: read in place, no download
            return dict(
                json.loads(Path(unquote(urlparse(f"{base}/{revisions[-1]}").path)).read_text("utf-8"))
            )
        with tempfile.TemporaryDirectory(prefix="cdp-card-") as tmp:
            local = self._client.download_artifacts(mv.run_id, revisions[-1], tmp)
            return dict(json.loads(Path(local).read_text(encoding="utf-8")))

    def load_model(
        self, model_name: str, version: int | Literal["champion"] = CHAMPION
    ) -> PyfuncProbabilities:
        if version == CHAMPION:
            validate_model_name(model_name)
            mv = self._champion_version(model_name)
            if mv is None:
                raise ModelVersionNotFoundError(f"model {model_name!r} has no champion")
        else:
            mv = self._model_version(model_name, int(version))
        import mlflow.pyfunc

        _import_mlflow()
        tags = dict(mv.tags)
        features = tuple(json.loads(tags.get(FEATURES_TAG, "[]")))
        kind = tags.get(KIND_TAG, "classification")
        return PyfuncProbabilities(mlflow.pyfunc.load_model(mv.source), features, kind)
