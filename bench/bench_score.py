"""Batch scoring throughput on ONE core at demo scale, beside raw XGBoost `predict` on the same matrix.

Run: `python -m bench score [--users 100] [--rounds 200] [--home DIR]`. Prints one table, writes
`bench/results/score.json`. With `--home`, the setup is kept in DIR and reused by later runs with the same
DIR (the setup is not timed: only the scoring figures are measured again).

Setup (not timed): the demo-scale source (`bench/.cache/ibm-<users>`, generated on first use), its batch
history in a platform lake (the newest ~5% of transactions are left out, as the stream's part), the fraud
features materialised, a booster trained on the training set (`--rounds` trees, depth 6), registered as
champion.

Timed, in a fresh process pinned to one CPU before XGBoost and DuckDB start: `score_transactions` on a file
of the source's newest transactions (the part the lake does not hold: the "new file" case, features from the
lake history of the file's cards plus the file), split into its phases: reading and protecting the file,
point-in-time features (per-card aggregates of the older lake history and the lake's last 30 days before
the file, of the file's cards, read from the lake; the view's SQL seeded with them over those days and the
file), and the scoring part (encoding as training does, `booster.predict`, the decision at the threshold
and SHAP reason codes of the alerted rows). Then raw `booster.predict` on the same encoded matrix (the
ceiling). Beside them, the reference computation of the same features over the cards' whole lake history
(what batch scoring ran before), and whether both give the same values. Target: >= 100,000 rows/s for the
scoring part.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from bench.harness import print_table, write_result

TARGET_ROWS_PER_S = 100_000
DEFAULT_USERS, SEED, DEFAULT_ROUNDS = 100, 7, 200
CACHE_DIR = Path(__file__).parent / ".cache"
MODEL = "cdp-fraud"


def generated_source(users: int) -> Path:
    from cdp.synth.generator import generate

    out = CACHE_DIR / f"ibm-{users}"
    if not (out / "ground_truth" / "manifest.json").is_file():
        generate(out, users=users, seed=SEED, workers=1)
    return out


def prepare(home: Path, source: Path, rounds: int) -> dict[str, Any]:
    """The lake, features, a trained and approved champion, and the newest-transactions file to score."""
    from cdp.backends import Backends
    from cdp.batch.job import run_batch
    from cdp.registry import Lineage
    from cdp.settings import Settings
    from features.materialize import materialize_view
    from features.training import build_training_set
    from training.fraud import preprocess, train

    t0 = time.perf_counter()
    b = Backends(Settings(home=home, workers=1))
    report = run_batch(source, b)
    materialize_view(b, "fraud_card")
    manifest = build_training_set(b, "fraud_card")
    frame = b.catalog.query("SELECT * FROM fraud_training_set").to_pandas()
    parts, spec = preprocess.split_frames(frame)
    args = train.parse_hyperparameters(
        ["--num_round", str(rounds), "--min_rounds", str(rounds), "--max_depth", "6", "--nthread", "2"]
    )
    booster, summary = train.train_booster(parts["train"], parts["validation"], spec["features"], args)
    train.save_model(home / "model", booster, spec, summary, args)
    lineage = Lineage(manifest["data_snapshot_sha256"], tuple(spec["features"]), "bench", "bench")
    b.model_registry.register(MODEL, home / "model", {"alert_threshold": 0.5}, {}, lineage)
    b.model_registry.approve(MODEL, 1, "bench", "bench")
    # the stream's part of the source: rows at or after the cutoff (not in the lake)
    cutoff = report.split.cutoff
    transactions = source / "credit_card_transactions-ibm_v2.csv"
    newest = home / "newest.csv"
    with open(transactions, newline="") as f, open(newest, "w", newline="") as out:
        reader, writer = csv.reader(f), csv.writer(out, lineterminator="\n")
        writer.writerow(next(reader))
        for row in reader:
            if f"{row[2]}-{int(row[3]):02d}-{int(row[4]):02d} {row[5]}" >= f"{cutoff:%Y-%m-%d %H:%M}":
                writer.writerow(row)
    return {
        "lake_rows": report.batch_rows,
        "trees": booster.num_boosted_rounds(),
        "features": len(spec["features"]),
        "setup_seconds": round(time.perf_counter() - t0, 1),
        "file": str(newest),
    }


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def timed(home: Path, file: str) -> dict[str, Any]:
    """In a fresh process: pin to one CPU, then time each phase of `score_transactions` and raw predict."""
    cpu = sorted(os.sched_getaffinity(0))[-1]
    os.sched_setaffinity(0, {cpu})
    os.environ["OMP_NUM_THREADS"] = "1"
    import numpy as np
    import xgboost

    from cdp.backends import Backends
    from cdp.ibm.quarantine import Quarantine
    from cdp.settings import Settings
    from features.point_in_time import features_for_rows
    from features.views import EVENT_VIEWS
    from inference.batch_input import read_transactions_file
    from inference.batch_scoring import (
        model_matrix,
        registered_threshold,
        resolve_version,
        score_matrix,
        score_transactions,
    )
    from inference.loaded import load_version

    b = Backends(Settings(home=home, workers=1))
    version = resolve_version(b, MODEL, None)
    model = load_version(version, b.object_store)
    threshold = registered_threshold(version)
    phases: dict[str, tuple[float, float]] = {}

    def lap(name: str, fn: Any) -> Any:
        w, c = time.perf_counter(), _cpu()
        out = fn()
        phases[name] = (time.perf_counter() - w, _cpu() - c)
        return out

    with Quarantine(home / "bench-quarantine") as q:
        batch = lap("read_and_protect", lambda: read_transactions_file(Path(file), b, q))
    features = lap(
        "point_in_time_features", lambda: features_for_rows(b.catalog, batch.rows, cards=batch.cards)
    )
    whole = lap(
        "point_in_time_features_whole_history",
        lambda: features_for_rows(b.catalog, batch.rows, cards=batch.cards, whole_history=True),
    )
    same = same_features(features, whole)
    names = EVENT_VIEWS["fraud_card"].feature_names
    matrix = lap("encode", lambda: model_matrix(model, features.select(names)))
    scored = lap("predict_decide_reasons", lambda: score_matrix(model, matrix, threshold))
    rows = features.num_rows
    dmatrix = xgboost.DMatrix(matrix, feature_names=list(model.features), missing=np.nan)
    lap("raw_predict", lambda: model.booster.predict(dmatrix))
    lap("raw_predict_with_dmatrix", lambda: model.booster.predict(
        xgboost.DMatrix(matrix, feature_names=list(model.features), missing=np.nan)))  # fmt: skip
    total = lap("score_transactions_end_to_end", lambda: score_transactions(MODEL, None, file, backends=b))
    return {
        "pinned_cpu": cpu,
        "rows": rows,
        "alerts": int((scored.probabilities >= threshold).sum()),
        "end_to_end_rows": len(total),
        "features_equal_to_whole_history": same,
        "phases": {k: {"seconds": round(w, 3), "cpu_seconds": round(c, 3)} for k, (w, c) in phases.items()},
        "load_1m": os.getloadavg()[0],
    }


def prepared(home: Path, users: int, rounds: int) -> dict[str, Any]:
    """The setup in `home`: reused when `home/setup.json` says it was made for these users and rounds."""
    home.mkdir(parents=True, exist_ok=True)
    marker = home / "setup.json"
    if marker.is_file():
        setup = json.loads(marker.read_text())
        if setup.get("users") == users and setup.get("rounds") == rounds:
            return setup["setup"]
        shutil.rmtree(home / "home", ignore_errors=True)
    setup = prepare(home / "home", generated_source(users), rounds)
    marker.write_text(json.dumps({"users": users, "rounds": rounds, "setup": setup}))
    return setup


def same_features(got: Any, want: Any) -> bool:
    """Both feature tables hold the same rows and values (floats to a relative 1e-9, the rest exactly)."""
    import numpy as np

    if got.schema.names != want.schema.names or got.num_rows != want.num_rows:
        return False
    for name in got.schema.names:
        left, right = got[name].to_pandas(), want[name].to_pandas()
        if left.dtype.kind == "f":
            if not np.allclose(
                left.to_numpy(float), right.to_numpy(float), rtol=1e-9, atol=0, equal_nan=True
            ):
                return False
        elif (
            not left.astype(object)
            .where(left.notna(), None)
            .equals(right.astype(object).where(right.notna(), None))
        ):
            return False
    return True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench score")
    parser.add_argument("--users", type=int, default=DEFAULT_USERS)
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    parser.add_argument("--home", type=Path, default=None, help="keep (and reuse) the setup in this folder")
    args = parser.parse_args(argv or [])
    home = args.home or Path(tempfile.mkdtemp(prefix="cdp-bench-score-"))
    try:
        setup = prepared(home, args.users, args.rounds)
        with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
            run = pool.submit(timed, home / "home", setup["file"]).result()
    finally:
        if args.home is None:
            shutil.rmtree(home, ignore_errors=True)
    result = summarise(args.users, setup, run)
    print_table(f"Batch scoring on one core, {run['rows']:,} rows", result["table"])
    write_result("score", result)


def summarise(users: int, setup: dict[str, Any], run: dict[str, Any]) -> dict[str, Any]:
    """The results document: rows per wall second and per CPU second of each phase, ratios, target.

    On a shared machine the pinned core is not ours alone: rows per CPU second say what the code costs."""
    rows, p = run["rows"], run["phases"]

    def rate(names: tuple[str, ...], key: str) -> int:
        seconds = sum(p[n][key] for n in names)
        return round(rows / seconds) if seconds else 0

    paths = {
        "raw booster.predict on the encoded matrix (ceiling)": ("raw_predict",),
        "scoring part: encode + predict + decision + reasons of alerts": ("encode", "predict_decide_reasons"),
        "point-in-time features (lake aggregates + 30-day tail + seeded view SQL)": (
            "point_in_time_features",
        ),
        "point-in-time features over the whole lake history (reference, before)": (
            "point_in_time_features_whole_history",
        ),
        "read + validate + protect the file": ("read_and_protect",),
        "score_transactions end to end": ("score_transactions_end_to_end",),
    }
    table = [
        {"path": path, "rows_per_s": rate(names, "seconds"), "rows_per_cpu_s": rate(names, "cpu_seconds")}
        for path, names in paths.items()
    ]
    scoring = paths["scoring part: encode + predict + decision + reasons of alerts"]
    end = p["score_transactions_end_to_end"]["cpu_seconds"]
    return {
        "users": users,
        "setup": setup | {"file": "the source's newest transactions (the stream part, not in the lake)"},
        "model": {"trees": setup["trees"], "max_depth": 6, "features": setup["features"]},
        "timed": run,
        "table": table,
        "ratio_scoring_to_raw_predict": {
            key: round(rate(scoring, key) / max(1, rate(("raw_predict",), key)), 4)
            for key in ("seconds", "cpu_seconds")
        },
        "target_scoring_rows_per_s": TARGET_ROWS_PER_S,
        "met_per_wall_second": rate(scoring, "seconds") >= TARGET_ROWS_PER_S,
        "met_per_cpu_second": rate(scoring, "cpu_seconds") >= TARGET_ROWS_PER_S,
        "cpu_share_of_end_to_end": {
            k: round(v["cpu_seconds"] / end, 3)
            for k, v in p.items()
            if k in ("read_and_protect", "point_in_time_features", "encode", "predict_decide_reasons")
        },
        "note": "point-in-time features: the lake gives per-card aggregates of the file's cards' history "
        "older than 30 days before the file, and those 30 days' events; the view's SQL, seeded with the "
        "aggregates (the incremental refresh's seeding), runs over those days and the file. The reference "
        "runs the view over the cards' whole lake history (1.2M lake rows for 65k new rows at 100 users); "
        "`features_equal_to_whole_history` says both gave the same values. CPU seconds are the figures: "
        "the machine is shared, wall seconds vary with its load",
    }


if __name__ == "__main__":
    main()
