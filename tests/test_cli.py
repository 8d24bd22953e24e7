from __future__ import annotations

from typer.testing import CliRunner

from app.main import app


def test_help_lists_the_user_commands():
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("generate", "profile", "demo"):
        assert command in result.output


def test_demo_runs_end_to_end_and_again(isolated_home, monkeypatch):
    """`make demo`'s command on a tiny scale: every step reports, and a second run resumes cleanly."""
    monkeypatch.setenv("CDP_USERS", "3")
    monkeypatch.setenv("CDP_WORKERS", "1")
    for _ in range(2):
        result = CliRunner().invoke(app, ["demo"])
        assert result.exit_code == 0, result.output
        for line in (
            "Realism checks",
            "core banking:",
            "lake:",
            "lake sink:",
            "fraud view:",
            "pipeline runs",
            "# Model card: cdp-fraud v",
            "Trained on synthetic data",
            "stream handler:",
            "monitor run finished",
            "the loop",
            "shadow comparison",
            "start the API with",
            "notices:",
            "audit log intact",
            "demo finished",
        ):
            assert line in result.output
    assert "refused" in result.output
