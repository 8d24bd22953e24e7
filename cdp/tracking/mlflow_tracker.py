"""The experiment-tracking adapter: MLflow, through its client (no process-wide active run is touched).

Locally the tracking URI is the registry's own store (`sqlite:///<state>/mlflow.db`), so one `mlflow ui`
shows experiments and registered models together; each experiment keeps its files under
`<state>/mlruns/experiments/<name>/`. In AWS the tracking URI is the SageMaker managed MLflow tracking
server's ARN (the `sagemaker-mlflow` plugin resolves it and signs requests with the caller's AWS
credentials); the server keeps the files in its own S3 artifact store. MLflow is imported on first use.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cdp.tracking.guard import check_files, check_values
from cdp.tracking.port import TrackingError

if TYPE_CHECKING:
    from cdp.settings import Settings

MAX_PARAM_CHARS = 6000  # MLflow's limit on a param value
_EXPERIMENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._/-]{0,127}$")


def _mlflow() -> Any:
    # A bank's tracking must not phone home; MLflow only honours DO_NOT_TRACK when it is "true".
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import mlflow

    return mlflow


def _text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
    return text[:MAX_PARAM_CHARS]


class MlflowRun:
    """`TrackedRun` on an MLflow run id."""

    def __init__(self, client: Any, run_id: str, experiment: str) -> None:
        self._client = client
        self.run_id = run_id
        self.experiment = experiment

    def log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        values = {str(k): _text(v) for k, v in params.items()}
        check_values(values, "param")
        if values:
            self._client.log_batch(self.run_id, params=[Param(k, v) for k, v in sorted(values.items())])

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        values = {}
        for name, value in metrics.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                values[str(name)] = float(value)
        check_values({k: k for k in values}, "metric")
        if values:
            batch = [Metric(k, v, now, step or 0) for k, v in sorted(values.items())]
            self._client.log_batch(self.run_id, metrics=batch)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        from mlflow.entities import RunTag

        values = {str(k): _text(v) for k, v in tags.items()}
        check_values(values, "tag")
        if values:
            self._client.log_batch(self.run_id, tags=[RunTag(k, v) for k, v in sorted(values.items())])

    def log_file(self, path: Path, folder: str | None = None) -> None:
        path = Path(path)
        if not path.exists():
            raise TrackingError(f"nothing to log at {path.name}")
        check_files(path)
        if path.is_dir():
            self._client.log_artifacts(self.run_id, str(path), folder)
        else:
            self._client.log_artifact(self.run_id, str(path), folder)

    def log_json(self, document: Any, name: str) -> None:
        folder, _, file_name = name.rpartition("/")
        with tempfile.TemporaryDirectory(prefix="cdp-tracking-") as tmp:
            path = Path(tmp) / file_name
            path.write_text(json.dumps(document, indent=2, default=str, sort_keys=True))
            self.log_file(path, folder or None)

    def log_figure(self, figure: Any, name: str) -> None:
        folder, _, file_name = name.rpartition("/")
        with tempfile.TemporaryDirectory(prefix="cdp-tracking-") as tmp:
            path = Path(tmp) / file_name
            figure.savefig(path, dpi=100, bbox_inches="tight")
            self.log_file(path, folder or None)


class MlflowExperimentTracker:
    """`ExperimentTracker` on an MLflow tracking URI (a local SQLite store or a SageMaker MLflow ARN)."""

    def __init__(self, tracking_uri: str | None, artifact_root: Path | None = None) -> None:
        self.tracking_uri = tracking_uri or ""
        self.artifact_root = Path(artifact_root).resolve() if artifact_root else None
        self._client_instance: Any = None

    @classmethod
    def local(cls, settings: Settings) -> MlflowExperimentTracker:
        """The store under the home, shared with the local model registry."""
        state = settings.state_dir.resolve()
        return cls(f"sqlite:///{state / 'mlflow.db'}", state / "mlruns" / "experiments")

    @classmethod
    def sagemaker(cls, settings: Settings) -> MlflowExperimentTracker:
        """The SageMaker managed MLflow tracking server named by `CDP_MLFLOW_TRACKING_ARN`."""
        return cls(settings.mlflow_tracking_arn)

    @property
    def _client(self) -> Any:
        if not self.tracking_uri:
            raise TrackingError(
                "no experiment tracking server: set CDP_MLFLOW_TRACKING_ARN to the SageMaker MLflow "
                "tracking server's ARN"
            )
        if self._client_instance is None:
            mlflow = _mlflow()
            if self.artifact_root is not None:
                self.artifact_root.mkdir(parents=True, exist_ok=True)
            self._client_instance = mlflow.MlflowClient(tracking_uri=self.tracking_uri)
        return self._client_instance

    def _experiment_id(self, name: str, create: bool = True) -> str | None:
        from mlflow.exceptions import MlflowException

        if not _EXPERIMENT_NAME.match(name):
            raise TrackingError("an experiment name is 1-128 letters, digits, spaces, '.', '_', '/' or '-'")
        found = self._client.get_experiment_by_name(name)
        if found is not None or not create:
            return None if found is None else str(found.experiment_id)
        location = None
        if self.artifact_root is not None:
            location = (self.artifact_root / name.replace("/", "_").replace(" ", "_")).as_uri()
        try:
            return str(self._client.create_experiment(name, artifact_location=location))
        except MlflowException:  # created meanwhile by another process
            found = self._client.get_experiment_by_name(name)
            if found is None:
                raise
            return str(found.experiment_id)

    @contextmanager
    def start_run(
        self, experiment: str, run_name: str | None = None, tags: Mapping[str, Any] | None = None
    ) -> Iterator[MlflowRun]:
        """A run in `experiment`; FINISHED when the block ends, FAILED (and re-raised) when it raises."""
        values = {str(k): _text(v) for k, v in (tags or {}).items()}
        check_values(values, "tag")
        experiment_id = self._experiment_id(experiment)
        created = self._client.create_run(experiment_id, run_name=run_name, tags=values)
        run = MlflowRun(self._client, created.info.run_id, experiment)
        try:
            yield run
        except BaseException:
            self._client.set_terminated(run.run_id, "FAILED")
            raise
        self._client.set_terminated(run.run_id, "FINISHED")

    def runs(self, experiment: str) -> list[dict[str, Any]]:
        experiment_id = self._experiment_id(experiment, create=False)
        if experiment_id is None:
            return []
        found = self._client.search_runs([experiment_id], order_by=["attributes.start_time DESC"])
        return [
            {
                "run_id": r.info.run_id,
                "run_name": r.info.run_name,
                "status": r.info.status,
                "params": dict(r.data.params),
                "metrics": dict(r.data.metrics),
                "tags": {k: v for k, v in r.data.tags.items() if not k.startswith("mlflow.")},
            }
            for r in found
        ]

    def ui_command(self, port: int) -> list[str] | None:
        """The `mlflow ui` command line that opens this store, bound to 127.0.0.1 only; None for a remote
        tracking server (a SageMaker managed server has its own UI: `remote_ui_hint`)."""
        if not self.tracking_uri or self.tracking_uri.startswith("arn:"):
            return None
        return [
            "mlflow", "ui", "--backend-store-uri", self.tracking_uri,
            "--host", "127.0.0.1", "--port", str(int(port)),
        ]  # fmt: skip

    def remote_ui_hint(self) -> str:
        """How to open a SageMaker managed MLflow tracking server's UI (a presigned URL, AWS credentials)."""
        if not self.tracking_uri:
            return "no tracking server: set CDP_MLFLOW_TRACKING_ARN"
        name = self.tracking_uri.rpartition("/")[2]
        return (
            f"experiments are on the SageMaker managed MLflow tracking server {self.tracking_uri}; "
            "open its UI "
            f"with `aws sagemaker create-presigned-mlflow-tracking-server-url --tracking-server-name {name}`"
        )

    def artifact_path(self, run_id: str, path: str = "") -> str:
        from mlflow.exceptions import MlflowException

        try:
            base = self._client.get_run(run_id).info.artifact_uri.rstrip("/")
        except MlflowException:
            raise TrackingError(f"no tracked run {run_id!r}") from None
        uri = f"{base}/{path}" if path else base
        return uri.removeprefix("file://")
