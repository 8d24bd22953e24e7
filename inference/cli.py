"""`cdp serve`, `cdp score`, `cdp stream run` and `cdp explain`: the inference app served, a file or table
scored by any model version, the stream scored by the fraud champion, a past decision reproduced from the
lake."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from cdp.console.output import console, err_console

commands = typer.Typer()
stream_commands = typer.Typer()
INPUT_ERROR_EXIT = 2


@contextmanager
def one_line_errors() -> Iterator[None]:
    """Errors of the input or the model as one line (exit 2): their messages name files, fields and
    reasons, never values."""
    from cdp.transform.port import TransformError
    from inference.batch_input import BatchInputError
    from inference.batch_scoring import ScoringInputError
    from inference.fraud_scoring import FeatureMismatchError

    try:
        yield
    except (BatchInputError, ScoringInputError, FeatureMismatchError, TransformError) as error:
        err_console.print(
            f"error: {str(error).splitlines()[0]}", markup=False, highlight=False, soft_wrap=True
        )
        raise typer.Exit(INPUT_ERROR_EXIT) from None


@commands.command("serve")
def serve_command(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8080,
    sagemaker: Annotated[
        bool, typer.Option(help="Serve /invocations without API keys (in a container).")
    ] = False,
) -> None:
    """Run the inference app (SageMaker contract + public API, docs at /docs) with uvicorn."""
    from inference.serve import serve as run

    console.print(f"serving on http://{host}:{port}  (OpenAPI: /openapi.json, docs: /docs)")
    run(host=host, port=port, sagemaker=sagemaker)


@stream_commands.command("run")
def stream_run_command(
    follow: Annotated[bool, typer.Option(help="Keep polling after catching up.")] = False,
) -> None:
    """Score the stream with the fraud champion: online features, score, enriched rows and alerts."""
    stream_run(follow=follow)


def stream_run(*, follow: bool = False) -> None:
    """Score the stream until caught up (or, with `follow`, keep polling); print the handler's counts."""
    from inference.streaming.runner import run_stream

    r = run_stream(follow=follow)
    console.print(
        f"stream handler: {r.records:,} records, {r.deliveries:,} batches, "
        f"{r.partial_failures:,} with failed records, {r.dead_lettered:,} dead-lettered"
    )


@commands.command("score")
def score_command(
    data: Annotated[str, typer.Argument(help="An IBM-format transactions CSV, or a lake table name.")],
    model: Annotated[str, typer.Option(help="Registered model, e.g. cdp-fraud.")] = "cdp-fraud",
    version: Annotated[int | None, typer.Option(help="Model version (default: the alias).")] = None,
    alias: Annotated[str, typer.Option(help="Alias used without --version.")] = "champion",
    out: Annotated[Path | None, typer.Option(help="Scores file (.csv or .parquet).")] = None,
    reasons: Annotated[
        str | None, typer.Option(help="Reason codes for: alerts, all or none (default CDP_SCORE_REASONS).")
    ] = None,
) -> None:
    """Score every transaction of a file or lake table with a model version (batch transform).

    Features are computed point-in-time from the lake and the input; bad rows are quarantined with a
    reason, and rows in = scored + quarantined is printed."""
    from cdp.backends import Backends
    from inference.batch_scoring import score_transactions, write_scores

    if reasons not in (None, "alerts", "all", "none"):
        err_console.print("error: --reasons must be alerts, all or none")
        raise typer.Exit(2)
    backends = Backends()
    with one_line_errors():
        frame = score_transactions(model, version, data, alias=alias, backends=backends, reasons=reasons)  # type: ignore[arg-type]
    a = frame.attrs
    target = out or backends.settings.home / "scores" / f"{a['model']}-v{a['version']}-{Path(data).stem}.csv"
    write_scores(frame, target)
    console.print(
        f"{a['model']} v{a['version']} at threshold {a['threshold']:.4f}: {a['rows_in']:,} rows in = "
        f"{a['scored']:,} scored + {a['quarantined']:,} quarantined; {int(frame['alert'].sum()):,} alerts",
        soft_wrap=True,
    )
    for reason, count in sorted(a["quarantine_reasons"].items()):
        console.print(f"  quarantined: {count:,} {reason}")
    if a["quarantine_path"]:
        console.print(f"quarantine: {a['quarantine_path']}")
    console.print(f"scores: {target}")


@commands.command("explain")
def explain_command(
    txn_id: Annotated[str, typer.Argument(help="The transaction id of a scored event (txn_id).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the explanation as JSON.")] = False,
) -> None:
    """Reproduce a past fraud decision: features recomputed point in time from the lake, scored by the same
    model version; prints the reason codes and whether they match what was served. Exit 1 when not
    reproduced, 2 when the event cannot be found."""
    explain(txn_id, as_json=as_json)


def explain(txn_id: str, *, as_json: bool = False) -> bool:
    """`cdp explain TXN_ID` as the caller (fraud-ops, data-scientist, analyst or model-approver; audited
    with the event's customer token). Returns whether the decision was reproduced."""
    from cdp.backends import Backends
    from cdp.console.access import authorized
    from cdp.console.output import err_console
    from inference.explain import ExplainError, explain_transaction

    caller = authorized("explain")
    backends = Backends()
    try:
        explanation = explain_transaction(backends, txn_id)
    except ExplainError as error:
        err_console.print(f"explain: {error}", markup=False, highlight=False)
        raise typer.Exit(2) from None
    backends.audit.append(
        actor=caller.id, role=caller.role, action="explain", customer_token=explanation.customer_token,
        fields=[], outcome="allowed",
        details={"txn_id": txn_id, "model": explanation.model, "version": explanation.model_version,
                 "reproduced": explanation.reproduced},
    )  # fmt: skip
    if as_json:
        console.print_json(data=explanation.to_dict())
    else:
        for line in explanation.lines():
            console.print(line, markup=False, highlight=False, soft_wrap=True)
    if not explanation.reproduced:
        raise typer.Exit(1)
    return True
