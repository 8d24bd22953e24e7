"""`cdp promote` and `cdp monitor run`: the promotion gate and one pass of the monitoring loop."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from cdp.console.output import console, err_console, print_timeline

commands = typer.Typer()
monitor_app = typer.Typer(name="monitor", help="The monitoring loop: drift, alarms, retraining rules.")


@commands.command("promote")
def promote_command(
    model: Annotated[str, typer.Argument(help="Registered model, e.g. cdp-fraud.")],
    version: Annotated[int | None, typer.Option(help="Candidate version (default: newest pending).")] = None,
    dry_run: Annotated[bool, typer.Option(help="Decide but change nothing.")] = False,
    report: Annotated[Path | None, typer.Option(help="Write the decision as JSON to this file.")] = None,
) -> None:
    """The promotion gate (what CodeBuild runs): candidate vs champion on the same holdout, then gates.

    Runs as the caller's identity (role model-approver). Exits 0 whatever the decision (a rejection is a
    decision); 2 when the gate itself cannot run; 3 when the identity may not promote."""
    from monitoring.promotion.__main__ import run_promotion

    code = run_promotion(model, version, dry_run, report)
    if code:
        raise typer.Exit(code)


@monitor_app.command("run")
def monitor_run_command(
    model: Annotated[
        list[str] | None, typer.Option(help="Model to watch (repeatable; default CDP_MONITOR_MODELS).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole run as JSON.")] = False,
) -> None:
    """Run the drift job once, publish metrics, evaluate the alarms and dispatch their events."""
    from cdp.backends import Backends
    from monitoring.commands import monitor_once

    run = monitor_once(Backends(), models=model)
    if as_json:
        console.print_json(json.dumps(run.to_dict(), default=str))
        return
    print_timeline(run.timeline)
    for name, paths in run.reports.items():
        console.print(f"{name}: drift report {paths['html']}  (JSON: {paths['json']})")
    for name, why in run.skipped_models.items():
        err_console.print(f"{name}: no drift job ({why})")


@monitor_app.command("slo")
def monitor_slo_command(
    window_days: Annotated[
        int | None, typer.Option(help="Error-budget window in days (default CDP_SLO_WINDOW_DAYS).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the objectives as JSON.")] = False,
) -> None:
    """Each service-level objective: its target, current value and the error budget left over the window
    (publishes the freshness indicators and evaluates the SLO alarms first)."""
    from dataclasses import replace

    from cdp.backends import Backends
    from monitoring.slo import Objectives, check_slos

    b = Backends()
    objectives = Objectives.from_settings(b.settings)
    if window_days is not None:
        objectives = replace(objectives, window_days=window_days)
    statuses = check_slos(b, objectives)
    if as_json:
        console.print_json(json.dumps([s.to_dict() for s in statuses], default=str))
        return
    console.print(f"service-level objectives over the last {objectives.window_days} days:", highlight=False)
    for s in statuses:
        window = "no data" if s.sli is None else f"{s.sli:.3%} of {s.total:,.0f} good"
        left = "" if s.budget_left is None else f", error budget left {s.budget_left:.0%}"
        console.print(
            f"{s.name}: {s.objective}, target {s.target:.1%}; now {s.current}; {window}{left} "
            f"(alarm {s.alarm or '-'})",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
