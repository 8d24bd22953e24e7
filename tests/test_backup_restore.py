"""Backup and restore: a home is built, sealed under a recovery key, destroyed and restored; the lake opens
again, the audit chain verifies, the champion loads, the API key works; a wrong key or an altered archive
restores nothing."""

from __future__ import annotations

import random
import shutil
import sqlite3
import stat
from pathlib import Path

import pyarrow.csv as pv
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from cdp.apikeys.commands import create_key
from cdp.backends import Backends
from cdp.backup import components
from cdp.backup.archive import restore_archive, verify_archive, write_backup
from cdp.backup.errors import ArchiveIntegrityError, HomeNotEmpty, RecoveryKeyError, WrongRecoveryKey
from cdp.backup.recovery_key import generate_recovery_key, read_recovery_key, write_recovery_key
from cdp.backup.sealed import CHUNK_BYTES
from cdp.batch.job import run_batch
from cdp.corebanking.load import load_core_banking
from cdp.registry import Lineage
from cdp.registry.scoring import load_scoring_model
from cdp.security.vault import Caller
from cdp.settings import get_settings
from cdp.synth.generator import generate
from inference.app import create_app
from inference.config import ServingConfig
from tests.cli_support import cdp  # noqa: F401 - fixture
from tests.identity_support import issue
from tests.test_inference_app import random_events, token, train_fraud_model

USERS = 3
FRAUD_OPS = Caller("analyst-1", "fraud-ops")


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ibm")
    generate(out, users=USERS, seed=11, workers=1)
    return out


@pytest.fixture(scope="module")
def fraud_model(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("models") / "fraud"
    rng = random.Random(5)
    cards = [token("crd_", rng) for _ in range(4)]
    users = {c: token("usr_", rng) for c in cards}
    train_fraud_model(folder, random_events(rng, cards, users, 200))
    return folder


def _person_names(source: Path) -> set[str]:
    return set(pv.read_csv(source / "sd254_users.csv")["Person"].to_pylist())


def _decrypted_names(b: Backends) -> set[str]:
    """Every customer's name in the lake, decrypted through the vault (as fraud-ops may)."""
    root = b.object_store.local_path(f"s3://{b.settings.lake_bucket}/customers")
    table = pq.read_table(root)
    return {
        b.vault.reveal(FRAUD_OPS, t, {"person": p}, "fraud-alert")["person"]
        for t, p in zip(table["user_token"].to_pylist(), table["person_enc"].to_pylist(), strict=True)
    }


def _serve_models(b: Backends, key: str) -> tuple[int, dict]:
    config = ServingConfig.from_settings(b.settings, reload_seconds=0.0)
    with TestClient(create_app(backends=b, config=config)) as client:
        response = client.get("/v1/models", headers={"Authorization": f"Bearer {key}"})
        bogus = client.get("/v1/models", headers={"Authorization": "Bearer cdp_not_a_key"})
    assert bogus.status_code == 401
    return response.status_code, response.json()


def test_a_destroyed_home_comes_back_whole(source, fraud_model, isolated_home, tmp_path, monkeypatch, cdp):  # noqa: F811
    b = Backends()
    admin = issue(b, "admin")
    load_core_banking(source, b)
    run_batch(source, b)
    features = load_scoring_model(fraud_model).features
    b.model_registry.register(
        "cdp-fraud", fraud_model, {"pr_auc": 0.5, "alert_threshold": 0.3}, {},
        Lineage("sha256:test", features, "test", "run-1"),
    )  # fmt: skip
    b.model_registry.approve("cdp-fraud", 1, "approver-1", "test champion")
    api_key, _ = create_key(b.api_keys, "monitoring", ["models:read"], audit=b.audit, actor="admin")
    b.online_store.put_many({"card:crd_x": b"state-1"})
    b.online_store.snapshot()
    names = _person_names(source)
    assert _decrypted_names(b) == names
    customers_before = b.oltp.counts()

    key_file = tmp_path / "offline" / "recovery.key"
    made = cdp(admin, "backup", "init-recovery-key", "--out", str(key_file))
    assert made.exit_code == 0, made.output
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    archive = tmp_path / "backups" / "home.cdpbak"
    done = cdp(admin, "backup", "--out", str(archive), "--recovery-key-file", str(key_file))
    assert done.exit_code == 0, done.output
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    raw = archive.read_bytes()
    assert b"keyring" not in raw and b"CREATE TABLE" not in raw  # sealed: no name or schema shows
    backups = [r for r in b.audit.records() if r.action == "backup"]
    assert len(backups) == 1 and backups[0].actor == "admin" and backups[0].outcome == "allowed"
    backup_id = backups[0].details["backup_id"]

    # Disaster: every store of the home is gone (the lake, object storage, is left).
    for folder in (isolated_home / "state", isolated_home / "identities"):
        shutil.rmtree(folder)
    get_settings.cache_clear()
    monkeypatch.delenv("CDP_IDENTITY_FILE")
    restored = cdp(None, "restore", str(archive), "--recovery-key-file", str(key_file))
    assert restored.exit_code == 0, restored.output
    assert f"restored backup {backup_id}" in restored.output

    after = Backends()
    verdict = after.audit.verify()
    assert verdict.ok, verdict.reason
    last = list(after.audit.records())[-1]  # the restore, chained to the restored log
    assert (last.action, last.outcome, last.details["backup_id"]) == ("restore", "allowed", backup_id)
    assert last.role == "recovery-key" and last.actor.startswith("recovery-key-")
    assert _decrypted_names(after) == names  # the lake opens with the restored keys
    assert after.oltp.counts() == customers_before
    assert after.online_store.get_many(["card:crd_x"]) == {"card:crd_x": b"state-1"}
    status, body = _serve_models(after, api_key)
    assert status == 200
    fraud = next(m for m in body["models"] if m["name"] == "cdp-fraud")
    assert fraud["version"] == 1 and fraud["features"] == len(features)  # the champion loads
    assert cdp(admin, "audit", "verify").exit_code == 0  # the restored identity works too

    # Restoring over the now live home needs --force, and an admin of it; what it replaces is kept aside.
    again = cdp(admin, "restore", str(archive), "--recovery-key-file", str(key_file))
    assert again.exit_code == 2 and "--force" in again.output
    forced = cdp(admin, "restore", str(archive), "--force", "--recovery-key-file", str(key_file))
    assert forced.exit_code == 0, forced.output
    assert list((isolated_home / "restore-replaced").glob("*/state/keyring.json"))
    final = Backends()
    assert final.audit.verify().ok
    assert [r.actor for r in final.audit.records() if r.action == "restore"] == ["admin"]


# -- the archive format, on a small home -------------------------------------------------------------------
@pytest.fixture
def small_home(isolated_home) -> Path:
    """A home with keys, an audit log, an API key store and core banking, and no model."""
    b = Backends()
    b.protector.user_token(1)  # the keyring, the data keys and the token key
    create_key(b.api_keys, "svc", ["models:read"], audit=b.audit, actor="admin")
    b.oltp.counts()
    return isolated_home


def test_a_wrong_recovery_key_is_refused_in_one_line(small_home, tmp_path, cdp):  # noqa: F811
    key, other = generate_recovery_key(), generate_recovery_key()
    archive = write_backup(small_home, tmp_path / "a.cdpbak", key).path
    with pytest.raises(
        WrongRecoveryKey, match=f"sealed with recovery key {key.key_id}, not .* {other.key_id}"
    ):
        verify_archive(archive, other)
    other_file = write_recovery_key(tmp_path / "other.key", other, small_home)
    shutil.rmtree(small_home / "state")
    result = cdp(None, "restore", str(archive), "--recovery-key-file", str(other_file))
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0 and result.output.startswith(
        "error: the archive was sealed"
    )
    assert not (small_home / "state").exists() or not components.present(small_home)  # nothing written


@pytest.mark.parametrize("where", ["header", "first chunk", "last byte", "cut short", "appended"])
def test_an_altered_archive_is_refused_before_anything_is_written(small_home, tmp_path, where):
    key = generate_recovery_key()
    archive = write_backup(small_home, tmp_path / "a.cdpbak", key).path
    data = bytearray(archive.read_bytes())
    header_end = data.index(b"}") + 1
    if where == "header":
        data[data.index(b'"created":"') + 12] ^= 1
    elif where == "first chunk":
        data[header_end + 20] ^= 1
    elif where == "last byte":
        data[-1] ^= 1
    elif where == "cut short":
        data = data[:-10]
    else:
        data += b"\x00\x00\x00\x20" + bytes(32)
    archive.write_bytes(bytes(data))
    shutil.rmtree(small_home / "state")
    with pytest.raises(ArchiveIntegrityError):
        restore_archive(archive, small_home, key, force=False)
    assert not (small_home / "state").exists()  # verified before anything is written


def test_a_large_file_spans_chunks_and_restores_byte_for_byte(small_home, tmp_path):
    key = generate_recovery_key()
    mlruns = small_home / "state" / "mlruns" / "m" / "artifacts"
    mlruns.mkdir(parents=True)
    blob = random.Random(3).randbytes(CHUNK_BYTES * 2 + 123)  # incompressible: several chunks
    (mlruns / "model.ubj").write_bytes(blob)
    report = write_backup(small_home, tmp_path / "a.cdpbak", key)
    assert report.components["registry"] == 1 and report.bytes > 2 * CHUNK_BYTES
    shutil.rmtree(small_home / "state")
    restored = restore_archive(report.path, small_home, key, force=False)
    assert restored.replaced_to is None and restored.files == sum(report.components.values())
    assert (mlruns / "model.ubj").read_bytes() == blob


def test_sqlite_is_copied_consistently_while_a_writer_holds_its_wal(small_home, tmp_path):
    db = small_home / "state" / "online_features.sqlite"
    writer = sqlite3.connect(db, isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v BLOB)")
    writer.execute("INSERT OR REPLACE INTO t VALUES ('a', x'01')")  # committed, still only in the WAL
    assert (small_home / "state" / "online_features.sqlite-wal").stat().st_size > 0
    key = generate_recovery_key()
    archive = write_backup(small_home, tmp_path / "a.cdpbak", key).path
    writer.close()
    shutil.rmtree(small_home / "state")
    restore_archive(archive, small_home, key, force=False)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT v FROM t WHERE k = 'a'").fetchone() == (b"\x01",)


def test_restore_refuses_a_home_with_state_unless_forced(small_home, tmp_path):
    key = generate_recovery_key()
    archive = write_backup(small_home, tmp_path / "a.cdpbak", key).path
    with pytest.raises(HomeNotEmpty, match="--force"):
        restore_archive(archive, small_home, key, force=False)


def test_the_recovery_key_lives_outside_the_home_and_private(small_home, tmp_path):
    key = generate_recovery_key()
    with pytest.raises(RecoveryKeyError, match="outside CDP_HOME"):
        write_recovery_key(small_home / "recovery.key", key, small_home)
    path = write_recovery_key(tmp_path / "k" / "recovery.key", key, small_home)
    assert read_recovery_key(path) == key and repr(key) == f"RecoveryKey(key_id={key.key_id!r})"
    with pytest.raises(RecoveryKeyError, match="exists"):
        write_recovery_key(path, generate_recovery_key(), small_home)  # never overwritten
    path.chmod(0o644)
    with pytest.raises(RecoveryKeyError, match="0644"):
        read_recovery_key(path)


def test_backup_needs_an_admin_and_the_refusal_is_audited(small_home, tmp_path, cdp):  # noqa: F811
    b = Backends()
    scientist = issue(b, "ds-1", "data-scientist")
    result = cdp(scientist, "backup", "--out", str(tmp_path / "a.cdpbak"))
    assert result.exit_code == 3 and "needs admin" in result.output
    assert not (tmp_path / "a.cdpbak").exists()
    denied = [r for r in Backends().audit.records() if r.action == "backup"]
    assert [(r.actor, r.outcome) for r in denied] == [("ds-1", "denied")]


def test_every_store_the_platform_keeps_in_state_is_a_component_or_left_out_on_purpose(isolated_home):
    """A store added later must be decided on: backed up, or named as rebuilt/operational here."""
    s = get_settings()
    backed_up = {e.path for e in components.entries()}
    b = Backends(s)
    paths = {
        b.oltp.path, b.data_keys.path, b.audit.path, b.audit.checkpoints.path, b.online_store.path,
        b.api_keys.path, b.keys.path, b.erasure_requests.path,
    }  # fmt: skip
    assert {str(Path(p).relative_to(s.home)) for p in paths} <= backed_up
    assert {"state/mlflow.db", "state/mlruns", "state/identities.sqlite", "state/catalog.json"} <= backed_up
