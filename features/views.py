"""Every feature view, and the committed SQL files rendered from them."""

from __future__ import annotations

from pathlib import Path

from cdp.catalog.port import SplitBy
from features.asof_render import render_asof_view
from features.asof_spec import AsOfFeatureView
from features.customer import CUSTOMER_VIEW
from features.fraud import FRAUD_VIEW
from features.render import SQL_DIR, render_event_view
from features.spec import EventFeatureView

EVENT_VIEWS: dict[str, EventFeatureView] = {FRAUD_VIEW.name: FRAUD_VIEW}
AS_OF_VIEWS: dict[str, AsOfFeatureView] = {CUSTOMER_VIEW.name: CUSTOMER_VIEW}
ALL_VIEWS = sorted([*EVENT_VIEWS, *AS_OF_VIEWS])


def sql_path(view: str, dialect: str = "duckdb") -> Path:
    """Where the view's rendered SQL is committed (`sql/<view>.sql`, `sql/athena/<view>.sql`)."""
    return SQL_DIR / f"{view}.sql" if dialect == "duckdb" else SQL_DIR / dialect / f"{view}.sql"


def rendered_sql(view: str, dialect: str = "duckdb") -> str:
    """What the definitions render now (DuckDB SQL, or its Athena translation)."""
    if view in AS_OF_VIEWS:
        sql = render_asof_view(AS_OF_VIEWS[view])
    else:
        sql = render_event_view(EVENT_VIEWS[view])
    return sql if dialect == "duckdb" else _athena_file(view, sql)


def _athena_file(name: str, sql: str) -> str:
    import sqlglot

    body = sqlglot.transpile(sql, read="duckdb", write="athena", pretty=True)[0]
    return f"-- Athena (Trino) translation of ../{name}.sql by sqlglot: do not edit.\n{body}\n"


def view_sql(view: str) -> str:
    """The committed DuckDB SQL of a view (what the offline path runs)."""
    return sql_path(view).read_text()


def split_by(view: str) -> SplitBy | None:
    """How the view's SQL may be computed piecewise: an event view's windows, first-seen lookups and
    joins all stay within one value of its key (a card), so it is the union of its results over groups
    of keys. An as-of view is computed in one go."""
    if view in EVENT_VIEWS:
        return SplitBy("transactions", EVENT_VIEWS[view].key)
    return None


def write_sql_files() -> list[Path]:
    """Re-render every view's committed SQL files; returns the paths written."""
    paths = []
    for name in ALL_VIEWS:
        for dialect in ("duckdb", "athena"):
            path = sql_path(name, dialect)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(rendered_sql(name, dialect))
            paths.append(path)
    return paths
