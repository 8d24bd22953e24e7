"""`cdp`: the single command-line entry point of the platform, composed of each package's commands.

Every package owns its commands (`cdp.cli`, `features.cli`, `inference.cli`, `monitoring.cli`,
`engagement.cli`); this
module only puts them together, adds `cdp demo`, and runs the result with the shared one-line error
handling (`cdp.console.entry`). Commands are listed in the order below: top-level commands first, then
the groups.
"""

from __future__ import annotations

import typer

from cdp import cli as cdp_cli
from cdp.console.entry import run_command_line
from cdp.console.output import err_console
from dashboards import cli as dashboards_cli
from engagement.cli import campaign_app, notify_app
from features.cli import features_app
from inference import cli as inference_cli
from monitoring import cli as monitoring_cli

app = typer.Typer(
    name="cdp",
    help="Secure Customer Data Platform and ML platform for banks.",
    no_args_is_help=True,
    add_completion=False,
)

demo_commands = typer.Typer()
DEMO_STOPPED_EXIT = 1  # as `run-pipeline` when its run failed


@demo_commands.command("demo")
def demo_command() -> None:
    """Run the platform end to end on the embedded default (see the README's quick start)."""
    from app.demo import DemoStopped, run_demo

    try:
        run_demo()
    except DemoStopped as stopped:  # a model the rest needs is missing: one line, no traceback
        err_console.print(str(stopped), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(DEMO_STOPPED_EXIT) from None


# `stream` spans two packages: the data platform replays and lands it, inference scores it.
stream_app = typer.Typer(
    name="stream", help="The real-time path: replay the newest transactions, consume them."
)
stream_app.add_typer(cdp_cli.stream_commands)
stream_app.add_typer(inference_cli.stream_commands)

for part in (
    cdp_cli.commands,
    inference_cli.commands,
    monitoring_cli.commands,
    dashboards_cli.commands,
    demo_commands,
    stream_app,
    cdp_cli.audit_app,
    cdp_cli.backup_app,
    cdp_cli.forget_app,
    cdp_cli.retention_app,
    cdp_cli.identity_app,
    features_app,
    cdp_cli.models_app,
    cdp_cli.keys_app,
    cdp_cli.crypto_app,
    cdp_cli.mlflow_app,
    monitoring_cli.monitor_app,
    notify_app,
    campaign_app,
):
    app.add_typer(part)


def main() -> None:
    """Console-script entry point: private files, then the command; an error ends it with one line."""
    run_command_line(app)


if __name__ == "__main__":
    main()
