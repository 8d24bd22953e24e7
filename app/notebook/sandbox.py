"""A throw-away platform home for a notebook (what CI executes them on): small generated IBM-format data
through the platform's own paths, and the identities a fresh platform issues.

`start_sandbox` points `CDP_HOME` at a new temporary folder, bootstraps an admin who issues
`data-scientist-1`, `model-approver-1` and the pipeline and promotion-gate services (tokens 0600 under
`<home>/identities`), generates `users` users, loads core banking, runs the batch path and builds the
feature tables; with `champion`, runs the fraud pipeline as the pipeline service and approves its version
as `model-approver-1`; with `stream`, replays the stream through core banking into the lake and scores it
with the champion. The caller is left acting as `data-scientist-1` (`CDP_IDENTITY_FILE`).

Small data gives small holdouts: the sandbox lowers the promotion gate's minimum holdout (rows and
frauds) for its own home only (`CDP_PROMOTION_MIN_HOLDOUT_*`), so the gate has something to judge.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cdp.backends import Backends
from cdp.security.identity.local import write_token_file
from cdp.security.identity.port import ML_PIPELINE_SERVICE, SERVICE_ROLES
from cdp.settings import get_settings

ADMIN = "admin"
DATA_SCIENTIST = "data-scientist-1"
APPROVER = "model-approver-1"
PEOPLE = {DATA_SCIENTIST: ("data-scientist",), APPROVER: ("model-approver",)}
SMALL_DATA_SETTINGS = {
    "CDP_WORKERS": "1",
    "CDP_PROMOTION_MIN_HOLDOUT_ROWS": "200",
    "CDP_PROMOTION_MIN_HOLDOUT_POSITIVES": "3",
}


@dataclass(frozen=True)
class Sandbox:
    """The sandbox's home and its identities' token files."""

    home: Path
    identities: dict[str, Path]

    def use(self, name: str) -> None:
        """Act as identity `name` from now on (`CDP_IDENTITY_FILE`)."""
        os.environ["CDP_IDENTITY_FILE"] = str(self.identities[name])
        get_settings.cache_clear()

    @contextmanager
    def acting_as(self, name: str) -> Iterator[None]:
        """Act as `name` inside the block, then as before."""
        before = os.environ.get("CDP_IDENTITY_FILE")
        self.use(name)
        try:
            yield
        finally:
            if before is None:
                os.environ.pop("CDP_IDENTITY_FILE", None)
            else:
                os.environ["CDP_IDENTITY_FILE"] = before
            get_settings.cache_clear()


def _issue_identities(backends: Backends) -> dict[str, Path]:
    provider = backends.identity
    folder = backends.settings.identities_dir
    first = provider.issue(ADMIN, ["admin"], expires_days=1, issued_by=None)
    write_token_file(folder / f"{ADMIN}.token", first.token)
    paths = {ADMIN: folder / f"{ADMIN}.token"}
    for name, roles in PEOPLE.items():
        issued = provider.issue(name, roles, expires_days=1, issued_by=ADMIN)
        paths[name] = folder / f"{name}.token"
        write_token_file(paths[name], issued.token)
    for name, roles in SERVICE_ROLES.items():
        issued = provider.issue(name, roles, expires_days=1, issued_by=ADMIN)
        paths[name] = provider.service_token_path(name)
        write_token_file(paths[name], issued.token)
    return paths


def start_sandbox(
    users: int = 6, seed: int = 3, *, champion: bool = False, stream: bool = False, root: Path | None = None
) -> Sandbox:
    """A fresh home (a new folder in `root`, default the system's temporary folder) with `users` generated
    users through batch and features (see the module doc)."""
    from cdp.cli.source_data import batch, generate, load
    from features.commands import build

    home = Path(tempfile.mkdtemp(prefix="cdp-notebook-", dir=root))
    os.environ["CDP_HOME"] = str(home)
    os.environ.update(SMALL_DATA_SETTINGS)
    os.environ.pop("CDP_IDENTITY_FILE", None)
    get_settings.cache_clear()
    s = get_settings()
    sandbox = Sandbox(home, _issue_identities(Backends(s)))
    generate(s, users=users, out=s.data_dir, seed=seed, start=s.start, end=s.end, workers=1)
    load(s.data_dir)
    batch(s.data_dir)
    build(s)
    if champion or stream:
        _first_champion(sandbox)
    if stream:
        _score_stream(sandbox)
    sandbox.use(DATA_SCIENTIST)
    return sandbox


def _first_champion(sandbox: Sandbox) -> None:
    """The fraud pipeline run as the pipeline service; its version approved by the model approver."""
    from cdp.security.identity.authorize import authorize
    from pipelines.run import run_local_pipeline

    b = Backends(get_settings())
    service = authorize(b.identity, b.audit, "model-register", b.identity.service(ML_PIPELINE_SERVICE))
    record, _ = run_local_pipeline("fraud", b, registered_by=service.id)
    if record.status != "Succeeded":
        raise RuntimeError(f"the sandbox's fraud pipeline failed: {record.failure_reason}")
    register = next(s for s in record.steps if s.type == "RegisterModel")
    with sandbox.acting_as(APPROVER):
        b = Backends(get_settings())
        approver = authorize(b.identity, b.audit, "model-approve")
        b.model_registry.approve(
            "cdp-fraud", int(register.properties["ModelPackageVersion"]), approver.id,
            "first champion of a sandbox", role=approver.role,
        )  # fmt: skip


def _score_stream(sandbox: Sandbox) -> None:
    """The stream replayed through core banking into the lake, then scored by the champion."""
    from cdp.cli.stream import stream_consume, stream_produce
    from features.cli import features_sync_online
    from inference.cli import stream_run

    s = get_settings()
    stream_produce(s.data_dir)
    stream_consume(follow=False)
    features_sync_online(until=None)
    stream_run(follow=False)
