"""The notebook API (`app.notebook.Platform`) on a small sandbox platform: one test per function.

The sandbox (generated data through batch and features, identities, a fraud champion trained by the
pipeline service and approved by a model approver) is built once for the module; each test acts as the
sandbox's data scientist."""

from __future__ import annotations

import os
from datetime import date

import pandas as pd
import pytest

from cdp.catalog.port import CatalogError
from cdp.registry.port import PENDING
from cdp.security.errors import AccessDenied, NotAuthenticated
from cdp.settings import get_settings

pytestmark = pytest.mark.slow

LEAKY_SQL = (
    "SELECT txn_id, ts, "
    "sum(CASE WHEN is_fraud THEN 1 ELSE 0 END) OVER (PARTITION BY card_token) AS card_frauds_total, "
    "count(*) OVER (PARTITION BY card_token ORDER BY ts, event_seq "
    "ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prior_events "
    "FROM transactions"
)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    from app.notebook.sandbox import SMALL_DATA_SETTINGS, start_sandbox

    with pytest.MonkeyPatch.context() as mp:  # whatever the sandbox sets in the environment is undone
        for name in ("CDP_HOME", "CDP_IDENTITY_FILE", *SMALL_DATA_SETTINGS):
            mp.setenv(name, "")
        sandbox = start_sandbox(users=6, seed=3, champion=True, root=tmp_path_factory.mktemp("sandbox"))
        env = {k: os.environ[k] for k in ("CDP_HOME", "CDP_IDENTITY_FILE", *SMALL_DATA_SETTINGS)}
    get_settings.cache_clear()
    return sandbox, env


@pytest.fixture
def p(sandbox, monkeypatch):
    from app.notebook import Platform

    _, env = sandbox
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    return Platform.from_env()


@pytest.fixture(scope="module")
def trained(sandbox):
    """A fraud variant trained in the notebook process (shared by the tests that need one)."""
    from app.notebook import Platform

    _, env = sandbox
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        get_settings.cache_clear()
        platform = Platform.from_env()
        training_set = platform.training_set("fraud")
        run = platform.train(
            training_set, hyperparameters={"max_depth": 4, "num_round": 60, "min_rounds": 20}
        )
    get_settings.cache_clear()
    return training_set, run


def test_from_env_acts_as_the_callers_identity_and_refuses_others(p, sandbox, monkeypatch):
    from app.notebook import Platform

    assert (p.caller.id, p.caller.role) == ("data-scientist-1", "data-scientist")
    monkeypatch.delenv("CDP_IDENTITY_FILE")
    get_settings.cache_clear()
    with pytest.raises(NotAuthenticated):
        Platform.from_env()
    monkeypatch.setenv("CDP_IDENTITY_FILE", str(sandbox[0].identities["model-approver-1"]))
    get_settings.cache_clear()
    with pytest.raises(AccessDenied, match="may not sql"):
        Platform.from_env()  # an approver's role may not read the lake


def test_sql_reads_through_the_analyst_surface_only(p):
    counts = p.sql("SELECT count(*) AS n, count(DISTINCT card_token) AS cards FROM transactions")
    assert isinstance(counts, pd.DataFrame) and counts["n"][0] > 10_000 and counts["cards"][0] > 1
    assert {"transactions", "cards", "customers", "fraud_training_set"} <= set(p.tables())
    with pytest.raises(CatalogError):
        p.sql("SELECT * FROM read_text('state/keyring.json')")
    with pytest.raises(CatalogError):
        p.sql("COPY transactions TO 'out.csv'")


def test_training_set_is_point_in_time_and_split_by_time(p):
    ts = p.training_set("fraud")
    rows = ts.rows
    assert rows["train"] > rows["test"] > 0 and rows["validation"] > 0
    assert ts.split("train")["ts"].max() < ts.split("validation")["ts"].min()
    assert ts.split("validation")["ts"].max() < ts.split("test")["ts"].min()
    assert set(ts.features) <= set(ts.frame.columns) and ts.label in ts.frame.columns
    manifest = ts.manifest()
    assert len(manifest["data_snapshot_sha256"]) == 64 and manifest["months"]["test"]
    narrower = p.training_set("fraud", start=date(2005, 1, 1))
    assert narrower.frame["ts"].min() >= pd.Timestamp(2005, 1, 1)
    with pytest.raises(ValueError, match="unknown model"):
        p.training_set("churn")


def test_check_point_in_time_passes_the_views_and_catches_a_leak(p):
    from features.views import EVENT_VIEWS, view_sql

    clean = p.check_point_in_time(view_sql("fraud_card"), EVENT_VIEWS["fraud_card"].feature_names)
    assert clean.leaking == [] and all(f.rows_checked > 0 for f in clean.findings)
    report = p.check_point_in_time(LEAKY_SQL, ["card_frauds_total", "prior_events"])
    assert report.leaking == ["card_frauds_total"]
    assert "LEAK" in report.summary() and "card_frauds_total" in report.summary()


def test_models_list_and_load(p):
    listed = p.models.list()
    champion = listed[listed["champion"]]
    assert list(champion["model"]) == ["cdp-fraud"] and "metric.pr_auc" in listed.columns
    loaded = p.models.load("cdp-fraud")
    assert loaded.version == int(champion["version"].iloc[0]) and loaded.kind == "classification"
    assert p.models.load("cdp-fraud", version=loaded.version).version == loaded.version
    with pytest.raises(LookupError):
        p.models.load("cdp-fraud", alias="staging")


def test_train_tracks_the_run_with_what_reproduces_it(p, trained):
    from cdp.backends import Backends

    training_set, run = trained
    assert 0 < run.metrics["pr_auc"] <= 1 and run.params["max_depth"] == "4"
    assert (run.model_dir / "model.ubj").is_file() and run.registered_name == "cdp-fraud"
    tracker = Backends().experiment_tracker
    found = next(r for r in tracker.runs("fraud-experiments") if r["run_id"] == run.run_id)
    assert found["tags"]["cdp.source"] == "notebook" and found["tags"]["cdp.run_by"] == "data-scientist-1"
    assert found["tags"]["cdp.data_snapshot_sha256"] == training_set.data_snapshot_hash
    assert found["tags"]["cdp.requirements_lock_sha256"] and found["tags"]["cdp.git_commit"]
    assert found["metrics"]["pr_auc"] == pytest.approx(run.metrics["pr_auc"])
    folder = tracker.artifact_path(run.run_id)
    assert {"plots", "features", "model", "evaluation"} <= set(os.listdir(folder))
    assert "shap_summary.png" in os.listdir(os.path.join(folder, "plots"))
    assert run.load().booster is not None


def test_runs_lists_notebook_and_pipeline_runs(p, trained):
    from cdp.backends import Backends

    runs = p.runs("fraud")
    assert {"notebook", "run-pipeline --local"} <= set(runs["source"])  # the sandbox's champion's run
    assert "metric.pr_auc" in runs.columns and runs["status"].eq("FINISHED").all()
    tracker = Backends().experiment_tracker
    pipeline = next(r for r in tracker.runs("fraud-experiments") if r["tags"]["cdp.source"] != "notebook")
    assert pipeline["tags"]["cdp.registered_model"] == "cdp-fraud" and pipeline["tags"]["cdp.execution_id"]
    assert len(pipeline["tags"]["cdp.data_snapshot_sha256"]) == 64 and pipeline["params"]["max_depth"]
    assert pipeline["params"]["feature_query"] == "SELECT * FROM fraud_training_set"
    assert "pr_auc" in pipeline["metrics"]
    folder = tracker.artifact_path(pipeline["run_id"])
    assert "feature_spec.json" in os.listdir(os.path.join(folder, "features"))
    assert "pr_curve.png" in os.listdir(os.path.join(folder, "plots"))


def test_track_opens_a_run_of_your_own(p):
    with p.track("fraud", run_name="threshold study", data_snapshot_hash="abc") as run:
        run.log_metrics({"recall_at_0_5": 0.4})
    found = next(r for r in p.runs("fraud").itertuples() if r.run_id == run.run_id)
    assert found.name == "threshold study" and found.source == "notebook"


def test_score_gives_a_score_decision_and_reasons_per_row(p, trained):
    training_set, _ = trained
    test = training_set.split("test")
    scored = p.score("cdp-fraud", None, test)
    assert len(scored) == len(test) and list(scored["txn_id"]) == list(test["txn_id"])
    assert scored["score"].between(0, 1).all() and scored["alert"].dtype == bool
    assert scored.attrs["rows_in"] == scored.attrs["scored"] + scored.attrs["quarantined"]


def test_evaluate_on_a_labelled_file(p, trained, tmp_path):
    training_set, _ = trained
    labelled = tmp_path / "labelled.parquet"
    training_set.split("test").to_parquet(labelled)
    report = p.evaluate("cdp-fraud", None, labelled)
    assert report["rows"] == training_set.rows["test"]
    assert 0 < report["metrics"]["pr_auc"] <= 1 and 0 <= report["metrics"]["recall_at_threshold"] <= 1
    with pytest.raises(ValueError, match="no fraud labels"):
        p.evaluate("cdp-fraud", None, training_set.split("test").drop(columns=[training_set.label]))


def test_compare_uses_the_gates_holdout_and_metrics(p, trained):
    _, run = trained
    comparison = p.compare(run)
    assert comparison.no_decision is None, comparison.no_decision
    assert comparison.champion is not None and comparison.primary == "pr_auc"
    assert set(comparison.metrics["metric"]) == {"pr_auc", "recall_at_budget", "brier", "ece"}
    assert comparison.metrics[["candidate", "champion"]].notna().all().all()
    assert "beats_champion_pr_auc" in comparison.gates and comparison.holdout["rows"] >= 200
    champion = int(p.models.list().query("champion")["version"].iloc[0])
    same = p.compare(champion)  # the champion against itself cannot beat itself by the margin
    assert same.gates["beats_champion_pr_auc"].passed is False


def test_register_records_the_caller_and_the_runs_lineage(p, trained):
    _, run = trained
    version = p.register(run)
    assert version.status == PENDING and version.registered_by == "data-scientist-1"
    assert version.lineage.pipeline_run_id.endswith(run.run_id) and version.params["source"] == "notebook"
    assert version.metrics["pr_auc"] == pytest.approx(run.metrics["pr_auc"])


def test_gate_is_a_dry_run(p, trained):
    decision = p.gate("cdp-fraud")
    assert decision.dry_run and decision.outcome in ("challenger", "rejected", "no-decision")
    assert p.models.list().query("status == 'PendingManualApproval'").shape[0] >= 1  # nothing changed


def test_run_pipeline_runs_as_the_caller(p):
    run = p.run_pipeline("fraud", parameters={"NegativeSampleRate": "1"}, progress=None)
    assert run.status == "Succeeded" and run.registered_version is not None
    assert set(run.steps["step"]) >= {"Preprocess", "Train", "Evaluate", "Register"}
    assert p.models.list().query(f"version == {run.registered_version}")["registered_by"].iloc[0] == (
        "data-scientist-1"
    )


def test_drift_report_needs_scored_data(p):
    from monitoring.drift.sources import DriftSourceError

    with pytest.raises(DriftSourceError, match="nothing has been scored"):
        p.drift_report("cdp-fraud")
