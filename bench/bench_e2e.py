"""`python -m bench e2e --users=N`: the demo's own path (`run_demo`) measured stage by stage, each stage
beside its anchor measured in the same run on the same data.

The demo runs in this process on a fresh CDP_HOME in a temporary folder, exactly as `cdp demo` does
(`run_demo` with a stage hook). Per stage: success or the error, wall and CPU seconds, peak RSS of the
process tree and of its largest process (`bench.e2e_sampler`). Right after a stage, its anchor (what the
same work costs done the plainest way, on the same data), in a child process of its own so that its memory
is never counted as the demo's:

- generate: copying the generated files (the same bytes written);
- batch: a DuckDB `COPY` of the transactions CSV to Parquet (2 threads);
- features: a plain DuckDB GROUP BY per card over the same lake rows, written to Parquet (2 threads);
- pipeline fraud: `xgboost.train` on the Train step's own input (its train channel), as many rounds as it
  trained, 2 threads;
- stream scoring 1: the champion booster's raw predict (and predict + SHAP) on the rows the stream handler
  scored, encoded as the handler does.

Writes `bench/results/e2e_full.json` (users, rows, machine facts, load average, stages, totals, the
acceptance checks: every stage succeeded, peak RSS per process <= 8 GB, total <= 30 min) and prints a
table. `--users` defaults to 2,000 (the real data set's size); `--keep-home` keeps the platform home.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.e2e_sampler import StageRecord, TreeSampler, one_line_error
from bench.harness import print_table, write_result

RESULT_NAME = "e2e_full"
DEFAULT_USERS = 2000
THREADS = 2
TARGETS = {"peak_rss_process_gb": 8.0, "total_seconds": 30 * 60}


# -- anchors: the plainest way to do a stage's work, on the same data --------------------------------
def anchor_copy_files(settings: Any) -> dict[str, Any]:
    """Write the same bytes `generate` wrote: copy every generated file (read from the page cache)."""
    out = Path(tempfile.mkdtemp(prefix="e2e-copy-", dir=settings.home))
    try:
        files = [p for p in settings.data_dir.rglob("*") if p.is_file()]
        for path in files:
            target = out / path.relative_to(settings.data_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
        return {
            "what": "copy the generated files",
            "files": len(files),
            "bytes": sum(p.stat().st_size for p in files),
        }
    finally:
        shutil.rmtree(out, ignore_errors=True)


def _duckdb() -> Any:
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET threads TO {THREADS}")
    return con


def _quoted(path: Path | str) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def anchor_duckdb_copy(settings: Any) -> dict[str, Any]:
    """DuckDB `COPY` of the generated transactions CSV to one Parquet file."""
    from cdp.ibm.schema import TRANSACTIONS_FILE

    csv = settings.data_dir / TRANSACTIONS_FILE
    out = settings.home / "e2e-anchor-copy.parquet"
    con = _duckdb()
    try:
        con.execute(
            f"COPY (SELECT * FROM read_csv({_quoted(csv)}, header = true)) TO {_quoted(out)} (FORMAT parquet)"
        )
        rows = con.execute(f"SELECT count(*) FROM read_parquet({_quoted(out)})").fetchone()[0]
    finally:
        con.close()
        out.unlink(missing_ok=True)
    return {"what": "duckdb COPY transactions csv -> parquet", "rows": rows}


def lake_transactions_glob(settings: Any) -> str:
    """The lake's transactions Parquet files, as a glob (the local object store keeps them as files)."""
    from cdp.backends import Backends
    from cdp.lake.tables import TRANSACTIONS

    folder = Backends(settings).object_store.local_path(TRANSACTIONS.location(settings.lake_bucket))
    if folder is None:
        raise RuntimeError("the lake is not on local files")
    return str(folder / "**" / "*.parquet")


def anchor_duckdb_group_by(settings: Any) -> dict[str, Any]:
    """A plain GROUP BY per card over the lake's transactions (count, sum, mean, max), written to Parquet."""
    out = settings.home / "e2e-anchor-groupby.parquet"
    con = _duckdb()
    try:
        source = f"read_parquet({_quoted(lake_transactions_glob(settings))}, hive_partitioning = true)"
        rows = con.execute(f"SELECT count(*) FROM {source}").fetchone()[0]
        con.execute(
            f"COPY (SELECT card_token, count(*) AS n, sum(amount_cents) AS amount_sum, "
            f"avg(amount_cents) AS amount_mean, max(amount_cents) AS amount_max, max(ts) AS last_ts "
            f"FROM {source} GROUP BY card_token) TO {_quoted(out)} (FORMAT parquet)"
        )
        groups = con.execute(f"SELECT count(*) FROM read_parquet({_quoted(out)})").fetchone()[0]
    finally:
        con.close()
        out.unlink(missing_ok=True)
    return {"what": "duckdb GROUP BY card over the lake's transactions", "rows": rows, "groups": groups}


def latest_run(settings: Any, pipeline_word: str) -> tuple[Any, Path]:
    """The newest local pipeline run whose name holds `pipeline_word`: (run record, run folder)."""
    from pipelines.local.record import RunRecord

    runs = []
    for path in (settings.state_dir / "pipelines" / "runs").glob("*/run.json"):
        record = RunRecord.load(path)
        if pipeline_word in record.pipeline_name:
            runs.append((record.started_at or "", record, path.parent))
    if not runs:
        raise RuntimeError(f"no local run of a {pipeline_word} pipeline")
    _, record, folder = max(runs, key=lambda r: r[0])
    return record, folder


def anchor_xgboost_train(settings: Any) -> dict[str, Any]:
    """`xgboost.train` (hist, depth 6, eta 0.1, 2 threads) on the fraud Train step's train channel, as many
    rounds as the step trained (from its log), beside that step's own seconds."""
    import numpy as np
    import pandas as pd
    import xgboost as xgb

    from training.fraud.preprocess import SPEC_FILE
    from training.fraud.train import LABEL

    record, folder = latest_run(settings, "fraud")
    step = next(s for s in record.steps if s.type == "Training")
    channel = folder / step.name / "opt_ml" / "input" / "data" / "train"
    features = json.loads((channel / SPEC_FILE).read_text())["features"]
    log = Path(step.log).read_text(errors="replace") if step.log and Path(step.log).is_file() else ""
    trained = re.search(r"best_iteration=\d+ of (\d+)", log)
    rounds = int(trained.group(1)) if trained else 100
    started = time.perf_counter()
    frame = pd.concat([pd.read_parquet(f) for f in sorted(channel.glob("*.parquet"))], ignore_index=True)
    matrix = xgb.DMatrix(frame[features].to_numpy(np.float32), label=frame[LABEL].to_numpy(np.float32))
    read_seconds = time.perf_counter() - started
    params = {"objective": "binary:logistic", "tree_method": "hist", "max_depth": 6, "eta": 0.1}
    xgb.train({**params, "nthread": THREADS}, matrix, num_boost_round=rounds)
    return {
        "what": f"xgboost.train on the Train step's input ({rounds} rounds)",
        "rows": len(frame),
        "features": len(features),
        "rounds": rounds,
        "read_and_matrix_seconds": round(read_seconds, 2),
        "work_seconds": round(time.perf_counter() - started, 3),
        # the part of the stage this anchor matches: the Train step (the pipeline also preprocesses,
        # evaluates, gates and registers)
        "stage_part": f"Train step {step.name!r}",
        "stage_part_seconds": step.duration_seconds,
    }


def anchor_raw_predict(settings: Any) -> dict[str, Any]:
    """The champion booster's predict, then predict + SHAP contributions, on the rows the stream handler
    scored (their features as the handler stored them, encoded as it does), in one matrix."""
    import numpy as np
    import xgboost as xgb

    from cdp.backends import Backends
    from inference.fraud_scoring import decision_threshold, encode_rows
    from inference.loaded import load_version

    b = Backends(settings)
    model = load_version(b.model_registry.champion("cdp-fraud"), b.object_store)
    model.booster.set_param({"nthread": 1})  # the handler scores on one thread
    stored = b.catalog.query("SELECT features FROM transactions_scored")["features"].to_pylist()
    rows = [json.loads(f) for f in stored]
    started = time.perf_counter()
    x = encode_rows(model, rows)
    encode_seconds = time.perf_counter() - started
    matrix = xgb.DMatrix(x, feature_names=list(model.features))
    started = time.perf_counter()
    model.booster.predict(matrix)
    predict_seconds = time.perf_counter() - started
    started = time.perf_counter()
    scores = model.booster.predict(matrix)
    alerted = np.flatnonzero(scores >= decision_threshold(model, None))
    model.booster.predict(matrix.slice(alerted), pred_contribs=True)  # the handler explains its alerts only
    shap_seconds = time.perf_counter() - started
    return {
        "what": "raw booster predict on the scored rows + SHAP of the alerted ones, one thread",
        "alerted_rows": int(len(alerted)),
        "rows": len(rows),
        "encode_seconds": round(encode_seconds, 3),
        "predict_seconds": round(predict_seconds, 3),
        "shap_seconds": round(shap_seconds, 3),
        "work_seconds": round(encode_seconds + predict_seconds + shap_seconds, 3),
    }


# stage -> (short label, the anchor). An anchor returns its figures; `work_seconds`, when given, is the
# anchored work alone (without finding or loading its inputs), and `stage_part_seconds` the part of the
# stage it matches; the stage's `x_anchor` divides the one by the other (else wall by wall).
ANCHORS: dict[str, tuple[str, Callable[[Any], dict[str, Any]]]] = {
    "generate": ("copy files", anchor_copy_files),
    "batch": ("duckdb COPY", anchor_duckdb_copy),
    "features": ("duckdb GROUP BY", anchor_duckdb_group_by),
    "pipeline fraud": ("xgboost.train", anchor_xgboost_train),
    "stream scoring 1": ("predict+SHAP", anchor_raw_predict),
}


# -- the run -------------------------------------------------------------------------------------------
def measure_anchor(
    sampler: TreeSampler, name: str, anchor: Callable[[Any], dict[str, Any]], settings: Any
) -> dict[str, Any]:
    """Run `anchor(settings)` (a module-level function) as its own measured stage, kept out of the stage
    list, in a child process of its own so that its memory never counts as the demo's (the demo process's
    RSS and kernel high-water mark stay its own); its figures, or its error."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    extra: dict[str, Any] = {}
    spawn = get_context("spawn")
    try:
        with sampler.stage(f"anchor: {name}"), ProcessPoolExecutor(1, mp_context=spawn) as pool:
            extra = pool.submit(anchor, settings).result()
    except Exception:  # noqa: BLE001 - an anchor that fails is reported (its error), the demo goes on
        pass
    finally:
        record = sampler.records.pop()
    return {**record.to_dict(), **extra}


@contextmanager
def _platform_home(users: int, keep: bool, parent: str | None) -> Iterator[Path]:
    """A fresh CDP_HOME for the demo (the settings are read again from the environment)."""
    from cdp.settings import get_settings

    saved = {k: os.environ.get(k) for k in ("CDP_HOME", "CDP_USERS", "CDP_IDENTITY_FILE")}
    home = Path(tempfile.mkdtemp(prefix="cdp-e2e-", dir=parent))
    os.environ.update({"CDP_HOME": str(home / "home"), "CDP_USERS": str(users)})
    os.environ.pop("CDP_IDENTITY_FILE", None)
    get_settings.cache_clear()
    try:
        yield home / "home"
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        get_settings.cache_clear()
        if keep:
            print(f"platform home kept: {home / 'home'}")
        else:
            shutil.rmtree(home, ignore_errors=True)


def run_measured_demo(sampler: TreeSampler) -> str | None:
    """`run_demo` with every stage measured and each anchor right after its stage; the error that stopped
    it (one line), or None."""
    from app.demo import run_demo
    from cdp.filemodes import make_private
    from cdp.settings import get_settings

    @contextmanager
    def hook(name: str) -> Iterator[None]:
        with sampler.stage(name):
            yield
        if name in ANCHORS:
            settings = get_settings()
            record = sampler.records[-1]
            label, anchor = ANCHORS[name]
            record.anchor = {"label": label, **measure_anchor(sampler, name, anchor, settings)}

    make_private(get_settings())
    try:
        run_demo(stage_hook=hook)
    except Exception as error:  # noqa: BLE001 - the run is reported, whatever stopped it
        return one_line_error(error)
    return None


def summarise(users: int, records: list[StageRecord], wall: float, cpu: float, stopped: str | None,
              rows: int | None, anchors: float = 0.0) -> dict[str, Any]:  # fmt: skip
    """The result file's content (without the machine facts `write_result` adds)."""
    peak_process = max((r.peak_rss_process_gb for r in records), default=0.0)
    for r in records:
        anchor = r.anchor
        anchored = (anchor or {}).get("work_seconds") or (anchor or {}).get("wall_seconds")
        if anchored:
            r.extra["x_anchor"] = round((anchor.get("stage_part_seconds") or r.wall_seconds) / anchored, 2)
    all_ok = stopped is None and all(r.ok for r in records)
    return {
        "users": users,
        "rows": rows,
        "stages": [r.to_dict() for r in records],
        "total": {
            "wall_seconds": round(wall, 1),
            "anchor_wall_seconds_included": round(anchors, 1),
            "demo_wall_seconds": round(wall - anchors, 1),  # what `cdp demo` itself takes
            "cpu_seconds": round(cpu, 1),
            "peak_rss_process_gb": peak_process,
            "peak_rss_tree_gb": max((r.peak_rss_tree_gb for r in records), default=0.0),
            "stopped_by": stopped,
        },
        "acceptance": {
            "every_stage_succeeded": all_ok,
            "peak_rss_per_process_within_8gb": peak_process <= TARGETS["peak_rss_process_gb"],
            "total_within_30min": wall - anchors <= TARGETS["total_seconds"],
        },
        "targets": TARGETS,
    }


def table_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One printable row per stage: the figures, then its anchor's."""
    rows = []
    for s in result["stages"]:
        anchor = s.get("anchor") or {}
        rows.append({
            "stage": s["stage"], "ok": "yes" if s["ok"] else "FAILED",
            "wall s": s["wall_seconds"], "cpu s": s["cpu_seconds"],
            "peak tree GB": s["peak_rss_tree_gb"], "peak proc GB": s["peak_rss_process_gb"],
            "anchor": anchor.get("label", ""),
            "anchor s": anchor.get("work_seconds") or anchor.get("wall_seconds", ""),
            "x anchor": s.get("x_anchor", ""),
        })  # fmt: skip
    return rows


def generated_rows(settings: Any) -> int | None:
    manifest = settings.ground_truth_dir / "manifest.json"
    if not manifest.is_file():
        return None
    return json.loads(manifest.read_text()).get("rows", {}).get("transactions")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench e2e")
    parser.add_argument("--users", type=int, default=DEFAULT_USERS, help="demo scale (2,000 = full size)")
    parser.add_argument("--keep-home", action="store_true", help="keep the platform home for inspection")
    parser.add_argument("--dir", default=None, help="where the temporary platform home goes")
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between memory samples")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from cdp.settings import get_settings

    args = parse_args(argv if argv is not None else [])
    load_start = [round(v, 2) for v in os.getloadavg()]
    with _platform_home(args.users, args.keep_home, args.dir), TreeSampler(args.interval) as sampler:
        started, cpu_start = time.perf_counter(), os.times()
        stopped = run_measured_demo(sampler)
        wall = time.perf_counter() - started
        end = os.times()
        cpu = (end.user + end.system + end.children_user + end.children_system) - (
            cpu_start.user + cpu_start.system + cpu_start.children_user + cpu_start.children_system
        )
        rows = generated_rows(get_settings())
    anchors = sum((r.anchor or {}).get("wall_seconds", 0) for r in sampler.records)
    result = summarise(args.users, sampler.records, wall, cpu, stopped, rows, anchors)
    result["load_average_at_start"] = load_start
    result["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    result["method"] = (
        "run_demo in one process on a fresh CDP_HOME, each stage measured by a stage hook; peak RSS polled "
        f"every {args.interval}s over the process tree plus the kernel's ru_maxrss high-water marks; "
        "CPU from getrusage (self + reaped children) plus live children's CPU; each anchor measured right "
        "after its stage, on the same data, included in the total wall time and left out of "
        "`demo_wall_seconds` (what the 30-minute check uses)"
    )
    print_table(f"the demo's path, stage by stage ({args.users:,} users, {rows or 0:,} transactions)",
                table_rows(result))  # fmt: skip
    path = write_result(RESULT_NAME, result)
    verdict = (
        "every stage succeeded" if result["acceptance"]["every_stage_succeeded"] else f"STOPPED: {stopped}"
    )
    peak = result["total"]["peak_rss_process_gb"]
    demo = result["total"]["demo_wall_seconds"]
    print(f"total {wall:,.0f} s wall (the demo's own {demo:,.0f} s, anchors aside), {cpu:,.0f} s CPU, "
          f"peak process {peak:.2f} GB; {verdict} -> {path}")  # fmt: skip
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
