"""Experiment tracking (MLflow): runs with params, metrics, tags and files; personal data refused before it
is logged; a failed block marks the run FAILED; reproducibility tags; `cdp mlflow ui` on 127.0.0.1 only."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from cdp.backends import Backends  # noqa: E402
from cdp.settings import get_settings  # noqa: E402
from cdp.tracking.mlflow_tracker import MlflowExperimentTracker  # noqa: E402
from cdp.tracking.port import TrackingError, experiment_name  # noqa: E402
from cdp.tracking.reproduce import lock_hash, reproducibility_tags  # noqa: E402

EMAIL = "jane.roe@example.com"
CARD = "4111111111111111"  # Luhn-valid


@pytest.fixture
def tracker():
    return Backends().experiment_tracker


def test_a_run_keeps_params_metrics_tags_and_files(tracker, tmp_path):
    note = tmp_path / "manifest.json"
    note.write_text('{"features": ["amount_cents"]}')
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    with tracker.start_run("fraud-experiments", "variant a", {"cdp.source": "test"}) as run:
        run.log_params({"max_depth": 4, "eta": 0.1})
        run.log_metrics({"pr_auc": 0.5, "not_finite": float("nan")})
        run.log_file(note, "features")
        run.log_json({"a": 1}, "evaluation/report.json")
        run.log_figure(fig, "plots/curve.png")
    (found,) = tracker.runs("fraud-experiments")
    assert found["run_id"] == run.run_id and found["status"] == "FINISHED"
    assert found["params"] == {"eta": "0.1", "max_depth": "4"}
    assert found["metrics"] == {"pr_auc": 0.5}
    assert found["tags"]["cdp.source"] == "test"
    folder = tracker.artifact_path(run.run_id)
    assert sorted(os.listdir(folder)) == ["evaluation", "features", "plots"]
    assert os.listdir(tracker.artifact_path(run.run_id, "plots")) == ["curve.png"]
    # the store is the registry's, under the home
    assert tracker.tracking_uri == f"sqlite:///{get_settings().state_dir.resolve() / 'mlflow.db'}"


def test_personal_data_is_refused_and_never_quoted(tracker, tmp_path):
    leaky = tmp_path / "notes.txt"
    leaky.write_text(f"reviewed with {EMAIL}\n")
    with tracker.start_run("fraud-experiments") as run:
        for attempt in (
            lambda: run.log_params({"reviewer": EMAIL}),
            lambda: run.set_tags({"card": CARD}),
            lambda: run.log_file(leaky),
        ):
            with pytest.raises(TrackingError) as refused:
                attempt()
            assert EMAIL not in str(refused.value) and CARD not in str(refused.value)
    (found,) = tracker.runs("fraud-experiments")
    assert "reviewer" not in found["params"] and "card" not in found["tags"]
    folder = Path(tracker.artifact_path(run.run_id))
    assert not folder.exists() or not any(folder.rglob("*"))  # the leaky file was not copied


def test_a_block_that_raises_leaves_a_failed_run(tracker):
    with pytest.raises(RuntimeError), tracker.start_run("clv-experiments"):
        raise RuntimeError("boom")
    assert [r["status"] for r in tracker.runs("clv-experiments")] == ["FAILED"]
    assert tracker.runs("never-used") == []


def test_reproducibility_tags_name_the_commit_the_lock_and_the_data():
    tags = reproducibility_tags("sha256:abc")
    assert tags["cdp.data_snapshot_sha256"] == "abc"
    assert tags["cdp.requirements_lock_sha256"] == (lock_hash() or "unknown")
    assert len(tags["cdp.requirements_lock_sha256"]) in (64, len("unknown"))
    assert tags["cdp.git_commit"]
    assert experiment_name("fraud") == "fraud-experiments"


def test_the_ui_binds_to_localhost_and_aws_points_at_the_managed_server(monkeypatch, tracker):
    command = tracker.ui_command(5000)
    assert command[:2] == ["mlflow", "ui"] and command[command.index("--host") + 1] == "127.0.0.1"
    assert command[command.index("--backend-store-uri") + 1] == tracker.tracking_uri
    arn = "arn:aws:sagemaker:eu-west-1:123456789012:mlflow-tracking-server/cdp-experiments"
    monkeypatch.setenv("CDP_BACKEND", "aws")
    monkeypatch.setenv("CDP_MLFLOW_TRACKING_ARN", arn)
    get_settings.cache_clear()
    remote = Backends().experiment_tracker
    assert remote.tracking_uri == arn and remote.ui_command(5000) is None
    assert "--tracking-server-name cdp-experiments" in remote.remote_ui_hint()
    with pytest.raises(TrackingError, match="CDP_MLFLOW_TRACKING_ARN"):
        MlflowExperimentTracker(None).runs("fraud-experiments")


def test_cdp_mlflow_ui_prints_the_command(capsys):
    from cdp.cli.mlflow import mlflow_ui

    mlflow_ui(print_only=True, port=5123)
    out = " ".join(capsys.readouterr().out.split())
    assert "mlflow ui --backend-store-uri sqlite:///" in out and "--host 127.0.0.1 --port 5123" in out
