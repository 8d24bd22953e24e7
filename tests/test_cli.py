from __future__ import annotations

from typer.testing import CliRunner

from cdp.cli import app


def test_help_lists_the_user_commands():
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("generate", "profile", "demo"):
        assert command in result.output
