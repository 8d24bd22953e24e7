"""`cdp mlflow ui`: open the tracked experiments (and the local model registry) in MLflow's UI."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from typing import Annotated

import typer

from cdp.console.output import console

mlflow_app = typer.Typer(name="mlflow", help="Experiment tracking: training runs in MLflow.")


@mlflow_app.command("ui")
def mlflow_ui_command(
    print_only: Annotated[
        bool, typer.Option("--print-only", help="Print the command; start nothing.")
    ] = False,
    port: Annotated[int | None, typer.Option(help="Port (default CDP_MLFLOW_UI_PORT).")] = None,
) -> None:
    """Serve the MLflow UI over the platform's experiments on 127.0.0.1 (`mlflow ui --backend-store-uri
    ...`); in AWS, say how to open the SageMaker managed MLflow server's UI."""
    mlflow_ui(print_only=print_only, port=port)


def mlflow_ui(*, print_only: bool = False, port: int | None = None) -> None:
    """Print the `mlflow ui` command for the platform's store and, unless `print_only`, run it until
    interrupted. A remote tracking server: print how to open its own UI."""
    from cdp.backends import Backends

    backends = Backends()
    tracker = backends.experiment_tracker
    command = tracker.ui_command(port or backends.settings.mlflow_ui_port)
    if command is None:
        console.print(tracker.remote_ui_hint(), markup=False, soft_wrap=True)
        return
    console.print(shlex.join(command), markup=False, soft_wrap=True)
    if print_only:
        return
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    try:
        subprocess.run([sys.executable, "-m", *command], env=env, check=False)
    except KeyboardInterrupt:
        pass
