"""SQL written once (DuckDB dialect) and transpiled for the engines that run it elsewhere."""

from __future__ import annotations

import logging
from contextlib import contextmanager

import sqlglot
from sqlglot import exp

from cdp.catalog.port import CatalogError, QueryRefused


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


@contextmanager
def _quiet_parser():
    """sqlglot logs a warning when it falls back to an opaque command (e.g. EXPLAIN): the refusal says it."""
    log = logging.getLogger("sqlglot")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def analyst_select_to_athena(sql: str, max_chars: int = 100_000) -> str:
    """The Athena SQL of an analyst's query (DuckDB dialect), after sqlglot's parse shows it is exactly one
    read-only query (SELECT, WITH ... SELECT, UNION/INTERSECT/EXCEPT of them, without SELECT ... INTO);
    anything else raises `QueryRefused`, SQL that does not parse `CatalogError`."""
    if len(sql) > max_chars:
        raise QueryRefused(f"analyst SQL: {len(sql):,} characters; at most {max_chars:,}")
    try:
        with _quiet_parser():
            statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    except (sqlglot.errors.SqlglotError, RecursionError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CatalogError(f"analyst SQL: {first}") from None
    if len(statements) != 1:
        raise QueryRefused(f"analyst SQL: expected exactly one statement, got {len(statements)}")
    (statement,) = statements
    if not isinstance(statement, exp.Query):
        raise QueryRefused(f"analyst SQL: only SELECT queries are allowed, not {statement.key.upper()}")
    if any(select.args.get("into") for select in statement.find_all(exp.Select)):
        raise QueryRefused("analyst SQL: only SELECT queries are allowed, not SELECT ... INTO")
    return statement.sql(dialect="athena")


def column_only_names(sql: str) -> set[str]:
    """The names `sql` uses only as columns, never as tables (lower case), from sqlglot's parse; empty when
    it does not parse. A query's connection needs no view for them (e.g. `sum(transactions)` over an
    aggregate table must not open the `transactions` table's thousands of files)."""
    try:
        with _quiet_parser():
            statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    except (sqlglot.errors.SqlglotError, RecursionError):
        return set()
    columns, tables = set(), set()
    for statement in statements:
        columns |= {c.name.lower() for c in statement.find_all(exp.Column)}
        tables |= {t.name.lower() for t in statement.find_all(exp.Table)}
    return columns - tables


def tables_read(sql: str) -> set[str]:
    """The tables one read-only query (DuckDB dialect) reads, lower case, its own CTEs left out, from
    sqlglot's parse. Not exactly one SELECT (or WITH ... SELECT, UNION of them; no SELECT ... INTO), or a
    table named with a schema or catalog: `QueryRefused`; SQL that does not parse: `CatalogError`."""
    try:
        with _quiet_parser():
            statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    except (sqlglot.errors.SqlglotError, RecursionError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CatalogError(f"query failed: {first}") from None
    if len(statements) != 1 or not isinstance(statements[0], exp.Query):
        raise QueryRefused("read session: exactly one SELECT per query")
    (statement,) = statements
    if any(select.args.get("into") for select in statement.find_all(exp.Select)):
        raise QueryRefused("read session: exactly one SELECT per query, not SELECT ... INTO")
    ctes = {cte.alias_or_name.lower() for cte in statement.find_all(exp.CTE)}
    read = set()
    for table in statement.find_all(exp.Table):
        if table.args.get("db") or table.args.get("catalog") or not table.name:
            raise QueryRefused(f"read session: table {table.sql(dialect='duckdb')} is not one of its tables")
        read.add(table.name.lower())
    return read - ctes
