"""Running `cdp` in tests as the console script runs it: one-line errors, exit codes, an identity."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.cli import main
from cdp.settings import get_settings


@dataclass
class Ran:
    exit_code: int
    output: str  # stdout then stderr
    stdout: str = ""


@pytest.fixture
def cdp(monkeypatch, capfd):  # noqa: ANN201
    """`cdp(identity_file or None, *args)`: the command's exit code and output."""

    def run(identity: Path | None, *args: str) -> Ran:
        if identity is not None:
            monkeypatch.setenv("CDP_IDENTITY_FILE", str(identity))
        get_settings.cache_clear()
        monkeypatch.setattr(sys, "argv", ["cdp", *args])
        capfd.readouterr()
        code = 0
        try:
            main()
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        captured = capfd.readouterr()
        return Ran(code, captured.out + captured.err, captured.out)

    return run
