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


@monitor_app.command("shadow")
def monitor_shadow_command(
    model: Annotated[str, typer.Argument(help="Registered model, e.g. cdp-fraud.")] = "cdp-fraud",
    decide: Annotated[
        bool, typer.Option(help="Decide now: reject, switch by policy, or leave it for a person.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the decision as JSON.")] = False,
) -> None:
    """The challenger beside the champion on the live stream: events, alert rates, agreement, PR-AUC on
    the labels in, and what the approval policy would do (with --decide: does it, as the caller)."""
    shadow_check(model, decide=decide, as_json=as_json)


def shadow_check(
    model: str,
    *,
    decide: bool = False,
    as_json: bool = False,
    policy=None,  # noqa: ANN001
) -> list:
    """Print the shadow comparison of `model`'s challenger; with `decide`, apply it (as the promotion-gate
    service, after checking the caller may promote), as the monitor run does. Returns the decisions."""
    from cdp.backends import Backends
    from cdp.console.access import authorized
    from monitoring.commands import shadow_once
    from monitoring.promotion.switch import decide_switch

    backends = Backends()
    if decide:
        authorized("promote")
        decisions = shadow_once(backends, models=[model], policy=policy)
    else:
        decisions = [decide_switch(backends, model, actor="dry-run", policy=policy, dry_run=True)]
    for decision in decisions:
        if as_json:
            console.print_json(json.dumps(decision.to_dict(), default=str))
        else:
            shown = decision.line() if decide else "(dry run) " + decision.line()
            console.print(shown, markup=False, highlight=False, soft_wrap=True)
    if not decisions:
        console.print(f"{model}: no challenger in shadow")
    return decisions
