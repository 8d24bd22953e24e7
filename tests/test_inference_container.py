"""The SageMaker inference container without Docker: the `serve` entry point as a subprocess.

A fraud booster is trained by the real training scripts (`training/fraud/`) through the pipeline
definition on the local executor, on the fraud view's online features of random events; its
`model.tar.gz` is unpacked into a folder as SageMaker unpacks it into `/opt/ml/model`. The entry point
runs with SageMaker's environment only (model folder, port, workers) in an empty working folder and home;
its answers must equal the in-process app's `/invocations` for the same rows (the same model registered
and approved in the registry), malformed bodies get 4xx with a reason, and nothing is written locally.
"""

from __future__ import annotations

import io
import json
import os
import random
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import psutil
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from bench.serving_fixture import random_events
from cdp.catalog.local import DuckDbCatalog
from cdp.catalog.port import TableInfo
from cdp.objectstore.local import FolderObjectStore
from inference.container.app import create_container_app
from inference.container.environment import ContainerConfigError, ContainerEnvironment
from inference.loaded import load_folder
from pipelines.spec import TRAINING_DIR
from tests.pipeline_support import BUCKET, PROCESSING_IMAGE, REGION, ROLE, TRAINING_IMAGE, RecordingRegistry

ROOT = Path(__file__).resolve().parent.parent
WORKERS = 2
READY_SECONDS = 60.0
KEYS = ("txn_id", "event_seq", "ts")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _feature_table(seed: int = 5, count: int = 1200) -> pd.DataFrame:
    """`fraud_training_set`-shaped rows: keys, the fraud view's online features, label, time split."""
    from cdp.online.local import LocalOnlineStore
    from features.fraud import FRAUD_VIEW
    from features.online import OnlineFeatures

    online = OnlineFeatures(FRAUD_VIEW, LocalOnlineStore(None))
    events = random_events(random.Random(seed), count=count, cards=25)
    rows = [{"txn_id": e["txn_id"], "event_seq": i + 1, "ts": e["ts"], **online.update(e)}
            for i, e in enumerate(events)]  # fmt: skip
    frame = pd.DataFrame(rows)
    frame["is_fraud"] = (
        ((frame["mcc_group"] == "cash_and_gambling") & (frame["amount_cents"] > 3000))
        | frame["has_error"].astype(bool)
        | (frame["is_new_merchant"].astype(bool) & (frame["amount_cents"] > 9000))
    ).astype(np.int8)
    position = np.arange(len(frame)) / len(frame)
    frame["split"] = np.where(position < 0.7, "train", np.where(position < 0.85, "validation", "test"))
    return frame


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(model folder unpacked from the Train step's model.tar.gz, the feature rows, work root)."""
    from pipelines.definition import build_definition
    from pipelines.local import LocalPipelineExecutor

    root = tmp_path_factory.mktemp("container")
    store = FolderObjectStore(root / "lake", fsync=False)
    catalog = DuckDbCatalog(root / "catalog.json", resolve=store.local_path)
    frame = _feature_table()
    table = pa.Table.from_pandas(frame, preserve_index=False)
    location = f"s3://{BUCKET}/features/fraud_training_set/"
    path = store.local_path(location + "part-0.parquet")
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    catalog.register_table(TableInfo(name="fraud_training_set", location=location, schema=table.schema))
    definition = build_definition(
        "fraud", bucket=BUCKET, region=REGION, role=ROLE, scripts_dir=TRAINING_DIR / "fraud",
        object_store=store, processing_image=PROCESSING_IMAGE, training_image=TRAINING_IMAGE,
    )  # fmt: skip
    executor = LocalPipelineExecutor(
        store,
        query_to_files=catalog.query_to_files,
        register=RecordingRegistry().register,
        work_dir=root / "work",
    )
    record = executor.run(definition, pipeline_name="cdp-fraud")
    train = record.step("Train")
    assert train.status == "Succeeded", train.failure_reason
    archive = store.get_bytes(train.properties["ModelArtifacts"]["S3ModelArtifacts"])
    model_dir = root / "opt-ml-model"
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        tar.extractall(model_dir, filter="data")
    return model_dir, frame, root


@pytest.fixture(scope="module")
def in_process(trained):
    """The platform's app over a registry whose approved champion is the same model folder."""
    from cdp.backends import Backends
    from cdp.registry import Lineage
    from cdp.settings import Settings
    from inference.app import create_app
    from inference.config import ServingConfig

    model_dir, _, root = trained
    backends = Backends(Settings(home=root / "platform"))
    features = tuple(json.loads((model_dir / "features.json").read_text())["features"])
    registry = backends.model_registry
    registry.register("cdp-fraud", model_dir, {"pr_auc": 0.5}, {}, Lineage("test", features, "test", "test"))
    registry.approve("cdp-fraud", 1, "approver", "container test")
    app = create_app(backends=backends, config=ServingConfig(invocations_auth=False, reload_seconds=0))
    with TestClient(app) as client:
        yield client


@pytest.fixture(scope="module")
def container(trained, tmp_path_factory):
    """`python -m inference.container.serve serve` with SageMaker's environment; (url, process, folders)."""
    model_dir, _, _ = trained
    work = tmp_path_factory.mktemp("container-cwd")
    home = tmp_path_factory.mktemp("container-home")
    port = _free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "PYTHONPATH": str(ROOT),
        "SM_MODEL_DIR": str(model_dir),
        "SAGEMAKER_BIND_TO_PORT": str(port),
        "SAGEMAKER_MODEL_SERVER_WORKERS": str(WORKERS),
        "SAGEMAKER_MODEL_SERVER_TIMEOUT": "30",
        "CDP_MODEL_NAME": "cdp-fraud",
        "CDP_MODEL_VERSION": "1",
    }
    log = tmp_path_factory.mktemp("container-log") / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "inference.container.serve", "serve"],
            env=env, cwd=work, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + READY_SECONDS
        while True:
            assert process.poll() is None, log.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, "the container did not answer /ping in time"
            try:
                if httpx.get(f"{url}/ping", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        yield url, process, work, home, log
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _raw_rows(frame: pd.DataFrame, n: int, start: int = 900) -> list[dict]:
    """Feature rows as a caller sends them: the raw online features (`mcc_group` as text)."""
    features = frame.drop(columns=[*KEYS, "is_fraud", "split"]).iloc[start : start + n]
    return json.loads(features.to_json(orient="records"))


def _encoded(trained, rows: list[dict]) -> pd.DataFrame:
    from training.fraud.preprocess import encode_features

    model_dir, _, _ = trained
    spec = json.loads((model_dir / "features.json").read_text())
    return encode_features(pd.DataFrame(rows), spec)


def _same_answers(container_answer: dict, in_process_answer: dict) -> None:
    np.testing.assert_allclose(container_answer["predictions"], in_process_answer["predictions"], atol=1e-9)
    ours, theirs = container_answer["reasons"], in_process_answer["reasons"]
    assert [[c["feature"] for c in row] for row in ours] == [[c["feature"] for c in row] for row in theirs]
    np.testing.assert_allclose(
        [c["contribution"] for row in ours for c in row],
        [c["contribution"] for row in theirs for c in row],
        atol=1e-9,
    )


@pytest.mark.slow
def test_the_model_folder_is_the_training_steps_archive(trained):
    model_dir, _, _ = trained
    assert sorted(p.name for p in model_dir.iterdir()) == ["features.json", "model.ubj"]
    spec = json.loads((model_dir / "features.json").read_text())
    assert "mcc_group" in spec["one_hot"]  # the raw category is encoded by the server, as in training


@pytest.mark.slow
def test_json_bodies_answer_as_the_in_process_app(trained, in_process, container):
    url = container[0]
    _, frame, _ = trained
    rows = _raw_rows(frame, 40)
    bodies = [
        {"instances": rows},
        rows,
        json.loads(pd.DataFrame(rows).to_json(orient="split", index=False)),
        {"instances": json.loads(_encoded(trained, rows).to_json(orient="values"))},
    ]
    for body in bodies:
        ours = httpx.post(f"{url}/invocations", json=body, timeout=30)
        theirs = in_process.post("/invocations", json=body)
        assert ours.status_code == theirs.status_code == 200, ours.text
        _same_answers(ours.json(), theirs.json())
        assert len(ours.json()["predictions"]) == 40 and any(ours.json()["reasons"])
        assert (ours.json()["model"], ours.json()["model_version"]) == ("cdp-fraud", 1)
    one = httpx.post(f"{url}/invocations", json={"instances": rows[:1]}, timeout=30)
    assert len(one.json()["predictions"]) == 1 and len(one.json()["reasons"][0]) <= 3


@pytest.mark.slow
def test_csv_bodies_answer_as_the_in_process_app(trained, in_process, container):
    url = container[0]
    _, frame, _ = trained
    rows = _raw_rows(frame, 25, start=1000)
    with_header = pd.DataFrame(rows).to_csv(index=False).encode()
    no_header = _encoded(trained, rows).to_csv(index=False, header=False).encode()
    for body in (with_header, no_header):
        headers = {"Content-Type": "text/csv"}
        ours = httpx.post(f"{url}/invocations", content=body, headers=headers, timeout=30)
        theirs = in_process.post("/invocations", content=body, headers=headers)
        assert ours.status_code == theirs.status_code == 200, ours.text
        _same_answers(ours.json(), theirs.json())
        csv_headers = {**headers, "Accept": "text/csv"}
        ours_csv = httpx.post(f"{url}/invocations", content=body, headers=csv_headers, timeout=30)
        assert ours_csv.headers["content-type"].startswith("text/csv")
        assert ours_csv.text == in_process.post("/invocations", content=body, headers=csv_headers).text
        np.testing.assert_allclose([float(v) for v in ours_csv.text.split()], ours.json()["predictions"])


@pytest.mark.slow
def test_malformed_bodies_get_a_4xx_with_a_reason_never_a_5xx(trained, container):
    url = container[0]
    _, frame, _ = trained
    row = _raw_rows(frame, 1)[0]
    json_type = {"Content-Type": "application/json"}
    cases = [
        (b"{not json", json_type, 400),
        (b"", json_type, 400),
        (b'{"instances": "rows"}', json_type, 400),
        (b'{"instances": []}', json_type, 400),
        (b'{"instances": [[1.0, 2.0]]}', json_type, 400),  # not one value per model feature
        (json.dumps({"instances": [{"amount_cents": 100}]}).encode(), json_type, 400),  # missing features
        (json.dumps({"instances": [{**row, "amount_cents": {"cents": 1}}]}).encode(), json_type, 400),
        (json.dumps({"instances": [{**row, "amount_cents": "a lot"}]}).encode(), json_type, 400),
        (json.dumps({"instances": [row, [1.0]]}).encode(), json_type, 400),
        (b"\xff\xfe,1\n", {"Content-Type": "text/csv"}, 400),
        (b"<rows/>", {"Content-Type": "application/xml"}, 415),
        (b"x" * (7 << 20), json_type, 413),
    ]
    for body, headers, status in cases:
        r = httpx.post(f"{url}/invocations", content=body, headers=headers, timeout=30)
        assert r.status_code == status, (body[:60], r.status_code, r.text[:200])
        detail = r.json()["detail"]
        assert isinstance(detail, str) and detail and "\n" not in detail and "Traceback" not in detail
        assert "a lot" not in detail  # reasons name the column, never echo its value
    assert httpx.get(f"{url}/ping", timeout=5).status_code == 200  # and it still serves


@pytest.mark.slow
def test_runs_the_configured_workers_and_writes_no_local_state(container):
    url, process, work, home, log = container
    workers = [
        child for child in psutil.Process(process.pid).children()
        if "spawn_main" in " ".join(child.cmdline())
    ]  # fmt: skip
    assert len(workers) == WORKERS
    assert httpx.get(f"{url}/ping", timeout=5).status_code == 200
    assert list(work.iterdir()) == [] and list(home.iterdir()) == []
    access = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert any(e["route"] == "/invocations" and e["status"] == 200 for e in access)


# -- units of the container: its environment, its timeout, the entry point's refusals ------------------
def test_environment_defaults_and_overrides():
    defaults = ContainerEnvironment.from_environ({})
    assert (defaults.model_dir, defaults.port, defaults.timeout_seconds) == (
        Path("/opt/ml/model"),
        8080,
        60.0,
    )
    assert defaults.workers == len(os.sched_getaffinity(0)) and defaults.model_version == 0
    env = ContainerEnvironment.from_environ({
        "SM_MODEL_DIR": "/m", "SAGEMAKER_BIND_TO_PORT": "9000", "SAGEMAKER_MODEL_SERVER_WORKERS": "3",
        "SAGEMAKER_MODEL_SERVER_TIMEOUT": "5", "CDP_MODEL_NAME": "cdp-clv", "CDP_MODEL_VERSION": "4",
    })  # fmt: skip
    assert env == ContainerEnvironment(Path("/m"), 9000, 3, 5.0, "cdp-clv", 4)
    bad = [("SAGEMAKER_BIND_TO_PORT", "http"), ("SAGEMAKER_MODEL_SERVER_WORKERS", "0"),
           ("SAGEMAKER_BIND_TO_PORT", "70000"), ("SAGEMAKER_MODEL_SERVER_TIMEOUT", "-1")]  # fmt: skip
    for name, value in bad:
        with pytest.raises(ContainerConfigError, match=name):
            ContainerEnvironment.from_environ({name: value})


def _tiny_model(folder: Path) -> Path:
    """A two-tree booster on two features (enough for routes that never score)."""
    import xgboost

    x = np.random.default_rng(1).random((40, 2)).astype(np.float32)
    booster = xgboost.train({"objective": "binary:logistic", "nthread": 1},
                            xgboost.DMatrix(x, label=x[:, 0] > 0.5, feature_names=["a", "b"]), 2)  # fmt: skip
    folder.mkdir()
    booster.save_model(str(folder / "model.ubj"))
    return folder


def test_an_invocation_over_the_timeout_gets_504(tmp_path, monkeypatch):
    import inference.routes_sagemaker as routes

    model_dir = _tiny_model(tmp_path / "model")

    def slow(*args, **kwargs):
        time.sleep(0.5)
        raise AssertionError("the answer should have been given up")

    monkeypatch.setattr(routes, "invoke", slow)
    app = create_container_app(load_folder(model_dir, "cdp-fraud", 1), timeout_seconds=0.05)
    with TestClient(app) as client:
        r = client.post("/invocations", json={"instances": [{"a": 0.1, "b": 0.2}]})
        assert client.get("/ping").status_code == 200
    assert r.status_code == 504 and "0.05 s" in r.json()["detail"]


def test_the_entry_point_refuses_a_bad_environment_and_a_folder_without_a_model(tmp_path):
    base = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)}
    command = [sys.executable, "-m", "inference.container.serve", "serve"]
    bad_port = {**base, "SAGEMAKER_BIND_TO_PORT": "eighty", "SM_MODEL_DIR": str(tmp_path)}
    r = subprocess.run(command, env=bad_port, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "SAGEMAKER_BIND_TO_PORT" in r.stderr and "Traceback" not in r.stderr
    empty = {**base, "SM_MODEL_DIR": str(tmp_path), "SAGEMAKER_MODEL_SERVER_WORKERS": "1"}
    r = subprocess.run(command, env=empty, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "cannot load the model folder" in r.stderr and "Traceback" not in r.stderr
