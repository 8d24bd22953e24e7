"""Fraud training on several hosts without SageMaker: two train.py processes on 127.0.0.1 form one XGBoost
collective, each with half of preprocess.py's train files (as `ShardedByS3Key` hands them out)."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from pipelines.spec import TRAINING_DIR
from training.fraud import evaluate, train

SCRIPTS = TRAINING_DIR / "fraud"
HOSTS = ["algo-1", "algo-2"]
FILES = 4
ROUNDS = ["--num_round", "40", "--min_rounds", "10", "--nthread", "1"]


def _signal_frame(rows_per_month: int = 2_500, seed: int = 11) -> pd.DataFrame:
    """Six months of transactions whose fraud depends on amount, channel and merchant group (~2%)."""
    rng = np.random.default_rng(seed)
    n = 6 * rows_per_month
    ts = pd.Timestamp("2019-01-01") + pd.to_timedelta(np.sort(rng.integers(0, 181 * 86_400, n)), unit="s")
    amount = rng.lognormal(8, 1.2, n).astype(np.int64)
    online = rng.random(n) < 0.4
    group = rng.choice(["grocery", "travel", "dining"], n)
    logit = -6.0 + 0.35 * np.log1p(amount) - 1.2 + 1.5 * online + 1.2 * (group == "travel")
    return pd.DataFrame(
        {
            "txn_id": [f"t{i:06d}" for i in range(n)],
            "event_seq": np.arange(n),
            "ts": ts,
            "split": np.where(ts.month <= 4, "train", np.where(ts.month == 5, "validation", "test")),
            "label": rng.random(n) < 1 / (1 + np.exp(-logit)),
            "amount_cents": amount,
            "is_online": online,
            "mcc_group": group,
        }
    )


def _preprocess(root: Path, frame: pd.DataFrame, files: int) -> Path:
    features = root / "processing/input/features"
    features.mkdir(parents=True)
    frame.to_parquet(features / "part-0.parquet", index=False)
    done = subprocess.run(
        [sys.executable, str(SCRIPTS / "preprocess.py"), "--files-per-split", str(files)],
        env={**os.environ, "CDP_OPT_ML_ROOT": str(root)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return root / "processing/output"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _train(
    hosts: list[str], train_dirs: dict[str, Path], validation: Path, models: Path
) -> dict[str, subprocess.CompletedProcess]:
    """train.py once per host, all at the same time; {host: finished process}."""
    port = str(_free_port())
    running = {}
    for host in hosts:
        env = {
            **os.environ,
            "SM_HOSTS": json.dumps(hosts),
            "SM_CURRENT_HOST": host,
            train.HOST_ADDRESSES_ENV: json.dumps(dict.fromkeys(hosts, "127.0.0.1")),
            train.TRACKER_PORT_ENV: port,
            "SM_CHANNEL_TRAIN": str(train_dirs[host]),
            "SM_CHANNEL_VALIDATION": str(validation),
            "SM_MODEL_DIR": str(models / host),
        }
        running[host] = subprocess.Popen(
            [sys.executable, str(SCRIPTS / "train.py"), *ROUNDS],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    finished = {}
    for host, process in running.items():
        try:
            out, err = process.communicate(timeout=180)
        except subprocess.TimeoutExpired:
            for other in running.values():
                other.kill()
            raise
        finished[host] = subprocess.CompletedProcess(process.args, process.returncode, out, err)
    return finished


def _reported(done: subprocess.CompletedProcess, name: str) -> str:
    found = re.search(rf"{name}=(\S+)", done.stdout)
    assert found, done.stdout + done.stderr
    return found.group(1)


def _test_pr_auc(model_dir: Path, output: Path) -> float:
    booster = xgb.Booster(model_file=str(model_dir / train.MODEL_FILE))
    spec = json.loads((model_dir / train.FEATURES_FILE).read_text())
    test = pd.concat([pd.read_parquet(f) for f in sorted((output / "test").glob("*.parquet"))])
    scores = evaluate.predict(booster, test, spec["features"])
    return evaluate.fraud_metrics(test["is_fraud"].to_numpy(), scores)["pr_auc"]


@pytest.fixture(scope="module")
def sharded(tmp_path_factory):
    """One data set preprocessed into FILES files per split, and the same into one file."""
    root = tmp_path_factory.mktemp("distributed")
    frame = _signal_frame()
    return root, _preprocess(root / "sharded", frame, FILES), _preprocess(root / "single", frame, 1)


def test_files_per_split_are_consecutive_slices_of_the_one_file_output(sharded):
    _, output, single = sharded
    for split in ("train", "validation", "test"):
        files = sorted((output / split).glob("*.parquet"))
        assert [f.name for f in files] == [f"{split}-{i:05d}.parquet" for i in range(FILES)]
        sizes = [len(pd.read_parquet(f)) for f in files]
        assert max(sizes) - min(sizes) <= max(sizes) // 4  # about equal shares
        joined = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
        pd.testing.assert_frame_equal(joined, pd.read_parquet(single / split / f"{split}.parquet"))
    for split in ("train", "validation"):  # the spec travels with the replicated validation rows too
        assert json.loads((output / split / train.SPEC_FILE).read_text())["files_per_split"] == FILES


def test_two_hosts_train_one_model_as_good_as_one_host(sharded):
    root, output, _ = sharded
    shards = sorted((output / "train").glob("*.parquet"))
    train_dirs = {host: root / "channels" / host for host in HOSTS}
    for index, path in enumerate([*shards, output / "train" / train.SPEC_FILE]):  # ShardedByS3Key
        folder = train_dirs[HOSTS[index % len(HOSTS)]]
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, folder / path.name)
    assert not (train_dirs["algo-2"] / train.SPEC_FILE).exists()  # algo-2 reads the validation copy

    models = root / "models"
    pair = _train(HOSTS, train_dirs, output / "validation", models)
    alone = _train(["algo-1"], {"algo-1": output / "train"}, output / "validation", root / "alone")
    for done in (*pair.values(), *alone.values()):
        assert done.returncode == 0, done.stderr[-2000:]

    digests = {host: _reported(done, "model_sha256") for host, done in pair.items()}
    assert digests["algo-1"] == digests["algo-2"]  # one model on every host
    train_rows = sum(len(pd.read_parquet(f)) for f in shards)
    assert {_reported(done, "train_rows") for done in pair.values()} == {str(train_rows)}  # summed
    assert (models / "algo-1" / train.MODEL_FILE).is_file()
    assert not (models / "algo-2").exists() or not any((models / "algo-2").iterdir())  # leader writes

    distributed, single = (
        _test_pr_auc(models / "algo-1", output),
        _test_pr_auc(root / "alone" / "algo-1", output),
    )
    assert single > 0.1  # the data has signal: the comparison means something
    assert distributed == pytest.approx(single, abs=0.03)


def test_one_host_needs_no_tracker_and_several_hosts_resolve_the_first(tmp_path):
    alone = train.cluster_from_env({"SM_HOSTS": '["algo-1"]', "SM_CURRENT_HOST": "algo-1"})
    assert alone.size == 1 and alone.is_leader and alone.tracker_address == ""
    pair = train.cluster_from_env(
        {
            "SM_HOSTS": '["algo-1", "algo-2"]',
            "SM_CURRENT_HOST": "algo-2",
            train.HOST_ADDRESSES_ENV: '{"algo-1": "10.0.0.5"}',
        }
    )
    assert (pair.rank, pair.is_leader, pair.tracker_address, pair.tracker_port) == (
        1,
        False,
        "10.0.0.5",
        9099,
    )
    config = tmp_path / "resourceconfig.json"
    config.write_text(json.dumps({"current_host": "algo-1", "hosts": ["algo-1"]}))
    assert train.cluster_from_env({"SM_INPUT_CONFIG_DIR": str(tmp_path)}).hosts == ("algo-1",)
    with pytest.raises(ValueError, match="not one of the job's hosts"):
        train.cluster_from_env({"SM_HOSTS": '["algo-1"]', "SM_CURRENT_HOST": "algo-9"})
