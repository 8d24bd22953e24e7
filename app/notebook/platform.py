"""`Platform`: the platform from a notebook, in one object, acting as the caller's identity.

    from app.notebook import Platform
    p = Platform.from_env()                       # the identity of CDP_IDENTITY_FILE (IAM in AWS)
    p.sql("SELECT channel, count(*) FROM transactions GROUP BY ALL")
    ts = p.training_set("fraud")                  # point-in-time features, split by time, in memory
    run = p.train(ts, hyperparameters={"max_depth": 4})  # tracked in MLflow (fraud-experiments)
    p.compare(run)                                # vs the champion, on the promotion gate's holdout
    p.register(run); p.run_pipeline("fraud", parameters={"MaxDepth": 4, "NegativeSampleRate": "1"})

Every method authorizes the caller for its action with the platform's policy (the audit log records a
refusal): reading the lake (`sql`, training sets, comparisons, scoring) needs a role that may run analyst
SQL, and reaches the lake only through the catalog's read-only analyst surface (`app.notebook.surface`);
registering a model and running a pipeline need `model-register`, as `run-pipeline --local` does.
Results carry tokens and aggregates only: the analyst surface holds no clear personal data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from app.notebook.comparison import Comparison, compare, run_as_version
from app.notebook.experiments import TrainingRun, train_fraud
from app.notebook.models import ModelCatalog
from app.notebook.surface import AnalystBackends
from app.notebook.training_sets import TABLE_SETS, TrainingSet, fraud_training_set, table_training_set
from cdp.backends import Backends
from cdp.registry.port import CHAMPION, Lineage, ModelVersion
from cdp.security.identity.authorize import authorize
from cdp.security.vault import Caller
from cdp.settings import Settings, get_settings
from cdp.tracking.port import TrackedRun, experiment_name
from cdp.tracking.reproduce import reproducibility_tags
from features.leakage import LeakageReport, check_point_in_time
from monitoring.promotion.decision import PromotionDecision

READ_ACTION = "sql"  # reading the lake through the analyst surface
REGISTER_ACTION = "model-register"
NOTEBOOK_RUNS = "notebook_runs"  # under the state folder: the model folders of notebook training runs

Data = pd.DataFrame | TrainingSet | str | Path


@dataclass(frozen=True)
class PipelineRun:
    """A finished local pipeline run: its status, steps and the model version it registered, if any."""

    execution_id: str
    status: str
    steps: pd.DataFrame
    registered_version: int | None
    failure_reason: str | None
    run_folder: Path


class Platform:
    """The notebook's way into the platform (see the module doc)."""

    def __init__(self, backends: Backends) -> None:
        self._backends = backends
        self._surface = AnalystBackends(backends)
        self.caller: Caller = self._authorize(READ_ACTION)

    @classmethod
    def from_env(cls, settings: Settings | None = None) -> Platform:
        """The platform as the caller configured by the environment (`CDP_HOME`, `CDP_IDENTITY_FILE` or
        the IAM principal); `NotAuthenticated` / `AccessDenied` when that identity may not read the lake."""
        return cls(Backends(settings or get_settings()))

    def _authorize(self, action: str) -> Caller:
        """The caller, authenticated again (a revoked identity stops working) in a role allowed `action`."""
        return authorize(self._backends.identity, self._backends.audit, action)

    @property
    def settings(self) -> Settings:
        return self._backends.settings

    # -- the lake -----------------------------------------------------------------------------------
    def sql(self, query: str) -> pd.DataFrame:
        """One read-only SELECT over the lake tables (DuckDB SQL; the analyst Athena workgroup in AWS)."""
        self._authorize(READ_ACTION)
        return self._backends.catalog.analyst_query(query).to_pandas()

    def tables(self) -> list[str]:
        """The lake tables the analyst surface holds."""
        return sorted(t.name for t in self._backends.catalog.tables())

    def training_set(
        self, model: str = "fraud", *, start: date | None = None, end: date | None = None
    ) -> TrainingSet:
        """The model's training set, in memory: `fraud` computed point-in-time over `[start, end)` and split
        by time as the pipeline splits it; `clv` / `segmentation` as `cdp features build` wrote them.
        The rows come through the analyst surface, whose result limit (`CDP_ANALYST_MAX_ROWS`) bounds
        them: narrow a large lake with `start` / `end`."""
        self._authorize(READ_ACTION)
        if model == "fraud":
            return fraud_training_set(self._surface, start, end, self.settings.training_eval_min_frauds)
        if model in TABLE_SETS:
            return table_training_set(self._surface, model)
        raise ValueError(f"unknown model {model!r}: fraud, clv or segmentation")

    def check_point_in_time(
        self, feature_sql: str, features: list[str], *, cutoff: Any = None, key: str = "txn_id"
    ) -> LeakageReport:
        """Does a candidate feature read the future? Computed on the whole history and on the history cut
        at `cutoff` (default: the median event time), the rows before the cut must not change."""
        self._authorize(READ_ACTION)
        return check_point_in_time(self._surface.catalog.query, feature_sql, features, cutoff=cutoff, key=key)

    # -- models -------------------------------------------------------------------------------------
    @property
    def models(self) -> ModelCatalog:
        """`p.models.list()`, `p.models.load(name, version=None, alias="champion")`."""
        return ModelCatalog(self._backends.model_registry, self._backends.object_store)

    # -- experiments --------------------------------------------------------------------------------
    def train(
        self,
        training_set: TrainingSet,
        *,
        hyperparameters: dict[str, Any] | None = None,
        negative_sample_rate: str | float = 1.0,
        run_name: str | None = None,
    ) -> TrainingRun:
        """Train a fraud variant on `training_set` with the pipeline's training code, evaluate it on the
        test split and log it to MLflow (`fraud-experiments`); returns the run."""
        if training_set.model != "fraud":
            raise ValueError("notebook training covers the fraud model; run the clv or segmentation pipeline")
        caller = self._authorize(READ_ACTION)
        return train_fraud(
            training_set,
            self._backends.experiment_tracker,
            self.settings.state_dir / NOTEBOOK_RUNS,
            hyperparameters=hyperparameters,
            negative_sample_rate=negative_sample_rate,
            run_name=run_name,
            run_by=caller.id,
        )

    @contextmanager
    def track(
        self, model: str = "fraud", run_name: str | None = None, data_snapshot_hash: str | None = None
    ) -> Iterator[TrackedRun]:
        """An MLflow run of your own in the model's experiment (log params, metrics, figures, files); it
        carries the reproducibility tags (git commit, lock-file hash, the data snapshot hash given)."""
        caller = self._authorize(READ_ACTION)
        tags = {"cdp.source": "notebook", "cdp.pipeline": model, "cdp.run_by": caller.id}
        tags.update(reproducibility_tags(data_snapshot_hash))
        with self._backends.experiment_tracker.start_run(experiment_name(model), run_name, tags) as run:
            yield run

    def runs(self, model: str = "fraud") -> pd.DataFrame:
        """The model's tracked runs (notebook and `run-pipeline --local`), newest first."""
        rows = []
        for run in self._backends.experiment_tracker.runs(experiment_name(model)):
            rows.append(
                {
                    "run_id": run["run_id"],
                    "name": run["run_name"],
                    "status": run["status"],
                    "source": run["tags"].get("cdp.source"),
                    **{f"metric.{k}": v for k, v in sorted(run["metrics"].items()) if "." not in k},
                }
            )
        return pd.DataFrame(rows)

    @property
    def tracking_uri(self) -> str:
        """Where the experiments are (open them with `cdp mlflow ui`)."""
        return self._backends.experiment_tracker.tracking_uri

    # -- scoring and evaluation ---------------------------------------------------------------------
    def _rows(self, data: Data) -> pd.DataFrame:
        if isinstance(data, TrainingSet):
            return data.frame
        if isinstance(data, pd.DataFrame):
            return data
        path = Path(data)
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        if path.suffix == ".csv":
            return pd.read_csv(path)
        if isinstance(data, str) and data.isidentifier():
            return self.sql(f"SELECT * FROM {data}")
        raise ValueError("data is a frame, a training set, a .parquet or .csv file, or a lake table name")

    def score(self, model: str, version: int | None, data: Data) -> pd.DataFrame:
        """Score `data` with `model` version `version` (None: the champion): one row per input row with the
        score, the decision at the version's threshold (`alert`) and reason codes for the alerts; the
        function behind `cdp score` (`inference.batch_scoring.score_transactions`), reading the lake
        through this identity's read-only surface. `data`: an IBM transactions CSV, a lake table name, a
        training set, a frame or a Parquet file of the view's rows."""
        from inference.batch_scoring import score_transactions

        self._authorize(READ_ACTION)
        return score_transactions(model, version, self._scorable(data), backends=self._surface)

    def evaluate(self, model: str, version: int | None, labelled: Data) -> dict[str, Any]:
        """Metrics of `model` version `version` (None: the champion) on labelled data, as `cdp evaluate`
        reports them (`monitoring.evaluation.evaluate_model`): PR-AUC, ROC-AUC, precision and recall at
        the threshold and at the alert budget, calibration, episodes, bootstrap intervals. Unlabelled data
        raises `ValueError`."""
        from monitoring.evaluation import evaluate_model

        self._authorize(READ_ACTION)
        data = self._scorable(labelled)
        if isinstance(data, pd.DataFrame) and not {"is_fraud", "label"} & set(data.columns):
            raise ValueError("the input has no fraud labels: evaluation needs labelled rows")
        return evaluate_model(model, version, data, backends=self._surface).to_dict()

    def _scorable(self, data: Data) -> str | Path | pd.DataFrame:
        """What batch scoring takes: an IBM CSV's path or a lake table's name as they are, else rows."""
        if isinstance(data, str | Path) and (Path(data).suffix == ".csv" or str(data).isidentifier()):
            return data
        return self._rows(data)

    # -- promotion ----------------------------------------------------------------------------------
    def compare(
        self, candidate: TrainingRun | int, champion: int | str = CHAMPION, *, model: str = "cdp-fraud"
    ) -> Comparison:
        """The candidate (a notebook run, or a registered version of `model`) against the champion (or a
        given version) with the promotion gate's own holdout, metrics and gates. Decides nothing."""
        self._authorize(READ_ACTION)
        if isinstance(candidate, TrainingRun):
            contender = run_as_version(candidate)
            model = candidate.registered_name
        else:
            version = self._backends.model_registry.get(model, int(candidate))
            from monitoring.promotion.scoring import load

            contender = (version, load(self._surface, version))
        registry = self._backends.model_registry
        opponent = registry.champion(model) if champion == CHAMPION else registry.get(model, int(champion))
        return compare(self._surface, contender, opponent)

    def gate(self, model: str = "cdp-fraud", version: int | None = None) -> PromotionDecision:
        """What the promotion gate would decide on `version` (default: the newest pending one), every gate
        included, as a dry run: nothing changes (the gate service decides with `cdp promote`)."""
        from monitoring.promotion.promote import promote

        caller = self._authorize(READ_ACTION)
        return promote(self._surface, model, candidate_version=version, actor=caller.id, dry_run=True)

    def drift_report(self, model: str = "cdp-fraud") -> Any:
        """Run the drift job once for `model` (its champion's training snapshot vs the newest scored
        window, read through the analyst surface) and return its result: `report` (per-column drift,
        score PSI), `html_path` and `json_path` under `<home>/monitoring/reports/`."""
        from monitoring.commands import drift_settings
        from monitoring.drift.job import run_drift_job

        self._authorize(READ_ACTION)
        return run_drift_job(self._surface, model, settings=drift_settings(self.settings))

    def register(self, run: TrainingRun) -> ModelVersion:
        """Register a notebook run as a new version (PendingManualApproval), registered by the caller (who
        may then not approve it): its model folder, test metrics, parameters, plots and model card, with
        the lineage of its training data and its MLflow run."""
        caller = self._authorize(REGISTER_ACTION)
        lineage = Lineage(
            data_snapshot_hash=run.data_snapshot_hash,
            features=run.features,
            code_version=reproducibility_tags(None)["cdp.git_commit"],
            pipeline_run_id=f"mlflow:{run.experiment}/{run.run_id}",
        )
        params = {**run.params, "source": "notebook", "mlflow_run_id": run.run_id}
        return self._backends.model_registry.register(
            run.registered_name, run.model_dir, run.metrics, params, lineage,
            plots=run.plots, model_card=run.model_card, registered_by=caller.id,
        )  # fmt: skip

    # -- pipelines ----------------------------------------------------------------------------------
    def run_pipeline(
        self,
        model: str = "fraud",
        parameters: dict[str, Any] | None = None,
        *,
        use_cache: bool = True,
        progress: Callable[[str], None] | None = print,
    ) -> PipelineRun:
        """Run the model's pipeline here (what `run-pipeline --pipeline MODEL --local` runs) as the caller,
        recorded as the registrant of the version it registers, and tracked in MLflow.

        `parameters` override the pipeline's parameters, the model's hyperparameters among them under
        their PascalCase names (`{"MaxDepth": 4, "Eta": 0.05}`: `pipelines.spec`). An unknown name, or a
        value that does not fit the parameter's type, raises a one-line `ExecutorError` listing the names
        (or naming the parameter) before any step runs. The steps table says why each job step ran
        instead of coming from the cache (`cache_miss_reason`, e.g. "parameter MaxDepth changed")."""
        from pipelines.run import run_local_pipeline

        caller = self._authorize(REGISTER_ACTION)
        record, folder = run_local_pipeline(
            model,
            self._backends,
            dict(parameters or {}),  # typed values are checked against each parameter's type
            use_cache=use_cache,
            registered_by=caller.id,
            progress=progress,
        )
        register = next((s for s in record.steps if s.type == "RegisterModel" and s.properties), None)
        steps = pd.DataFrame(
            [
                {
                    "step": s.name,
                    "status": s.status,
                    "seconds": s.duration_seconds,
                    "cached": s.cache_hit,
                    "outcome": s.outcome,
                    "cache_miss_reason": s.cache_miss_reason,
                }
                for s in record.steps
            ]
        )
        return PipelineRun(
            execution_id=record.execution_id,
            status=record.status,
            steps=steps,
            registered_version=register.properties.get("ModelPackageVersion") if register else None,
            failure_reason=record.failure_reason,
            run_folder=folder,
        )
