"""Fraud train (Training step, script mode): gradient-boosted trees on the fraud features.

Reads the train and validation splits written by preprocess.py (`SM_CHANNEL_TRAIN`,
`SM_CHANNEL_VALIDATION`) and the feature spec beside the train rows. `xgb.train` with the `hist` tree
method, early stopping on the validation PR-AUC (`aucpr`), the class imbalance handled by
`scale_pos_weight` on the training loss only (validation and test keep every row), a fixed seed.
Hyperparameters arrive as `--name value` arguments.

When preprocess.py down-sampled the genuine train rows, their `sample_weight` (1 / share kept) weights
the loss, and "auto" `scale_pos_weight` counts the genuine rows by weight: the model sees the class
balance of the full data, so down-sampling changes the variance, not the probabilities.

Memory: each split becomes a `QuantileDMatrix` fed chunk by chunk (`CHUNK_ROWS` rows) from its Parquet
files through a `DataIter`, so the float32 matrix is never whole in memory: XGBoost keeps only the
quantised values. The validation matrix reuses the train matrix's bins (`ref`). Only validation PR-AUC
is evaluated each round. At 1.76M train rows this peaks at 1.1 GB where the in-memory frame + DMatrix
took 2.8 GB, with the same model (identical test metrics); at 19.6M rows it still takes 7.0 GB, which is
why preprocess.py down-samples genuine rows past 4M by default (2.3 GB; bench/results/fraud_training.json).

Several instances (`TrainingInstanceCount` > 1): the train channel is sharded by S3 key (each host gets
some of preprocess.py's train files), validation is replicated. The hosts of SageMaker's resource config
(`SM_HOSTS`, `SM_CURRENT_HOST`) form one XGBoost collective: the first host starts the tracker, every host
joins it, and the same chunked `QuantileDMatrix` code runs on each host's shards: XGBoost merges the
quantile sketches and sums the gradient histograms across hosts, so every host grows the same trees. The
class counts behind `scale_pos_weight` are summed across hosts; only the first host writes the model.
With one host nothing of this runs. `CDP_TRAINING_HOST_ADDRESSES` (JSON `{host: address}`) maps host
names to addresses where the names do not resolve (tests on one machine); `CDP_TRAINING_TRACKER_PORT`
sets the tracker's port (default 9099).

Writes into `SM_MODEL_DIR`: `model.ubj` (the booster cut at its best iteration, feature names set) and
`features.json` (the ordered feature list, the one-hot encoding, the label, the training summary).

Imports only numpy, pandas and xgboost (the training image has them; project code is not shipped).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import socket
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import xgboost as xgb
from xgboost import collective as xgb_collective
from xgboost.tracker import RabitTracker

LABEL = "is_fraud"
WEIGHT = "sample_weight"  # preprocess.py's down-sampling weight (train split)
CHUNK_ROWS = 262_144  # rows handed to the quantile sketch at a time
SPEC_FILE = "feature_spec.json"
MODEL_FILE = "model.ubj"
FEATURES_FILE = "features.json"
HOST_ADDRESSES_ENV = "CDP_TRAINING_HOST_ADDRESSES"  # {host: address} where host names do not resolve
TRACKER_PORT_ENV = "CDP_TRAINING_TRACKER_PORT"
DEFAULT_TRACKER_PORT = 9099
CONNECT_RETRIES = 30  # a worker may start before the first host's tracker listens


# -- the hosts of a training job ------------------------------------------------------------------------


@dataclass(frozen=True)
class Cluster:
    """The training job's hosts (SageMaker's resource config) and where the first host's tracker listens."""

    hosts: tuple[str, ...]
    current: str
    tracker_address: str = ""
    tracker_port: int = DEFAULT_TRACKER_PORT

    @property
    def size(self) -> int:
        return len(self.hosts)

    @property
    def rank(self) -> int:
        return self.hosts.index(self.current)

    @property
    def is_leader(self) -> bool:
        return self.rank == 0


def _resource_config(env: Mapping[str, str]) -> dict[str, Any]:
    folder = Path(env.get("SM_INPUT_CONFIG_DIR", "/opt/ml/input/config"))
    path = folder / "resourceconfig.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def cluster_from_env(env: Mapping[str, str] | None = None) -> Cluster:
    """The hosts from `SM_HOSTS` / `SM_CURRENT_HOST` (else resourceconfig.json; one host without either)."""
    env = os.environ if env is None else env
    config = _resource_config(env) if "SM_HOSTS" not in env else {}
    hosts = tuple(json.loads(env["SM_HOSTS"]) if "SM_HOSTS" in env else config.get("hosts", ["algo-1"]))
    current = env.get("SM_CURRENT_HOST") or config.get("current_host") or hosts[0]
    if current not in hosts:
        raise ValueError(f"current host {current!r} is not one of the job's hosts")
    if len(hosts) == 1:
        return Cluster(hosts=hosts, current=current)
    addresses = json.loads(env.get(HOST_ADDRESSES_ENV) or "{}")
    leader = hosts[0]
    address = addresses.get(leader) or socket.gethostbyname(leader)
    port = int(env.get(TRACKER_PORT_ENV) or DEFAULT_TRACKER_PORT)
    return Cluster(hosts=hosts, current=current, tracker_address=address, tracker_port=port)


@contextmanager
def collective(cluster: Cluster) -> Iterator[None]:
    """Inside: this host is one worker of the job's XGBoost collective (nothing with one host). The
    first host runs the tracker; ranks follow the order of the hosts (`sortby="task"`)."""
    if cluster.size == 1:
        yield
        return
    tracker = None
    if cluster.is_leader:
        tracker = RabitTracker(
            n_workers=cluster.size, host_ip=cluster.tracker_address, port=cluster.tracker_port, sortby="task"
        )
        tracker.start()
    with xgb_collective.CommunicatorContext(
        dmlc_communicator="rabit",
        dmlc_tracker_uri=cluster.tracker_address,
        dmlc_tracker_port=cluster.tracker_port,
        dmlc_task_id=f"{cluster.rank:06d}",
        dmlc_retry=CONNECT_RETRIES,
    ):
        yield
    if tracker is not None:
        tracker.wait_for()


def _summed(values: list[float]) -> list[float]:
    """`values` summed over the collective's workers (themselves outside a collective)."""
    if not xgb_collective.is_distributed():
        return values
    total = xgb_collective.allreduce(np.asarray(values, dtype=np.float64), xgb_collective.Op.SUM)
    return [float(v) for v in total]


def global_counts(counts: dict[str, float]) -> dict[str, float]:
    """A sharded split's counts over every host's shards."""
    rows, frauds, genuine = _summed([counts["rows"], counts["frauds"], counts["genuine_weight"]])
    return {"rows": int(rows), "frauds": int(frauds), "genuine_weight": genuine}


def model_digest(booster: xgb.Booster) -> str:
    """sha256 of the booster's bytes: equal on every host of a distributed run."""
    return hashlib.sha256(bytes(booster.save_raw("ubj"))).hexdigest()


def parse_hyperparameters(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Hyperparameters from `--name value` arguments; unknown names are ignored (SageMaker adds some)."""
    p = argparse.ArgumentParser(description="Train the fraud booster.")
    p.add_argument("--max_depth", type=int, default=6)
    p.add_argument("--eta", type=float, default=0.1)
    p.add_argument("--num_round", type=int, default=300)
    p.add_argument("--early_stopping_rounds", type=int, default=40)
    # Early stopping counts only after this many trees, and the best iteration is chosen among them: a
    # handful of trees gives near-constant, badly calibrated scores, and the validation PR-AUC of a new
    # fraud pattern can peak early and climb again later.
    p.add_argument("--min_rounds", type=int, default=100)
    p.add_argument("--min_child_weight", type=float, default=1.0)
    p.add_argument("--subsample", type=float, default=0.8)
    p.add_argument("--colsample_bytree", type=float, default=0.8)
    p.add_argument("--reg_lambda", type=float, default=1.0)
    p.add_argument("--max_bin", type=int, default=256)
    # "auto": sqrt(negatives / positives) of the train split, a milder weight than the full ratio that
    # keeps the ranking gain and distorts probabilities less; a number sets it directly (1 = no weighting).
    p.add_argument("--scale_pos_weight", type=str, default="auto")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--nthread", type=int, default=int(os.environ.get("SM_NUM_CPUS", "0") or 0))
    args, _ = p.parse_known_args(argv)
    return args


class FrameRows:
    """A split held in memory as a frame (the in-process path of small data and tests)."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.columns = list(frame.columns)

    def chunks(self, columns: Sequence[str]) -> Iterator[pd.DataFrame]:
        for start in range(0, max(len(self.frame), 1), CHUNK_ROWS):
            yield self.frame.iloc[start : start + CHUNK_ROWS][list(columns)]


class ParquetRows:
    """A split's Parquet files (a channel folder), read `CHUNK_ROWS` rows at a time."""

    def __init__(self, folder: Path) -> None:
        self.files = sorted(Path(folder).glob("*.parquet"))
        if not self.files:
            raise FileNotFoundError(f"no Parquet files in the {Path(folder).name} channel")
        self.columns = pq.read_schema(self.files[0]).names

    def chunks(self, columns: Sequence[str]) -> Iterator[pd.DataFrame]:
        """Chunks of exactly `CHUNK_ROWS` rows (the last one shorter) whatever the files' row groups, so
        the matrix is built from the same chunks as from a frame of the same rows. `pre_buffer` off: it
        keeps every column chunk read until the file is closed (memory grows with the file)."""
        pending: list[pa.RecordBatch] = []
        held = 0
        for path in self.files:
            for batch in pq.ParquetFile(path, pre_buffer=False).iter_batches(
                batch_size=CHUNK_ROWS, columns=list(columns)
            ):
                pending.append(batch)
                held += batch.num_rows
                while held >= CHUNK_ROWS:
                    table = pa.Table.from_batches(pending)
                    yield table.slice(0, CHUNK_ROWS).to_pandas()
                    rest = table.slice(CHUNK_ROWS)
                    pending, held = rest.to_batches(), rest.num_rows
        if held:
            yield pa.Table.from_batches(pending).to_pandas()


Rows = FrameRows | ParquetRows


def _rows(split: pd.DataFrame | Rows) -> Rows:
    return FrameRows(split) if isinstance(split, pd.DataFrame) else split


class ChunkIter(xgb.DataIter):
    """Feeds a split to `QuantileDMatrix` chunk by chunk: the float matrix is never whole in memory."""

    def __init__(self, rows: Rows, features: list[str], weighted: bool) -> None:
        self.rows, self.features, self.weighted = rows, features, weighted
        self.columns = [LABEL, *([WEIGHT] if weighted else []), *features]
        self._chunks: Iterator[pd.DataFrame] | None = None
        super().__init__()

    def reset(self) -> None:
        self._chunks = None

    def next(self, input_data: Callable[..., None]) -> bool:
        if self._chunks is None:
            self._chunks = self.rows.chunks(self.columns)
        chunk = next(self._chunks, None)
        if chunk is None or not len(chunk):
            return False
        input_data(
            data=chunk[self.features].to_numpy(np.float32),
            label=chunk[LABEL].to_numpy(np.float32),
            weight=chunk[WEIGHT].to_numpy(np.float32) if self.weighted else None,
            feature_names=list(self.features),
        )
        return True


def split_counts(rows: Rows) -> dict[str, float]:
    """Rows, frauds and the weighted genuine count of a split (reads only the label and weight)."""
    weighted = WEIGHT in rows.columns
    total = frauds = 0
    genuine_weight = 0.0
    for chunk in rows.chunks([LABEL, *([WEIGHT] if weighted else [])]):
        labels = chunk[LABEL].to_numpy()
        total += len(labels)
        frauds += int(labels.sum())
        weights = chunk[WEIGHT].to_numpy(np.float64) if weighted else np.ones(len(labels))
        genuine_weight += float(weights[labels == 0].sum())
    return {"rows": total, "frauds": frauds, "genuine_weight": genuine_weight}


def positive_weight(labels: np.ndarray, setting: str, genuine_weight: float | None = None) -> float:
    """The `scale_pos_weight` to train with: a number, or "auto" = sqrt(negatives / positives), the
    negatives counted by their weights when the split was down-sampled (`genuine_weight`)."""
    if setting != "auto":
        return float(setting)
    positives = int(labels.sum())
    negatives = genuine_weight if genuine_weight is not None else len(labels) - positives
    return imbalance_weight(positives, negatives)


def imbalance_weight(positives: int, negatives: float) -> float:
    """sqrt(negatives / positives): a milder weight than the full ratio (1 without positives)."""
    return float(np.sqrt(negatives / positives)) if positives else 1.0


def booster_params(args: argparse.Namespace, scale_pos_weight: float) -> dict[str, Any]:
    params: dict[str, Any] = {
        "objective": "binary:logistic",
        "eval_metric": "aucpr",
        "tree_method": "hist",
        "max_depth": args.max_depth,
        "eta": args.eta,
        "min_child_weight": args.min_child_weight,
        "subsample": args.subsample,
        "colsample_bytree": args.colsample_bytree,
        "lambda": args.reg_lambda,
        "max_bin": args.max_bin,
        "scale_pos_weight": scale_pos_weight,
        "seed": args.seed,
    }
    if args.nthread > 0:
        params["nthread"] = args.nthread
    return params


def quantile_matrix(
    rows: Rows, features: list[str], max_bin: int, ref: xgb.DMatrix | None = None
) -> xgb.QuantileDMatrix:
    """The split as XGBoost's quantised matrix (1 byte per value at <= 256 bins), built chunk by chunk;
    the weight column is used when the split has one. `ref`: the train matrix whose bins it reuses."""
    missing = [f for f in features if f not in rows.columns]
    if missing:
        raise KeyError(f"split lacks feature columns: {missing}")
    if not any(len(chunk) for chunk in rows.chunks([LABEL])):  # an empty split: an empty matrix
        empty = np.empty((0, len(features)), np.float32)
        return xgb.QuantileDMatrix(
            empty, label=np.empty(0), feature_names=list(features), max_bin=max_bin, ref=ref
        )
    chunks = ChunkIter(rows, features, weighted=WEIGHT in rows.columns)
    return xgb.QuantileDMatrix(chunks, max_bin=max_bin, ref=ref, missing=np.nan)


class EarlyStoppingAfter(xgb.callback.TrainingCallback):
    """Stop when validation PR-AUC has not improved for `patience` rounds, counting from `min_rounds`."""

    def __init__(self, min_rounds: int, patience: int, data: str = "validation", metric: str = "aucpr"):
        super().__init__()
        self.min_rounds, self.patience, self.data, self.metric = max(1, min_rounds), patience, data, metric
        self.best_iteration: int | None = None
        self.best_score = -np.inf

    def after_iteration(self, model: xgb.Booster, epoch: int, evals_log: dict) -> bool:
        if epoch + 1 < self.min_rounds:
            return False
        score = float(evals_log[self.data][self.metric][-1])
        if score > self.best_score:
            self.best_score, self.best_iteration = score, epoch
        return epoch - (self.best_iteration or 0) >= self.patience


def train_booster(
    train: pd.DataFrame | Rows, validation: pd.DataFrame | Rows, features: list[str], args: argparse.Namespace
) -> tuple[xgb.Booster, dict[str, Any]]:
    """The booster cut at its best validation PR-AUC, and a summary of the run."""
    train_rows, validation_rows = _rows(train), _rows(validation)
    counts = global_counts(split_counts(train_rows))  # train is sharded across hosts
    validation_counts = split_counts(validation_rows)  # validation is replicated on every host
    weight = (
        imbalance_weight(counts["frauds"], counts["genuine_weight"])
        if args.scale_pos_weight == "auto"
        else float(args.scale_pos_weight)
    )
    dtrain = quantile_matrix(train_rows, features, args.max_bin)
    dvalid = quantile_matrix(validation_rows, features, args.max_bin, ref=dtrain)
    history: dict[str, Any] = {}
    has_positives = validation_counts["frauds"] > 0
    stopping = EarlyStoppingAfter(min(args.min_rounds, args.num_round), args.early_stopping_rounds)
    # Only the validation split is evaluated each round: PR-AUC over the train rows costs a sort of
    # every train row per round and informs nothing.
    booster = xgb.train(
        booster_params(args, weight),
        dtrain,
        num_boost_round=args.num_round,
        evals=[(dvalid, "validation")],
        callbacks=[stopping] if has_positives else None,
        evals_result=history,
        verbose_eval=False,
    )
    rounds = booster.num_boosted_rounds()
    best = stopping.best_iteration if has_positives and stopping.best_iteration is not None else rounds - 1
    best_model = booster[: best + 1]
    best_model.feature_names = list(features)
    summary = {
        "best_iteration": best,
        "rounds_trained": rounds,
        "validation_aucpr": float(history["validation"]["aucpr"][best]),
        "scale_pos_weight": weight,
        "train_rows": counts["rows"],
        "train_frauds": counts["frauds"],
        "train_genuine_weight": counts["genuine_weight"],
        "validation_rows": validation_counts["rows"],
        "validation_frauds": validation_counts["frauds"],
    }
    return best_model, summary


def save_model(
    model_dir: Path,
    booster: xgb.Booster,
    spec: dict[str, Any],
    summary: dict[str, Any],
    args: argparse.Namespace,
) -> None:
    """`model.ubj` and `features.json` into the model folder."""
    model_dir.mkdir(parents=True, exist_ok=True)
    booster.save_model(str(model_dir / MODEL_FILE))
    document = {
        "features": list(spec["features"]),
        "one_hot": spec.get("one_hot", {}),
        "label": LABEL,
        "hyperparameters": {k: v for k, v in vars(args).items() if k != "nthread"},
        "training": summary,
        "split_rows": spec.get("rows", {}),
        "split_frauds": spec.get("frauds", {}),
        "negative_sample_rate": spec.get("negative_sample_rate", 1.0),
    }
    (model_dir / FEATURES_FILE).write_text(json.dumps(document, indent=2))


def read_spec(train_dir: Path, validation_dir: Path) -> dict[str, Any]:
    """preprocess.py's feature spec: beside the train rows, or beside the validation rows (a host whose
    train shards did not include the spec file; validation is replicated on every host)."""
    for folder in (train_dir, validation_dir):
        if (folder / SPEC_FILE).is_file():
            return json.loads((folder / SPEC_FILE).read_text())
    raise FileNotFoundError(f"no {SPEC_FILE} in the train or validation channel")


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_hyperparameters(argv)
    train_dir = Path(os.environ["SM_CHANNEL_TRAIN"])
    validation_dir = Path(os.environ["SM_CHANNEL_VALIDATION"])
    spec = read_spec(train_dir, validation_dir)
    cluster = cluster_from_env()
    with collective(cluster):
        booster, summary = train_booster(
            ParquetRows(train_dir), ParquetRows(validation_dir), spec["features"], args
        )
    if cluster.is_leader:  # every host holds the same booster; one writes it
        save_model(Path(os.environ.get("SM_MODEL_DIR", "/opt/ml/model")), booster, spec, summary, args)
    print(
        f"trained on host {cluster.rank + 1} of {cluster.size}: best_iteration={summary['best_iteration']} "
        f"of {summary['rounds_trained']} validation_aucpr={summary['validation_aucpr']:.4f} "
        f"scale_pos_weight={summary['scale_pos_weight']:.2f} train_rows={summary['train_rows']} "
        f"model_sha256={model_digest(booster)}"
    )


if __name__ == "__main__":
    main()
    # Leave without interpreter teardown: Arrow's and XGBoost's native thread pools can abort
    # ("terminate called without an active exception", exit -6) or hang at exit once every output
    # is written (apache/arrow#34314).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
