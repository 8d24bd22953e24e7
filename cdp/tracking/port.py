"""The experiment-tracking port: runs in named experiments, each with params, metrics, tags and files.

One adapter, `cdp.tracking.mlflow_tracker.MlflowExperimentTracker`, serves both backends: MLflow's SQLite
store under the platform home here, a SageMaker managed MLflow tracking server (its ARN is the tracking
URI) in AWS. `Backends.experiment_tracker` picks the URI. Everything logged is checked for personal data
first (`cdp.tracking.guard`): a run is a place data scientists read and copy from.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol, runtime_checkable


class TrackingError(RuntimeError):
    """A run could not be logged as asked (no tracking server configured, personal data in a value or
    file, an unknown run). The message is one line and never quotes a refused value."""


@runtime_checkable
class TrackedRun(Protocol):
    """One run being logged."""

    run_id: str
    experiment: str

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Parameters (values kept as text)."""
        ...

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Numeric metrics (non-finite values are skipped)."""
        ...

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Tags (values kept as text)."""
        ...

    def log_file(self, path: Path, folder: str | None = None) -> None:
        """A local file or folder, under `folder` in the run's artifacts."""
        ...

    def log_json(self, document: Any, name: str) -> None:
        """A JSON document as the artifact `name` (e.g. `features/manifest.json`)."""
        ...

    def log_figure(self, figure: Any, name: str) -> None:
        """A matplotlib figure as the image artifact `name` (e.g. `plots/shap_summary.png`)."""
        ...


@runtime_checkable
class ExperimentTracker(Protocol):
    """Opens runs in named experiments and finds them again."""

    tracking_uri: str

    def start_run(
        self, experiment: str, run_name: str | None = None, tags: Mapping[str, Any] | None = None
    ) -> AbstractContextManager[TrackedRun]:
        """A run in `experiment` (created on first use), finished when the block ends (FAILED if it
        raised)."""
        ...

    def runs(self, experiment: str) -> list[dict[str, Any]]:
        """The experiment's runs, newest first: run id, name, status, params, metrics, tags."""
        ...

    def artifact_path(self, run_id: str, path: str = "") -> str:
        """Where a run's artifact is (a local folder here, an s3:// URI in AWS)."""
        ...

    def ui_command(self, port: int) -> list[str] | None:
        """The command that serves the experiments' UI on 127.0.0.1, or None for a remote server."""
        ...

    def remote_ui_hint(self) -> str:
        """One line saying how to open a remote tracking server's UI."""
        ...


def experiment_name(pipeline: str) -> str:
    """The experiment a model's training runs go to, from a notebook or `run-pipeline --local` alike
    (`fraud-experiments`, ...)."""
    return f"{pipeline}-experiments"
