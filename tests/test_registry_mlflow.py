"""The MLflow adapter's own promises: its layout, tags, alias, pyfunc form, and no PII in what it writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cdp.compliance.leakscan import LeakScanner
from cdp.registry import APPROVED, PENDING
from cdp.registry.mlflow_registry import STATUS_TAG, MlflowModelRegistry
from cdp.security.audit.keys import AuditKeys
from cdp.security.audit.sqlite import SqliteAuditLog
from cdp.settings import Settings
from tests.contract.test_registry_contract import (
    FEATURES,
    booster_probabilities,
    register,
    training_frame,
    write_tiny_model,
)

# Personal values of a (made-up) customer that must never reach the registry.
KNOWN_PII = ["Marguerite Okonkwo", "1427 Chestnut Hollow Rd", "marguerite.okonkwo@example.com"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[MlflowModelRegistry, Path, Path]:
    root = tmp_path_factory.mktemp("mlflow-registry")
    model_dir = write_tiny_model(root / "model")
    registry = MlflowModelRegistry(
        root / "state", SqliteAuditLog(root / "audit.sqlite", AuditKeys.generate())
    )
    plot = root / "roc.png"
    plot.write_bytes(b"\x89PNG\r\n\x1a\n image")
    register(registry, "fraud", model_dir, plots={"roc": plot}, model_card="# Fraud\nPR-AUC 0.41 on holdout.")
    register(registry, "fraud", model_dir)
    registry.approve("fraud", 1, "alice", "meets gates")
    return registry, root / "state", model_dir


def test_state_lives_in_sqlite_and_local_artifacts(setup: tuple[MlflowModelRegistry, Path, Path]) -> None:
    registry, state, _ = setup
    assert registry.tracking_uri == f"sqlite:///{state / 'mlflow.db'}"
    assert (state / "mlflow.db").is_file()
    version = registry.get("fraud", 1)
    assert version.artifacts_uri.startswith((state / "mlruns").as_uri())
    artifact_dir = Path(version.artifacts_uri.removeprefix("file://"))
    assert (artifact_dir / "MLmodel").is_file()
    assert any(artifact_dir.rglob("model.ubj")) and any(artifact_dir.rglob("threshold.txt"))
    assert not list((state / "mlruns").rglob("*.pkl"))  # nothing pickled
    assert Path(version.plots["roc"].removeprefix("file://")).read_bytes().startswith(b"\x89PNG")
    card = Path(str(version.model_card_uri).removeprefix("file://")).read_text()
    assert card.startswith("# Fraud")


def test_status_is_a_version_tag_and_champion_an_alias(setup: tuple[MlflowModelRegistry, Path, Path]) -> None:
    registry, _, _ = setup
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=registry.tracking_uri, registry_uri=registry.tracking_uri)
    assert client.get_model_version("fraud", "1").tags[STATUS_TAG] == APPROVED
    assert client.get_model_version("fraud", "2").tags[STATUS_TAG] == PENDING
    assert int(client.get_model_version_by_alias("fraud", "champion").version) == 1
    run = client.get_run(client.get_model_version("fraud", "1").run_id)
    assert run.data.params["max_depth"] == "2" and run.data.metrics["pr_auc"] == pytest.approx(0.41)


def test_plain_mlflow_pyfunc_returns_probabilities(setup: tuple[MlflowModelRegistry, Path, Path]) -> None:
    registry, _, model_dir = setup
    import mlflow.pyfunc

    frame, _ = training_frame(rows=30, seed=8)
    model = mlflow.pyfunc.load_model(registry.get("fraud", 1).artifacts_uri)
    got = np.asarray(model.predict(frame[list(FEATURES)]))
    np.testing.assert_allclose(got, booster_probabilities(model_dir, frame), rtol=1e-6)
    assert set(np.unique(got)) - {0.0, 1.0}  # not labels


def test_registry_writes_no_personal_data(
    setup: tuple[MlflowModelRegistry, Path, Path], tmp_path: Path
) -> None:
    _, state, _ = setup
    scanner = LeakScanner(known_values=KNOWN_PII)
    assert scanner.scan([state]) == []
    # control: the same scan does see a value planted in a copy of the registry database
    import shutil
    import sqlite3

    copy = tmp_path / "mlflow-copy.db"
    shutil.copyfile(state / "mlflow.db", copy)
    with sqlite3.connect(copy) as con:
        con.execute("UPDATE params SET value = ? WHERE key = 'eta'", (KNOWN_PII[0],))
    assert {f.kind for f in scanner.scan([copy])} == {"known_value"}


def test_from_settings_uses_the_state_folder(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    registry = MlflowModelRegistry.from_settings(
        settings, SqliteAuditLog(tmp_path / "audit.sqlite", AuditKeys.generate())
    )
    assert registry.db_path == settings.state_dir / "mlflow.db"
    assert registry.artifact_root == settings.state_dir / "mlruns"
