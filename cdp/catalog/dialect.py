"""SQL written once (DuckDB dialect) and transpiled for the engines that run it elsewhere."""

from __future__ import annotations

import sqlglot


def to_athena(sql: str) -> str:
    """Transpile DuckDB SQL to Athena (Trino) SQL; raises sqlglot.ParseError on invalid SQL."""
    return sqlglot.transpile(sql, read="duckdb", write="athena", pretty=False)[0]


def parses_as_trino(sql: str) -> bool:
    """True when `sql` is valid Trino SQL (what Athena engine v3 speaks)."""
    try:
        sqlglot.parse_one(sql, read="trino")
    except sqlglot.errors.ParseError:
        return False
    return True
