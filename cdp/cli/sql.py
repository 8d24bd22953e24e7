"""`cdp sql`: the analyst sandbox, one read-only SELECT over the lake tables."""

from __future__ import annotations

from typing import Annotated

import typer

from cdp.console.access import authorized
from cdp.console.output import console, err_console

commands = typer.Typer()


@commands.command("sql")
def sql_command(
    query: Annotated[str, typer.Argument(help="One SELECT over the lake tables (DuckDB SQL).")],
    limit: Annotated[int, typer.Option(help="Rows to print.")] = 50,
) -> None:
    """Run one read-only SELECT over the lake tables (the analyst sandbox: DuckDB locally, the analyst
    Athena workgroup in AWS) and print the result; anything else is refused."""
    sql(query, limit=limit)


def sql(query: str, *, limit: int = 50) -> None:
    """Run `query` as the caller (role-checked) in the analyst sandbox; print at most `limit` rows. A
    refused query is one line on stderr, exit 2."""
    from rich.markup import escape
    from rich.table import Table

    from cdp.backends import Backends
    from cdp.catalog.port import CatalogError

    authorized("sql")
    try:
        result = Backends().catalog.analyst_query(query)
    except CatalogError as e:
        err_console.print(f"[red]{escape(' '.join(str(e).split()))}", soft_wrap=True)
        raise typer.Exit(2) from None
    table = Table(caption=f"{result.num_rows:,} rows")
    for name in result.column_names:
        table.add_column(name)
    for row in result.slice(0, limit).to_pylist():
        table.add_row(*("" if v is None else str(v) for v in row.values()))
    console.print(table)
