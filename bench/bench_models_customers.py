"""CLV and segmentation measured against the generator's hidden truth, outside the pipelines.

Run: `python -m bench.bench_models_customers [users]`. It generates a lake, trains both models with the
real step scripts (`training/clv/`, `training/segmentation/`) under the step-script contract, then compares:
- CLV on the test customers: Spearman and MAE against the realised 12-month spend (the test label) of the
  model, of the last-12-months heuristic and of the generator's expected value (the oracle);
- segmentation: adjusted Rand index of the segments against the generator's personas, and between two
  retrains with different seeds (stability).
The "clv" and "segmentation" keys are merged into `bench/results/models.json` (other keys are kept).

When the feature tables `clv_training_set` / `segmentation_training_set` are not in the catalog, stand-in
tables with the same columns are computed here from the `transactions` and `customers` tables.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from bench.harness import RESULTS_DIR

if TYPE_CHECKING:
    from cdp.backends import Backends

REPO_ROOT = Path(__file__).resolve().parent.parent
TRAINING_DIR = REPO_ROOT / "training"
CLV_TABLE = "clv_training_set"
SEGMENTATION_TABLE = "segmentation_training_set"
MODELS_RESULTS = RESULTS_DIR / "models.json"
DEFAULT_CUTOFF = date(2019, 3, 1)

# Spending groups whose share of spend describes a customer's mix (names as in features/mcc_groups.csv).
MIX_GROUPS = ("grocery", "dining", "fuel", "transport", "retail", "travel", "health", "entertainment")


# -- stand-in feature tables -----------------------------------------------------------------------------
def _mcc_group_sql() -> str:
    from features.mcc import mcc_group_sql

    return mcc_group_sql("mcc")


def _history_aggregates(window_start: str, window_end: str, prefix: str = "") -> list[str]:
    """Per-customer aggregates of the genuine purchases in [window_start, window_end)."""
    inside = f"ts >= {window_start} AND ts < {window_end}"
    spend = f"sum(amount) FILTER (WHERE {inside})"
    count = f"count(*) FILTER (WHERE {inside})"
    columns = [
        f"coalesce({count}, 0) AS {prefix}frequency_12m",
        f"coalesce({spend} / nullif({count}, 0), 0) AS {prefix}avg_amount_12m",
        f"coalesce(count(*) FILTER (WHERE {inside} AND amount < 0) / nullif({count}, 0), 0) AS "
        f"{prefix}refund_share_12m",
        f"coalesce(count(*) FILTER (WHERE {inside} AND channel = 'online') / nullif({count}, 0), 0) AS "
        f"{prefix}online_share_12m",
        f"coalesce(count(*) FILTER (WHERE {inside} AND is_foreign) / nullif({count}, 0), 0) AS "
        f"{prefix}foreign_share_12m",
        f"coalesce(count(*) FILTER (WHERE {inside} AND (hour(ts) >= 19 OR hour(ts) < 2))"
        f" / nullif({count}, 0), 0) AS {prefix}evening_share_12m",
        f"coalesce(count(*) FILTER (WHERE {inside} AND hour(ts) >= 6 AND hour(ts) < 12) / nullif({count}, 0),"
        f" 0) AS {prefix}morning_share_12m",
        f"coalesce(count(DISTINCT date_trunc('month', ts)) FILTER (WHERE {inside}), 0) AS "
        f"{prefix}active_months_12m",
    ]
    positive = f"sum(amount) FILTER (WHERE {inside} AND amount > 0)"
    for group in MIX_GROUPS:
        columns.append(
            f"coalesce(sum(amount) FILTER (WHERE {inside} AND amount > 0 AND mcc_group = '{group}') / "
            f"nullif({positive}, 0), 0) AS {prefix}share_{group}_12m"
        )
    return columns


def _genuine_purchases_sql() -> str:
    return f"""
        SELECT user_token, ts, amount_cents / 100.0 AS amount, channel,
               coalesce(length(merchant_state) > 2, false) AS is_foreign, {_mcc_group_sql()} AS mcc_group
        FROM transactions WHERE NOT is_fraud"""


def clv_stand_in_sql(cutoff: date = DEFAULT_CUTOFF, train_years: int = 4) -> str:
    """One row per customer and as-of date: history features before it, spend in the 12 months from it.

    Test rows are as of `cutoff`; validation rows a year earlier; train rows the `train_years` years before.
    """
    points = [
        (date(cutoff.year, cutoff.month, 1), "test"),
        (date(cutoff.year - 1, cutoff.month, 1), "validation"),
    ]
    points += [(date(cutoff.year - 1 - k, cutoff.month, 1), "train") for k in range(1, train_years + 1)]
    values = ", ".join(f"(DATE '{d.isoformat()}', '{s}')" for d, s in points)
    month = "INTERVAL 1 MONTH"
    quarters = []
    for q in range(4):
        lo, hi = f"p.as_of - {3 * (q + 1)} * {month}", f"p.as_of - {3 * q} * {month}"
        quarters.append(
            f"coalesce(sum(amount) FILTER (WHERE ts >= {lo} AND ts < {hi}), 0) AS spend_q{q + 1}_back"
        )
    return f"""
    WITH points(as_of, split) AS (VALUES {values}),
    tx AS ({_genuine_purchases_sql()}),
    monthly AS (
        SELECT tx.user_token, p.as_of, date_diff('month', p.as_of - 12 * {month}, ts) AS idx,
            sum(amount) AS spend
        FROM tx CROSS JOIN points AS p
        WHERE ts >= p.as_of - 12 * {month} AND ts < p.as_of
        GROUP BY ALL
    ),
    trend AS (
        SELECT user_token, as_of,
            greatest(least(coalesce(regr_slope(ln(greatest(spend, 1)), idx), 0), 0.2), -0.2) AS slope,
            coalesce(regr_intercept(ln(greatest(spend, 1)), idx), ln(greatest(avg(spend), 1))) AS intercept
        FROM monthly GROUP BY ALL
    ),
    history AS (
    SELECT tx.user_token, p.as_of, p.split,
        coalesce(sum(amount) FILTER (WHERE ts >= p.as_of), 0) AS future_spend_12m,
        coalesce(sum(amount) FILTER (WHERE ts >= p.as_of - 12 * {month} AND ts < p.as_of), 0)
            AS heuristic_last_12m,
        coalesce(sum(amount) FILTER (WHERE ts >= p.as_of - 24 * {month} AND ts < p.as_of - 12 * {month}), 0)
            AS spend_prev_12m,
        {", ".join(quarters)},
        date_diff('day', max(ts) FILTER (WHERE ts < p.as_of), CAST(p.as_of AS TIMESTAMP)) AS recency_days,
        date_diff('day', min(ts), CAST(p.as_of AS TIMESTAMP)) AS tenure_days,
        {", ".join(_history_aggregates(f"p.as_of - 12 * {month}", "p.as_of"))}
    FROM tx CROSS JOIN points AS p
    WHERE tx.ts < p.as_of + 12 * {month}
    GROUP BY tx.user_token, p.as_of, p.split
    HAVING min(ts) < p.as_of - 3 * {month}
    )
    SELECT h.*,
        12 * t.slope AS trend_slope_12m,
        CASE WHEN abs(t.slope) < 1e-6 THEN 12 * exp(t.intercept)
             ELSE exp(t.intercept + 12 * t.slope) * (exp(12 * t.slope) - 1) / (exp(t.slope) - 1) END
            AS trend_forecast_12m,
        ln((h.heuristic_last_12m + 100) / (h.spend_prev_12m + 100)) AS growth_12m,
        ln((h.spend_q1_back + h.spend_q2_back + 100) / (h.spend_q3_back + h.spend_q4_back + 100))
            AS growth_half_year
    FROM history AS h LEFT JOIN trend AS t USING (user_token, as_of)
    ORDER BY h.as_of, h.user_token"""


def segmentation_stand_in_sql(as_of: date = DEFAULT_CUTOFF) -> str:
    """One row per customer: behaviour over the 12 months before `as_of` and the age at the midpoint of
    the birth-year band (bands widen when the customers table is generalised)."""
    start, end = f"TIMESTAMP '{date(as_of.year - 1, as_of.month, 1)}'", f"TIMESTAMP '{as_of}'"
    return f"""
    WITH tx AS ({_genuine_purchases_sql()}),
    behaviour AS (
        SELECT user_token,
            coalesce(sum(amount) FILTER (WHERE ts >= {start} AND ts < {end}), 0) AS monetary_12m,
            date_diff('day', max(ts) FILTER (WHERE ts < {end}), {end}) AS recency_days,
            date_diff('day', min(ts), {end}) AS tenure_days,
            {", ".join(_history_aggregates(start, end))}
        FROM tx WHERE ts < {end}
        GROUP BY user_token
        HAVING count(*) FILTER (WHERE ts >= {start}) > 0
    )
    SELECT b.*, {as_of.year} - (CAST(split_part(c.birth_year_band, '-', 1) AS INTEGER)
        + CAST(split_part(c.birth_year_band, '-', 2) AS INTEGER)) / 2 AS age_years
    FROM behaviour AS b JOIN customers AS c USING (user_token)
    ORDER BY user_token"""


def write_lake_table(backends: Backends, name: str, table: pa.Table) -> str:
    """Replace the lake table `name` with `table` (one Parquet file) and register it in the catalog."""
    from cdp.catalog.port import TableInfo

    location = f"s3://{backends.settings.lake_bucket}/features/{name}/"
    for info in list(backends.object_store.list(location)):
        backends.object_store.delete(info.uri)
    path = Path(tempfile.mkdtemp(prefix="cdp-table-")) / "part-0.parquet"
    pq.write_table(table, path)
    backends.object_store.put_file(location + "part-0.parquet", path)
    shutil.rmtree(path.parent, ignore_errors=True)
    backends.catalog.register_table(TableInfo(name=name, location=location, schema=table.schema))
    return location


def ensure_customer_tables(backends: Backends, cutoff: date = DEFAULT_CUTOFF) -> dict[str, str]:
    """Make sure both feature tables exist: the real ones when registered, else the stand-ins."""
    known = {t.name for t in backends.catalog.tables()}
    origin: dict[str, str] = {}
    for name, sql in (
        (CLV_TABLE, clv_stand_in_sql(cutoff)),
        (SEGMENTATION_TABLE, segmentation_stand_in_sql(cutoff)),
    ):
        if name in known:
            origin[name] = "feature table"
            continue
        write_lake_table(backends, name, backends.catalog.query(sql))
        origin[name] = "stand-in"
    return origin


# -- running the step scripts under the contract -------------------------------------------------------
def _run(command: list[str], env: Mapping[str, str], cwd: Path) -> None:
    completed = subprocess.run(
        command, env={**os.environ, **env}, cwd=cwd, capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        raise RuntimeError(
            f"{Path(command[1]).name} failed ({completed.returncode}): {completed.stderr[-2000:]}"
        )


def run_step_scripts(
    scripts_dir: Path, features: pa.Table, work_dir: Path, hyperparameters: Mapping[str, Any] | None = None
) -> Path:
    """preprocess -> train -> evaluate of one model folder, with the container paths under `work_dir`.

    The same layout the pipeline executor gives the scripts: the feature query result in
    `processing/input/features/`, splits as training channels, `SM_MODEL_DIR` tarred into
    `processing/input/model/model.tar.gz`. Returns the model folder (the evaluation is beside it).
    """
    python = sys.executable
    pre = work_dir / "preprocess" / "opt_ml"
    (pre / "processing/input/features").mkdir(parents=True, exist_ok=True)
    pq.write_table(features, pre / "processing/input/features/query-result.parquet")
    _run([python, str(scripts_dir / "preprocess.py")], {"CDP_OPT_ML_ROOT": str(pre)}, pre)

    train = work_dir / "train" / "opt_ml"
    model_dir = train / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    hps = {k: v for k, v in (hyperparameters or {}).items()}
    arguments = [x for k, v in hps.items() for x in (f"--{k}", str(v))]
    env = {
        "SM_MODEL_DIR": str(model_dir),
        "SM_OUTPUT_DATA_DIR": str(train / "output/data"),
        "SM_CHANNEL_TRAIN": str(pre / "processing/output/train"),
        "SM_CHANNEL_VALIDATION": str(pre / "processing/output/validation"),
        "SM_HPS": json.dumps(hps),
    }
    _run([python, str(scripts_dir / "train.py"), *arguments], env, scripts_dir)

    evaluate = work_dir / "evaluate" / "opt_ml"
    model_input = evaluate / "processing/input/model"
    model_input.mkdir(parents=True, exist_ok=True)
    with tarfile.open(model_input / "model.tar.gz", "w:gz") as tar:
        for path in sorted(model_dir.rglob("*")):
            tar.add(path, arcname=path.relative_to(model_dir).as_posix(), recursive=False)
    shutil.copytree(pre / "processing/output/test", evaluate / "processing/input/test")
    _run([python, str(scripts_dir / "evaluate.py")], {"CDP_OPT_ML_ROOT": str(evaluate)}, evaluate)
    return model_dir


def evaluation_of(model_dir: Path) -> dict[str, float]:
    """The flattened `evaluation.json` written for the model trained in `model_dir`."""
    path = model_dir.parent.parent.parent / "evaluate/opt_ml/processing/output/evaluation/evaluation.json"
    return {k: float(v["value"]) for k, v in json.loads(path.read_text())["metrics"].items()}


# -- comparisons against the generator's truth -------------------------------------------------------------
def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = pd.Series(a).rank().to_numpy(), pd.Series(b).rank().to_numpy()
    return float(np.corrcoef(ra, rb)[0, 1])


def ground_truth(backends: Backends, source_dir: Path) -> pd.DataFrame:
    """The generator's per-customer truth keyed by the lake's user token."""
    users = pd.read_parquet(source_dir / "ground_truth" / "users.parquet")
    users["user_token"] = [backends.protector.user_token(int(u)) for u in users["user"]]
    return users.set_index("user_token")


def clv_comparison(backends: Backends, truth: pd.DataFrame, work_dir: Path) -> dict[str, Any]:
    """Model, heuristic and oracle against the realised spend (the test label) on the same customers."""
    from cdp.registry.scoring import BoosterModel

    table = backends.catalog.query(f"SELECT * FROM {CLV_TABLE}")
    model_dir = run_step_scripts(TRAINING_DIR / "clv", table, work_dir / "clv")
    label = json.loads((model_dir / "regression.json").read_text())["label"]
    dollars = 0.01 if label == "label" else 1.0  # the feature table's `label` is in cents
    test = table.to_pandas()
    test = test[(test["split"] == "test") & test["user_token"].isin(truth.index)].reset_index(drop=True)
    realised = test[label].to_numpy(float) * dollars
    predictions = {
        "model": BoosterModel.load(model_dir).predict(test) * dollars,
        "heuristic": test["heuristic_last_12m"].to_numpy(float) * dollars,
        "oracle": truth.loc[test["user_token"], "clv_expected"].to_numpy(float),
    }
    scores = {
        name: {"mae": float(np.mean(np.abs(p - realised))), "spearman": spearman(p, realised)}
        for name, p in predictions.items()
    }
    return {
        "test_customers": len(test),
        "realised_mean": float(realised.mean()),
        **scores,
        "mae_reduction_vs_heuristic": 1 - scores["model"]["mae"] / scores["heuristic"]["mae"],
        "spearman_ratio_to_oracle": scores["model"]["spearman"] / scores["oracle"]["spearman"],
        "pipeline_evaluation": evaluation_of(model_dir),
        "targets": {"mae_reduction_vs_heuristic": ">= 0.15", "spearman_ratio_to_oracle": ">= 0.9"},
    }


def segmentation_comparison(
    backends: Backends, truth: pd.DataFrame, work_dir: Path, seeds: Sequence[int] = (7, 8), max_k: int = 6
) -> dict[str, Any]:
    """Adjusted Rand index against the personas and between retrains with different seeds."""
    from sklearn.metrics import adjusted_rand_score

    from cdp.registry.centroid import CentroidModel

    table = backends.catalog.query(f"SELECT * FROM {SEGMENTATION_TABLE}")
    customers = table.to_pandas()
    customers = customers[customers["user_token"].isin(truth.index)].reset_index(drop=True)
    personas = truth.loc[customers["user_token"], "persona"].to_numpy()
    runs = []
    for seed in seeds:
        model_dir = run_step_scripts(
            TRAINING_DIR / "segmentation",
            table,
            work_dir / f"segmentation-{seed}",
            {"n_clusters": max_k, "seed": seed},
        )
        model = CentroidModel.load(model_dir)
        runs.append((seed, model, model.predict(customers), evaluation_of(model_dir)))
    seed, model, ids, evaluation = runs[0]
    crosstab = pd.crosstab(pd.Series(ids, name="segment"), pd.Series(personas, name="persona"))
    return {
        "customers": len(customers),
        "k": int(evaluation["k"]),
        "k_criterion": f"silhouette over k = 3..{max_k}",
        "silhouette_holdout": evaluation["silhouette"],
        "segments": {name: int((ids == i).sum()) for i, name in enumerate(model.segment_names)},
        "dominant_persona": {
            model.segment_names[int(i)]: str(crosstab.loc[i].idxmax()) for i in crosstab.index
        },
        "ari_vs_personas": float(adjusted_rand_score(personas, ids)),
        "stability_ari": float(adjusted_rand_score(runs[0][2], runs[1][2])) if len(runs) > 1 else None,
        "same_names_across_seeds": all(r[1].segment_names == model.segment_names for r in runs),
        "seeds": list(seeds),
        "targets": {"ari_vs_personas": ">= 0.7", "stability_ari": ">= 0.9"},
    }


def clv_and_segmentation_results(
    backends: Backends, source_dir: Path, work_dir: Path, cutoff: date = DEFAULT_CUTOFF
) -> dict[str, Any]:
    """Both comparisons on the lake of `backends`, generated from `source_dir` (its ground truth is read)."""
    origin = ensure_customer_tables(backends, cutoff)
    truth = ground_truth(backends, source_dir)
    t0 = time.perf_counter()
    clv = clv_comparison(backends, truth, work_dir)
    t1 = time.perf_counter()
    segmentation = segmentation_comparison(backends, truth, work_dir)
    t2 = time.perf_counter()
    return {
        "clv": {"feature_table": origin[CLV_TABLE], "seconds": round(t1 - t0, 1), **clv},
        "segmentation": {
            "feature_table": origin[SEGMENTATION_TABLE],
            "seconds": round(t2 - t1, 1),
            **segmentation,
        },
    }


def merge_results(results: Mapping[str, Any], path: Path = MODELS_RESULTS) -> Path:
    """Write the given keys into `models.json`, keeping every other key (e.g. "fraud")."""
    from bench.harness import write_result

    kept: dict[str, Any] = {}
    if path.is_file():
        kept = {
            k: v
            for k, v in json.loads(path.read_text()).items()
            if k not in ("benchmark", "when", "machine", *results)
        }
    return write_result(path.stem, {**kept, **results})


def main(argv: Sequence[str] | None = None) -> None:
    from bench.harness import print_table
    from cdp.backends import Backends
    from cdp.batch.job import run_batch
    from cdp.settings import Settings
    from cdp.streaming.lake_sink import consume
    from cdp.streaming.produce import produce
    from cdp.synth.generator import generate

    args = list(argv or [])  # `python -m bench` calls main() with no arguments
    users = int(args[0]) if args else int(os.environ.get("CDP_BENCH_USERS", 400))
    root = Path(tempfile.mkdtemp(prefix="bench-customers-"))
    try:
        source = root / "ibm"
        generate(source, users=users, seed=7, start=date(2012, 1, 1))
        backends = Backends(Settings(home=root / "home"))
        run_batch(source, backends)
        produce(source, backends)
        consume(backends)
        from features.customer_tables import build_customer_tables

        build_customer_tables(backends, DEFAULT_CUTOFF)  # the real feature tables, not stand-ins
        results = clv_and_segmentation_results(backends, source, root / "work")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    results["clv"]["data"] = results["segmentation"]["data"] = {
        "generated_users": users,
        "seed": 7,
        "history_from": "2012-01-01",
        "cutoff": DEFAULT_CUTOFF.isoformat(),
    }
    clv = results["clv"]
    print_table(
        "CLV vs realised 12-month spend (test customers)",
        [
            {"predictor": n, "mae": clv[n]["mae"], "spearman": clv[n]["spearman"]}
            for n in ("model", "heuristic", "oracle")
        ],
    )
    seg = results["segmentation"]
    print_table(
        "Segmentation",
        [{k: seg[k] for k in ("k", "silhouette_holdout", "ari_vs_personas", "stability_ari")}],
    )
    print(f"wrote {merge_results(results)}")


if __name__ == "__main__":
    main()
