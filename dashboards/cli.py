"""`cdp dashboard`: start the dashboards (Streamlit) on this machine, and `cdp dashboard-refresh`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import typer

from cdp.console.output import console

commands = typer.Typer()

APP_SCRIPT = Path(__file__).with_name("streamlit_app.py")


def streamlit_command(host: str, port: int) -> list[str]:
    """The `streamlit run` command line of the app (no telemetry, no browser opened, no file watcher)."""
    return [
        sys.executable, "-m", "streamlit", "run", str(APP_SCRIPT),
        "--server.address", host, "--server.port", str(port), "--server.headless", "true",
        "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false",
        "--global.developmentMode", "false", "--client.toolbarMode", "viewer",
        "--server.enableXsrfProtection", "true", "--client.showSidebarNavigation", "false",
    ]  # fmt: skip


def dashboard_url(host: str, port: int) -> str:
    return f"http://{host}:{port}/"


@commands.command("dashboard")
def dashboard(
    port: int = typer.Option(None, help="Port (default CDP_DASHBOARD_PORT, 8501)."),
    host: str = typer.Option(None, help="Address to bind (default CDP_DASHBOARD_HOST, 127.0.0.1)."),
) -> None:
    """Start the dashboards over the aggregate tables; sign in with an identity token or API key."""
    from cdp.settings import get_settings

    s = get_settings()
    host, port = host or s.dashboard_host, port or s.dashboard_port
    console.print(f"dashboards at {dashboard_url(host, port)} (Ctrl-C stops them)")
    env = {**os.environ, "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    raise typer.Exit(subprocess.call(streamlit_command(host, port), env=env))


@commands.command("dashboard-refresh")
def dashboard_refresh(
    full: bool = typer.Option(False, "--full", help="Rebuild the lake aggregates from the whole lake."),
) -> None:
    """Refresh every dashboard table now (the batch job, the stream and the monitor do it on their own);
    the lake aggregates recompute only the months whose files changed, unless `--full`."""
    from cdp.backends import Backends
    from monitoring.snapshots.refresh import refresh_dashboard_tables

    summary = refresh_dashboard_tables(Backends(), after="cdp dashboard-refresh", full=full)
    console.print_json(json.dumps(summary))
