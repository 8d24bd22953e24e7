"""What Athena would answer, queued in moto: moto runs no SQL, so a test queues the results the next
queries return (moto's documented `/moto-api/static/athena/query-results` endpoint, answered in process).

`athena_result(table)` renders an Arrow table in the GetQueryResults shape Athena uses: the column names
repeated as the first row, every value as text in `VarCharValue`, a NULL as a datum without it, and the
column types in `ResultSetMetadata.ColumnInfo` under Athena's (Trino's) type names.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import requests

ACCOUNT = "123456789012"  # moto's default account
_ATHENA_TYPES = {
    pa.string(): "varchar",
    pa.int64(): "bigint",
    pa.int32(): "integer",
    pa.float64(): "double",
    pa.bool_(): "boolean",
    pa.date32(): "date",
}


def _text(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if isinstance(value, bool):
        return {"VarCharValue": "true" if value else "false"}
    return {"VarCharValue": str(value) if not hasattr(value, "isoformat") else value.isoformat()}


def athena_result(table: pa.Table) -> dict[str, Any]:
    """`table` as one entry of moto's query-results queue."""
    column_info = [
        {
            "CatalogName": "hive",
            "SchemaName": "",
            "TableName": "",
            "Name": f.name,
            "Label": f.name,
            "Type": _ATHENA_TYPES[f.type],
            "Precision": 0,
            "Scale": 0,
            "Nullable": "UNKNOWN",
            "CaseSensitive": pa.types.is_string(f.type),
        }  # fmt: skip
        for f in table.schema
    ]
    header = {"Data": [{"VarCharValue": name} for name in table.column_names]}
    rows = [{"Data": [_text(row[name]) for name in table.column_names]} for row in table.to_pylist()]
    return {"rows": [header, *rows], "column_info": column_info}


def queue_answers(region: str, *tables: pa.Table) -> None:
    """The next `len(tables)` query executions answer these tables, in order (an empty table with no
    columns: a statement without a result set, e.g. UNLOAD)."""
    results = [athena_result(t) if t.num_columns else {"rows": [], "column_info": []} for t in tables]
    response = requests.post(
        "http://motoapi.amazonaws.com/moto-api/static/athena/query-results",
        json={"account_id": ACCOUNT, "region": region, "results": results},
        timeout=5,
    )
    response.raise_for_status()
