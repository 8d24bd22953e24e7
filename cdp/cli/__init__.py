"""The data platform's commands: `commands` (top-level: generate, profile, load, migrate-core-banking,
batch, sql, export, whoami), `stream_commands` (stream produce and consume) and one group per concern
(audit, backup, forget, retention, identity, models, keys, crypto, mlflow); `restore` is a top-level
command. The `cdp` command composes them.

Heavy libraries are imported inside the commands so that `cdp --help` starts fast.
"""

from __future__ import annotations

import typer

from cdp.cli.api_keys import keys_app
from cdp.cli.audit import audit_app
from cdp.cli.backup import backup_app
from cdp.cli.backup import restore_commands as _restore_commands
from cdp.cli.crypto import crypto_app
from cdp.cli.identity import commands as _identity_commands
from cdp.cli.identity import identity_app
from cdp.cli.mlflow import mlflow_app
from cdp.cli.models import models_app
from cdp.cli.privacy import commands as _privacy_commands
from cdp.cli.privacy import forget_app, retention_app
from cdp.cli.source_data import commands as _source_data_commands
from cdp.cli.sql import commands as _sql_commands
from cdp.cli.stream import stream_commands

__all__ = [
    "audit_app",
    "backup_app",
    "commands",
    "crypto_app",
    "forget_app",
    "identity_app",
    "keys_app",
    "mlflow_app",
    "models_app",
    "retention_app",
    "stream_commands",
]

commands = typer.Typer()
for _part in (
    _source_data_commands,
    _sql_commands,
    _privacy_commands,
    _identity_commands,
    _restore_commands,
):
    commands.add_typer(_part)
