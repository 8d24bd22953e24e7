"""Model registry costs (local MLflow adapter): register, approve, load, scoring overhead vs a raw booster.

Run: `python -m bench.bench_registry`. Prints one table and writes `bench/results/registry.json`.
The baseline for scoring is the same XGBoost booster loaded and called directly (no registry, no pyfunc).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench.harness import measure, print_table, write_result

FEATURES = [f"f{i}" for i in range(20)]
ROWS_TRAIN, ROWS_SCORE, WARM_REGISTRATIONS = 2_000, 100_000, 5


def _model(folder: Path) -> Path:
    import xgboost

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(ROWS_TRAIN, len(FEATURES))), columns=FEATURES)
    labels = (frame["f0"] - frame["f1"] + rng.normal(size=ROWS_TRAIN) > 0).astype(int)
    booster = xgboost.train(
        {"objective": "binary:logistic", "max_depth": 6}, xgboost.DMatrix(frame, labels), 200
    )
    folder.mkdir(parents=True)
    booster.save_model(str(folder / "model.ubj"))
    return folder


def _none(_: object) -> None:
    """Discard a result (`measure` takes extra figures, not results)."""


def main() -> None:
    from cdp.registry import Lineage
    from cdp.registry.mlflow_registry import MlflowModelRegistry
    from cdp.registry.scoring import BoosterModel
    from cdp.security.audit.keys import AuditKeys
    from cdp.security.audit.sqlite import SqliteAuditLog

    root = Path(tempfile.mkdtemp(prefix="bench-registry-"))
    model_dir = _model(root / "model")
    registry = MlflowModelRegistry(
        root / "state", SqliteAuditLog(root / "audit.sqlite", AuditKeys.generate())
    )
    lineage = Lineage("sha256:bench", tuple(FEATURES), "bench", "bench-run")
    metrics, params = {"pr_auc": 0.4, "recall": 0.6}, {"max_depth": 6, "rounds": 200}
    score_frame = pd.DataFrame(
        np.random.default_rng(1).normal(size=(ROWS_SCORE, len(FEATURES))), columns=FEATURES
    )

    cold = measure(
        "register (cold: import + new db)",
        lambda: _none(registry.register("bench", model_dir, metrics, params, lineage)),
    )

    def warm() -> dict:
        t0 = time.perf_counter()
        for _ in range(WARM_REGISTRATIONS):
            registry.register("bench", model_dir, metrics, params, lineage)
        return {"per_registration_s": (time.perf_counter() - t0) / WARM_REGISTRATIONS}

    warm_m = measure(f"register x{WARM_REGISTRATIONS} (warm)", warm)
    approve = measure(
        "approve (tag + alias + audit)", lambda: _none(registry.approve("bench", 3, "bench", "bench"))
    )
    listing = measure("list (6 versions)", lambda: {"versions": len(registry.list("bench"))})
    loaded: dict = {}
    load = measure(
        "load champion (pyfunc)", lambda: loaded.update(model=registry.load_model("bench")) or None
    )
    raw = BoosterModel.load(model_dir)
    for model in (loaded["model"], raw):  # warm both (first-call allocations) before timing
        model.predict_proba(score_frame.head(1_000))
    via_registry = measure(
        f"predict_proba {ROWS_SCORE:,} rows via pyfunc",
        lambda: _none(loaded["model"].predict_proba(score_frame)),
    )
    baseline = measure(
        f"predict_proba {ROWS_SCORE:,} rows raw booster", lambda: _none(raw.predict_proba(score_frame))
    )
    same = bool(np.allclose(loaded["model"].predict_proba(score_frame), raw.predict_proba(score_frame)))

    rows = [
        {"step": m.label, "seconds": m.seconds, "peak_mb": m.peak_memory_bytes / 2**20}
        for m in (cold, warm_m, approve, listing, load, via_registry, baseline)
    ]
    print_table("model registry (local MLflow)", rows)
    ratio = via_registry.seconds / baseline.seconds
    print(f"registry-loaded model scoring time / raw booster: {ratio:.2f}x; identical output: {same}")
    write_result(
        "registry",
        {
            "steps": rows,
            "per_registration_s": warm_m.extra["per_registration_s"],
            "scoring_ratio_vs_raw_booster": ratio,
            "identical_probabilities": same,
        },
    )


if __name__ == "__main__":
    main()
