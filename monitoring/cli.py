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


@commands.command("evaluate")
def evaluate_command(
    data: Annotated[str, typer.Argument(help="A labelled IBM-format transactions CSV, or a lake table.")],
    model: Annotated[str, typer.Option(help="Registered model, e.g. cdp-fraud.")] = "cdp-fraud",
    version: Annotated[int | None, typer.Option(help="Model version (default: the champion).")] = None,
    out: Annotated[Path | None, typer.Option(help="Folder of evaluation.json and evaluation.html.")] = None,
    record: Annotated[
        bool,
        typer.Option(
            "--record",
            help="Keep the summary in the version's model card as a labelled external evaluation "
            "(needs model-approver or data-scientist).",
        ),
    ] = False,
) -> None:
    """Evaluate a model version on labelled transactions: PR-AUC, ROC-AUC, precision/recall at the
    threshold and the alert budget, calibration, episode detection, bootstrap intervals over episodes.
    With --record, the summary (data fingerprint, counts, figures and intervals, who, when) is added to the
    version's model card (`cdp models card MODEL VERSION`)."""
    from cdp.backends import Backends
    from cdp.console.access import authorized
    from inference.cli import one_line_errors
    from monitoring.evaluation import EvaluationInputError, evaluate_model

    caller = authorized("record-evaluation") if record else None  # refused before any scoring
    backends = Backends()
    target = (
        out or backends.settings.home / "evaluations" / f"{model}-v{version or 'champion'}-{Path(data).stem}"
    )
    with one_line_errors():
        try:
            report = evaluate_model(model, version, data, out_dir=target, backends=backends)
        except EvaluationInputError as error:
            err_console.print(f"error: {error}", markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
    m, ci = report.metrics, report.confidence_intervals

    def figure(name: str, value: float | None) -> str:
        shown = "n/a" if value is None or value != value else f"{value:.3f}"
        if name in ci:
            shown += f" [{ci[name][0]:.3f}, {ci[name][1]:.3f}]"
        return f"{name} {shown}"

    console.print(
        f"{report.model} v{report.version} on {report.rows:,} rows, {report.frauds:,} frauds, "
        f"{int(report.episodes['episodes'] or 0):,} episodes"
    )
    for name in ("pr_auc", "roc_auc", "precision_at_threshold", "recall_at_threshold",
                 "precision_at_budget", "recall_at_budget", "brier"):  # fmt: skip
        console.print("  " + figure(name, m.get(name)))
    console.print("  " + figure("episode_detection_rate", report.episodes.get("episode_detection_rate")))
    r = report.reconciliation
    if r:
        console.print(f"rows in {r['rows_in']:,} = {r['scored']:,} scored + {r['quarantined']:,} quarantined")
    console.print(f"report: {target / 'evaluation.html'}  (JSON: {target / 'evaluation.json'})")
    if caller is not None:
        from monitoring.evaluation.card_record import record_in_card

        record_in_card(backends, report, caller.id, caller.role)
        console.print(
            f"recorded in the model card of {report.model} v{report.version} "
            f"(cdp models card {report.model} {report.version})",
            highlight=False,
        )


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
