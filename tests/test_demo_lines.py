"""What the demo prints about governance and where to look next: the champion's model card and the
dashboard command with its URL and identity tokens (the functions the demo calls, on a tiny registry)."""

from __future__ import annotations

from pathlib import Path

import pytest

import app.demo as demo
from cdp.backends import Backends
from cdp.registry import card_store
from cdp.registry.model_card import ModelCard
from cdp.settings import Settings, get_settings
from tests.contract.test_registry_contract import FEATURES, lineage, write_tiny_model


@pytest.fixture
def backends(isolated_home) -> Backends:
    return Backends(Settings(home=isolated_home))


def _champion_with_card(backends: Backends, tmp_path: Path) -> int:
    registry = backends.model_registry
    version = registry.register("cdp-fraud", write_tiny_model(tmp_path / "model"), {"pr_auc": 0.4}, {},
                                lineage(), registered_by="pipeline-runner").version  # fmt: skip
    card = ModelCard(
        model_name="cdp-fraud", version=version, kind="classification", intended_use="rank transactions",
        owner="fraud-analytics", training_data={"statement": "Trained on synthetic data."},
        features={"inputs": list(FEATURES)}, registered_by="pipeline-runner",
    )  # fmt: skip
    card_store.save(registry, card)
    registry.approve("cdp-fraud", version, "model-risk-alice", "first champion")
    return version


def test_the_demo_prints_the_champions_model_card(backends, tmp_path, capsys):
    version = _champion_with_card(backends, tmp_path)
    demo._demo_model_card("cdp-fraud")
    out = capsys.readouterr().out
    assert out.startswith(f"# Model card: cdp-fraud v{version}")
    for text in ("## Intended use", "rank transactions", "Trained on synthetic data", "## Limitations",
                 f"`cdp models card cdp-fraud {version}`", "`cdp models inventory`"):  # fmt: skip
        assert text in out


def test_without_a_champion_the_demo_says_so_in_one_line(backends, capsys):
    demo._demo_model_card("cdp-fraud")
    out = capsys.readouterr().out
    assert out.startswith("model card: ") and "has no champion" in out and len(out.strip().splitlines()) == 1


def test_the_demo_ends_with_the_dashboard_command_its_url_and_tokens(monkeypatch, isolated_home):
    monkeypatch.setenv("CDP_DASHBOARD_PORT", "8765")
    get_settings.cache_clear()
    s = get_settings()
    line = demo.dashboard_line(s)
    assert line.startswith(f"Dashboards: CDP_HOME={s.home} cdp dashboard, then open http://127.0.0.1:8765/")
    for name in ("fraud-analyst-1", "marketing-analyst-1", "data-scientist-1"):
        assert str(s.identities_dir / f"{name}.token") in line
    assert "\n" not in line
