"""How a command line runs: private files first, then the command; any error ends it with one line."""

from __future__ import annotations

import sys

import typer

from cdp.console.output import err_console


def run_command_line(app: typer.Typer) -> None:
    """Run `app` on `sys.argv`; an interrupt exits 130, an error prints one line (`errors.report_error`)
    and exits with its code."""
    from cdp.filemodes import make_private
    from cdp.settings import get_settings

    logs_dir = None
    try:
        settings = get_settings()
        logs_dir = settings.logs_dir
        make_private(settings)
        app()
    except KeyboardInterrupt:
        err_console.print("interrupted", markup=False)
        sys.exit(130)
    except Exception as error:  # noqa: BLE001 - the one place every command's error ends
        from cdp.console.errors import report_error

        line, code = report_error(error, logs_dir)
        err_console.print(line, markup=False, highlight=False, soft_wrap=True)
        sys.exit(code)
