"""`cdp serve` and `cdp stream run`: the inference app served, the stream scored by the fraud champion."""

from __future__ import annotations

from typing import Annotated

import typer

from cdp.console.output import console

commands = typer.Typer()
stream_commands = typer.Typer()


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
