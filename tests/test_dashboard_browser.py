"""The dashboards in a real browser: `streamlit run` on 127.0.0.1, headless Chromium (the distribution's,
driven by Playwright) signs in, opens each page, waits for its charts, and finds no error element, no
browser console error and no token or PII in the rendered HTML. Screenshots go to the test's tmp folder."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from cdp.aggregates.refresh import refresh_aggregates
from cdp.backends import Backends
from cdp.compliance.leakscan import LeakScanner
from dashboards.cli import streamlit_command
from monitoring.snapshots.customers import refresh_customers
from tests.dashboard_lake import build_lake
from tests.identity_support import issue
from tests.test_dashboard_app import TOKENS, profiles
from tests.test_dashboard_model_health import build_model_health

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium binary (CI installs the distribution's)"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(tmp_path):
    """The app on a free port over a small lake; yields its URL."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    log = (tmp_path / "streamlit.log").open("w")
    server = subprocess.Popen(streamlit_command("127.0.0.1", port), cwd=ROOT, env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(url + "_stcore/health", timeout=2) as r:
                    if r.read() == b"ok":
                        break
            except OSError:
                pass
            assert server.poll() is None, (tmp_path / "streamlit.log").read_text()
            assert time.monotonic() < deadline, "the dashboards did not start"
            time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()


def test_each_page_renders_its_charts_without_errors_or_leaks(served, tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    b = Backends()
    build_lake(b)
    refresh_aggregates(b)
    refresh_customers(b, profiles())
    build_model_health(b, tmp_path)
    token = issue(b, "everyone-1", "fraud-ops", "marketing", "ml-engineer").read_text().strip()
    scanner = LeakScanner()
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        console_errors: list[str] = []
        page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: console_errors.append(str(e)))
        page.goto(served, wait_until="networkidle")
        page.get_by_label("Identity token or API key").fill(token)
        assert page.locator("[data-testid='stSidebarNav']").count() == 0  # no page reachable unsigned-in
        page.get_by_role("button", name="Sign in").click()
        for title, charts in (("Fraud operations", 6), ("Customers", 3), ("Model health", 3)):
            page.locator("section[data-testid='stSidebar']").get_by_text(title, exact=True).click()
            page.get_by_role("heading", name=title).first.wait_for(timeout=60_000)
            if charts:
                page.wait_for_function(
                    f'document.querySelectorAll(\'[data-testid="stVegaLiteChart"] canvas, '
                    f'[data-testid="stVegaLiteChart"] svg\').length >= {charts}',
                    timeout=60_000,
                )
            page.wait_for_load_state("networkidle")
            time.sleep(1)  # Streamlit finishes the run after the last delta arrives
            name = title.lower().replace(" ", "-")
            page.screenshot(path=str(tmp_path / f"dashboard-{name}.png"), full_page=True)
            assert page.locator("[data-testid='stException']").count() == 0, title
            assert page.locator("[data-testid='stAlertContentError']").count() == 0, title
            html = page.content()
            assert not TOKENS.search(page.inner_text("body")), title
            assert not list(scanner.scan_text(html, title, "html")), title
        browser.close()
    assert console_errors == []
    assert (tmp_path / "dashboard-fraud-operations.png").stat().st_size > 10_000
