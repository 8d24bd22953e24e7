"""The `cdp` console script: every command of `app.cli`, plus `cdp demo`.

`cdp demo` runs the CLI's own command functions step by step (`app.demo` imports `app.cli`), so the demo
command is added here, above both, and `app.cli` never imports the demo.
"""

from __future__ import annotations

from app.cli import app, main
from app.demo import run_demo

__all__ = ["app", "main"]


@app.command()
def demo() -> None:
    """Run the platform end to end on the embedded default (see the README's quick start)."""
    run_demo()


if __name__ == "__main__":
    main()
