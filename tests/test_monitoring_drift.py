"""The drift job, PSI and delayed-label performance, on a small platform: a fraud champion trained by the
real local pipeline executor (tiny XGBoost step scripts over a generated feature table) and a
`transactions_scored` table written with the champion's scores.

Checks: no drift when the window is drawn from the reference distribution; an injected shift (amounts x3,
velocity up) is detected per column and in the score PSI; the report validates against `cdp.drift/1`, the
HTML exists, and the leak scan finds nothing in the report folder; clear errors without a champion or
without the snapshot; unlabelled months are skipped by the performance measure.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cdp.backends import Backends
from cdp.compliance.leakscan import LeakScanner
from cdp.lake.writer import LakeWriter
from cdp.settings import Settings
from inference.streaming.scored import TRANSACTIONS_SCORED, scored_row, to_table
from monitoring.drift import DriftSourceError, run_drift_job, validate_report
from monitoring.drift.psi import categorical_psi, numeric_psi
from monitoring.performance import average_precision, performance_of
from tests.identity_support import issue_services
from tests.pipeline_support import SCRIPTS, generate_lake

FEATURES = ["amount", "velocity_24h", "is_new_merchant"]
STABLE = (datetime(2020, 1, 1), datetime(2020, 3, 1))  # labelled months of the stable window
SHIFTED_START = datetime(2020, 4, 1)

TRAIN_SCRIPT = '''"""Tiny XGBoost fraud model for the monitoring tests."""
import json, os
from pathlib import Path
import pandas as pd
import xgboost as xgb
FEATURES = ["amount", "velocity_24h", "is_new_merchant"]
train = pd.concat(pd.read_parquet(p) for p in Path(os.environ["SM_CHANNEL_TRAIN"]).glob("*.parquet"))
data = xgb.DMatrix(train[FEATURES].astype("float32"), label=train["is_fraud"], feature_names=FEATURES)
params = {"objective": "binary:logistic", "max_depth": 3, "eta": 0.3, "seed": 1, "nthread": 1}
booster = xgb.train(params, data, num_boost_round=30)
booster.save_model(str(Path(os.environ["SM_MODEL_DIR"], "model.ubj")))
spec = {"features": FEATURES, "one_hot": {}, "label": "is_fraud"}
Path(os.environ["SM_MODEL_DIR"], "features.json").write_text(json.dumps(spec))
'''

EVALUATE_SCRIPT = '''"""PR-AUC of the tiny model and of an amount-only baseline on the test split."""
import json, os, tarfile
from pathlib import Path
import numpy as np
import pandas as pd
import xgboost as xgb
OPT_ML = Path(os.environ.get("CDP_OPT_ML_ROOT", "/opt/ml"))
model_dir = OPT_ML / "processing/input/model"
with tarfile.open(model_dir / "model.tar.gz") as tar:
    tar.extractall(model_dir, filter="data")
booster = xgb.Booster()
booster.load_model(str(model_dir / "model.ubj"))
test = pd.concat(pd.read_parquet(p) for p in (OPT_ML / "processing/input/test").glob("*.parquet"))
y = test["is_fraud"].to_numpy(int)
score = booster.predict(xgb.DMatrix(test[booster.feature_names].astype("float32")))
def ap(labels, scores):
    hits = labels[np.argsort(-scores, kind="stable")]
    return float((np.cumsum(hits) / np.arange(1, len(hits) + 1) * hits).sum() / max(hits.sum(), 1))
pr_auc, baseline = ap(y, score), ap(y, test["amount"].to_numpy(float))
metrics = {"pr_auc": pr_auc, "baseline_pr_auc": baseline, "pr_auc_lift_over_baseline": pr_auc / baseline,
           "alert_threshold": 0.5}
out = OPT_ML / "processing/output/evaluation"
out.mkdir(parents=True, exist_ok=True)
(out / "evaluation.json").write_text(json.dumps({"metrics": {k: {"value": v} for k, v in metrics.items()}}))
'''


def write_scripts(folder: Path) -> Path:
    """Step scripts: the test preprocess, and a train / evaluate that produce a real XGBoost booster."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(SCRIPTS / "fraud" / "preprocess.py", folder / "preprocess.py")
    (folder / "train.py").write_text(TRAIN_SCRIPT)
    (folder / "evaluate.py").write_text(EVALUATE_SCRIPT)
    return folder


def pipeline_runner(scripts: Path):
    """`run_local_pipeline` over the test scripts (the action's injectable runner)."""
    from pipelines.run import run_local_pipeline

    def run(pipeline: str, backends: Backends, registered_by: str | None = None):
        return run_local_pipeline(pipeline, backends, scripts_dir=scripts, registered_by=registered_by)

    return run


def feature_rows(rng: np.random.Generator, n: int, amount_factor: float = 1.0, velocity_shift: float = 0.0):
    """Features drawn like the training table's (`tests.pipeline_support`), optionally shifted."""
    amount = rng.lognormal(3.5, 1.0, n) * amount_factor
    velocity = rng.poisson(2, n).astype(float) + velocity_shift
    new_merchant = rng.integers(0, 2, n).astype(float)
    logit = -5 + 0.8 * velocity + 1.5 * new_merchant + 0.002 * amount
    fraud = rng.random(n) < 1 / (1 + np.exp(-logit))
    frame = pd.DataFrame({"amount": amount, "velocity_24h": velocity, "is_new_merchant": new_merchant})
    return frame, fraud


def write_scored(
    backends: Backends,
    start: datetime,
    days: int,
    n: int,
    seed: int,
    *,
    labelled: bool = True,
    amount_factor: float = 1.0,
    velocity_shift: float = 0.0,
    shuffle_labels: bool = False,
) -> int:
    """Score `n` transactions spread over `days` from `start` with the champion; land them in the lake.

    `shuffle_labels`: the frauds no longer follow the features (the same inputs, a new fraud pattern the
    champion cannot see): concept drift without feature drift."""
    rng = np.random.default_rng(seed)
    features, fraud = feature_rows(rng, n, amount_factor, velocity_shift)
    if shuffle_labels:
        fraud = rng.permutation(fraud)
    champion = backends.model_registry.champion("cdp-fraud")
    model = backends.model_registry.load_model("cdp-fraud")
    probabilities = np.asarray(model.predict_proba(features[list(model.features)].astype("float32")))
    rows = []
    for i in range(n):
        ts = start + timedelta(seconds=int(i * days * 86400 / n))
        transaction = {
            "txn_id": f"t{seed}-{i}",
            "user_token": f"usr_{i % 40:04d}",
            "card_token": f"crd_{i % 60:04d}",
            "ts": ts,
            "amount_cents": int(features["amount"].iloc[i] * 100),
            "channel": "chip",
            "merchant_id": 3,
            "merchant_city": "Reno",
            "merchant_state": "NV",
            "zip": "89501",
            "mcc": 5411,
            "errors": None,
            "is_fraud": bool(fraud[i]) if labelled else False,
            "event_seq": i + 1,
        }
        row_features = {k: float(features[k].iloc[i]) for k in FEATURES}
        rows.append(
            scored_row(
                transaction,
                row_features,
                float(probabilities[i]),
                0.5,
                [],
                "cdp-fraud",
                champion.version,
                datetime(2026, 1, 1),
            )
        )
    bucket = backends.settings.lake_bucket
    LakeWriter(backends.object_store, bucket).write_chunk(
        TRANSACTIONS_SCORED, to_table(rows, TRANSACTIONS_SCORED), f"test-{seed}"
    )
    backends.catalog.register_table(TRANSACTIONS_SCORED.info(bucket))
    return n


def build_platform(root: Path) -> tuple[Backends, Path]:
    """A platform whose fraud champion (v1) was trained by the local pipeline, with stable scored data."""
    backends = Backends(Settings(home=root / "home", seed=7))
    issue_services(backends)  # the loop's actions run as the pipeline and promotion-gate services
    generate_lake(backends.object_store, backends.catalog)
    scripts = write_scripts(root / "scripts")
    record, _ = pipeline_runner(scripts)("fraud", backends, registered_by="ml-pipeline")
    assert record.status == "Succeeded", record.failure_reason
    backends.model_registry.approve("cdp-fraud", 1, "tester", "first champion")
    write_scored(backends, STABLE[0], 31, 1500, seed=21)
    write_scored(backends, datetime(2020, 2, 1), 29, 1500, seed=22)
    write_scored(backends, datetime(2020, 3, 1), 31, 1500, seed=23, labelled=False)  # labels not in yet
    return backends, scripts


_SHARED: dict[str, tuple[Backends, Path]] = {}


def shared_platform(tmp_path_factory) -> tuple[Backends, Path]:
    """One platform per test process (building it runs a pipeline): the drift tests read it, the loop
    tests (which run after them) move it forward."""
    if "platform" not in _SHARED:
        _SHARED["platform"] = build_platform(tmp_path_factory.mktemp("monitoring"))
    return _SHARED["platform"]


@pytest.fixture(scope="module")
def platform(tmp_path_factory) -> tuple[Backends, Path]:
    return shared_platform(tmp_path_factory)


def test_psi_is_near_zero_for_the_same_distribution_and_large_for_a_shift():
    rng = np.random.default_rng(3)
    base = rng.normal(0, 1, 5000)
    assert numeric_psi(base, rng.normal(0, 1, 5000)) < 0.02
    assert numeric_psi(base, rng.normal(1, 1, 5000)) > 0.25
    assert categorical_psi(["a", "b"] * 500, ["a", "b"] * 500) == pytest.approx(0.0)
    assert categorical_psi(["a", "b"] * 500, ["a"] * 900 + ["b"] * 100) > 0.25


@pytest.mark.slow  # the shared platform takes ~45 s to build (a pipeline run)
def test_window_from_the_reference_distribution_shows_no_drift(platform):
    backends, _ = platform
    result = run_drift_job(backends, "cdp-fraud", window=STABLE, sample_size=2000, seed=5)
    report = result.report
    assert {c.column for c in report.columns} == set(FEATURES)
    assert report.share_drifted == 0.0, [(c.column, c.statistic) for c in report.columns]
    assert report.score_psi is not None and report.score_psi < 0.1
    assert report.window.rows == 3000 and report.sample_sizes == {"reference": 2000, "current": 2000}
    assert report.champion_version == 1
    assert report.reference.pipeline_run_id.startswith("cdp-fraud") or "/" in report.reference.pipeline_run_id


@pytest.mark.slow  # the shared platform takes ~45 s to build (a pipeline run)
def test_injected_shift_is_detected_and_the_report_is_valid_and_clean(platform, tmp_path):
    backends, _ = platform
    write_scored(backends, SHIFTED_START, 20, 2000, seed=31, amount_factor=3.0, velocity_shift=3.0)
    try:
        result = run_drift_job(backends, "cdp-fraud", sample_size=2000, seed=5)
    finally:
        for uri in list(
            backends.object_store.list(TRANSACTIONS_SCORED.location(backends.settings.lake_bucket))
        ):
            if uri.uri.endswith("part-test-31.parquet"):
                backends.object_store.delete(uri.uri)
    report = result.report
    drifted = {c.column for c in report.columns if c.drifted}
    assert {"amount", "velocity_24h"} <= drifted and "is_new_merchant" not in drifted
    assert report.share_drifted == pytest.approx(2 / 3)
    assert report.score_psi > 0.25 and report.score.drifted
    assert report.window.start.startswith("2020-03-2")  # default window: 30 days up to the newest event
    assert {(c.kind, c.method, c.threshold) for c in report.columns} == {("numerical", "psi", 0.25)}

    doc = json.loads(result.json_path.read_text())
    validate_report(doc)
    assert doc["schema_version"] == "cdp.drift/1" and doc["score_psi"] == pytest.approx(report.score_psi)
    html = result.html_path.read_text()
    assert result.html_path.stat().st_size > 10_000 and "drawDashboard(" in html
    library = result.folder.parent.parent / "_assets" / f"{report.engine.replace(' ', '-')}.js"
    assert f'src="../../_assets/{library.name}"' in html and library.stat().st_size > 500_000
    assert result.folder.parent == backends.settings.home / "monitoring" / "reports" / "cdp-fraud"
    known = [f"usr_{i:04d}" for i in range(40)]  # tokens must not be monitored columns either
    assert LeakScanner(known_values=known).scan([result.folder]) == []


@pytest.mark.slow  # the shared platform takes ~45 s to build (a pipeline run)
def test_report_schema_rejects_a_report_without_columns(platform):
    import jsonschema

    backends, _ = platform
    result = run_drift_job(backends, "cdp-fraud", window=STABLE, sample_size=500, seed=1)
    doc = json.loads(result.json_path.read_text())
    doc["columns"] = []
    with pytest.raises(jsonschema.ValidationError):
        validate_report(doc)


@pytest.mark.slow  # the shared platform takes ~45 s to build (a pipeline run)
def test_clear_errors_without_champion_or_snapshot(platform, tmp_path):
    empty = Backends(Settings(home=tmp_path / "empty"))
    with pytest.raises(DriftSourceError, match="no champion"):
        run_drift_job(empty, "cdp-fraud")
    backends, _ = platform
    champion = backends.model_registry.champion("cdp-fraud")
    execution = champion.lineage.pipeline_run_id.rpartition("/")[2]
    run_json = backends.settings.state_dir / "pipelines" / "runs" / execution / "run.json"
    saved = run_json.read_text()
    run_json.unlink()
    try:
        with pytest.raises(DriftSourceError, match="gone"):
            run_drift_job(backends, "cdp-fraud", window=STABLE)
    finally:
        run_json.write_text(saved)


@pytest.mark.slow  # the shared platform takes ~45 s to build (a pipeline run)
def test_performance_skips_unlabelled_months(platform):
    from monitoring.performance import labelled_performance

    backends, _ = platform
    result = labelled_performance(backends, "cdp-fraud")
    assert [w.window for w in result.windows] == ["2020-01", "2020-02"]
    assert [(s.window, s.rows) for s in result.skipped] == [("2020-03", 1500)]
    assert 0.2 < result.pooled.pr_auc <= 1.0 and result.pooled.rows == 3000


def test_performance_metrics_on_a_small_frame():
    labels = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 0])
    scores = np.array([0.9, 0.8, 0.7, 0.1, 0.2, 0.3, 0.05, 0.01, 0.02, 0.03])
    assert average_precision(labels, scores) == pytest.approx((1 + 2 / 3) / 2)
    frame = pd.DataFrame(
        {
            "ts": pd.to_datetime(["2019-11-01"] * 10 + ["2019-12-01"] * 4),
            "fraud_probability": np.r_[scores, [0.5, 0.4, 0.3, 0.2]],
            "is_fraud": np.r_[labels, [0, 0, 0, 0]].astype(bool),
            "is_alert": np.r_[scores >= 0.75, [False] * 4],
        }
    )
    result = performance_of(frame, "cdp-fraud", budget=0.1)
    (window,) = result.windows
    assert window.recall_at_budget == 0.5 and window.alert_recall == 0.5 and window.alerts == 2
    assert [s.window for s in result.skipped] == ["2019-12"]


def test_evidently_engine_tests_categories_with_psi(tmp_path):
    from monitoring.drift.engine import ColumnTest, EvidentlyEngine

    rng = np.random.default_rng(9)
    reference = pd.DataFrame({"channel": rng.choice(["chip", "swipe", "online"], 1000, p=[0.5, 0.4, 0.1])})
    same = pd.DataFrame({"channel": rng.choice(["chip", "swipe", "online"], 1000, p=[0.5, 0.4, 0.1])})
    moved = pd.DataFrame({"channel": rng.choice(["chip", "swipe", "online"], 1000, p=[0.2, 0.2, 0.6])})
    tests = [ColumnTest("channel", "categorical", "psi", 0.2)]
    engine = EvidentlyEngine()
    (stable,) = engine.compare(reference, same, tests)
    (shifted,) = engine.compare(reference, moved, tests, tmp_path / "report.html")
    assert not stable.drifted and stable.statistic < 0.05
    assert shifted.drifted and shifted.statistic == pytest.approx(
        categorical_psi(reference["channel"], moved["channel"]), rel=0.05
    )
    assert (tmp_path / "report.html").is_file() and engine.name.startswith("evidently 0.7")


def test_a_column_empty_on_one_side_is_not_compared():
    from monitoring.drift.job import monitored_columns

    reference = pd.DataFrame({"amount": [1.0, 2.0], "amount_mean_1h": [3.0, None], "txn_id": ["a", "b"]})
    current = pd.DataFrame({"amount": [5.0, 6.0], "amount_mean_1h": [None, None], "txn_id": ["c", "d"]})
    features = ("amount", "amount_mean_1h")
    assert monitored_columns(features, reference, current) == ["amount"]
    assert monitored_columns(features, reference, reference) == ["amount", "amount_mean_1h"]
