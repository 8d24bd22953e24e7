"""AWS catalog: Glue tables over the S3 lake, queried with Athena (SQL transpiled from DuckDB's dialect)."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from cdp.catalog.athena_session import AthenaReadSession
from cdp.catalog.dialect import analyst_select_to_athena, to_athena
from cdp.catalog.port import (
    MAX_ROWS_PER_FILE,
    PARTITION_VALUES,
    AnalystLimits,
    CatalogError,
    QueryFiles,
    QueryRefused,
    SplitBy,
    TableInfo,
)

if TYPE_CHECKING:
    from cdp.settings import Settings

_PARQUET = {
    "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"},
}


def glue_type(t: pa.DataType) -> str:
    """The Glue/Hive type of an Arrow type."""
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_int8(t) or pa.types.is_int16(t):
        return "smallint"
    if pa.types.is_int32(t):
        return "int"
    if pa.types.is_integer(t):
        return "bigint"
    if pa.types.is_floating(t):
        return "double"
    if pa.types.is_timestamp(t):
        return "timestamp"
    if pa.types.is_date(t):
        return "date"
    if pa.types.is_list(t):
        return f"array<{glue_type(t.value_type)}>"
    if pa.types.is_struct(t):  # e.g. the scored rows' reason codes, array<struct<feature:...>>
        return "struct<" + ",".join(f"{f.name}:{glue_type(f.type)}" for f in t) + ">"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_dictionary(t):
        return "string"
    if pa.types.is_binary(t):
        return "binary"
    raise CatalogError(f"no Glue type for Arrow type {t}")


_DECIMAL = re.compile(r"decimal\((?P<precision>\d+)\s*(?:,\s*(?P<scale>\d+))?\)")
_ARROW = {
    "boolean": pa.bool_(),
    "tinyint": pa.int8(),
    "smallint": pa.int16(),
    "int": pa.int32(),
    "integer": pa.int32(),
    "bigint": pa.int64(),
    "double": pa.float64(),
    "float": pa.float32(),
    "real": pa.float32(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("ms"),
    "varchar": pa.string(),
    "string": pa.string(),
}


class GlueAthenaCatalog:
    """Tables in a Glue database (partition projection on year/month), queries through Athena.

    Analyst queries run in their own workgroup (`analyst_workgroup`), whose enforced configuration (result
    location, encryption, scan cut-off) and the analysts' IAM policy (this workgroup only, the lake's table
    prefixes only) are the sandbox here; the adapter also sends nothing but one parsed SELECT there."""

    @classmethod
    def from_settings(cls, settings: Settings) -> GlueAthenaCatalog:
        """The platform's Glue database, its queries in the platform's encrypted workgroup (results under
        the lake bucket's `_athena-results/`), analyst queries in `settings.athena_analyst_workgroup`; every
        name from `cdp.aws_resources`, as the CDK app creates them."""
        from cdp.aws_clients import aws_client
        from cdp.aws_resources import AwsResources

        names = AwsResources.from_settings(settings)
        return cls(
            aws_client(settings, "glue"),
            aws_client(settings, "athena"),
            database=names.glue_database,
            output_location=names.athena_results,
            workgroup=names.workgroup,
            analyst_workgroup=names.analyst_workgroup,
            analyst_limits=AnalystLimits.from_settings(settings),
        )

    def __init__(
        self,
        glue: Any,
        athena: Any,
        database: str,
        output_location: str,
        workgroup: str = "primary",
        poll_seconds: float = 0.5,
        timeout_seconds: float = 600.0,
        analyst_workgroup: str = "cdp-analyst",
        analyst_limits: AnalystLimits | None = None,
    ) -> None:
        self.glue, self.athena = glue, athena
        self.database, self.output_location, self.workgroup = database, output_location, workgroup
        self.poll_seconds, self.timeout_seconds = poll_seconds, timeout_seconds
        self.analyst_workgroup = analyst_workgroup
        self.analyst_limits = analyst_limits or AnalystLimits()

    def ensure_database(self) -> None:
        try:
            self.glue.get_database(Name=self.database)
        except self.glue.exceptions.EntityNotFoundException:
            self.glue.create_database(DatabaseInput={"Name": self.database})

    def _table_input(self, table: TableInfo) -> dict[str, Any]:
        parts = set(table.partition_keys)
        columns = [{"Name": f.name, "Type": glue_type(f.type)} for f in table.schema if f.name not in parts]
        params = {"classification": "parquet", "EXTERNAL": "TRUE"}
        key_types = {}
        if parts:
            params["projection.enabled"] = "true"
            for key in table.partition_keys:
                params.update(_projection(key, _partition_field(table, key)))
                key_types[key] = "int" if params[f"projection.{key}.type"] == "integer" else "string"
            template = "/".join(f"{k}=${{{k}}}" for k in table.partition_keys)
            params["storage.location.template"] = table.location.rstrip("/") + "/" + template
        return {
            "Name": table.name,
            "TableType": "EXTERNAL_TABLE",
            "Parameters": params,
            "PartitionKeys": [{"Name": k, "Type": key_types[k]} for k in table.partition_keys],
            "StorageDescriptor": {"Columns": columns, "Location": table.location, **_PARQUET},
        }

    def register_table(self, table: TableInfo) -> None:
        self.ensure_database()
        table_input = self._table_input(table)
        try:
            self.glue.update_table(DatabaseName=self.database, TableInput=table_input)
        except self.glue.exceptions.EntityNotFoundException:
            self.glue.create_table(DatabaseName=self.database, TableInput=table_input)

    def tables(self) -> list[TableInfo]:
        out: list[TableInfo] = []
        for page in self.glue.get_paginator("get_tables").paginate(DatabaseName=self.database):
            for t in page["TableList"]:
                sd = t["StorageDescriptor"]
                cols = sd["Columns"] + t.get("PartitionKeys", [])
                schema = pa.schema([(c["Name"], _arrow_type(c["Type"])) for c in cols])
                keys = tuple(k["Name"] for k in t.get("PartitionKeys", []))
                out.append(TableInfo(t["Name"], sd["Location"], schema, keys))
        return out

    def create_table_as(self, table: TableInfo, sql: str, split_by: SplitBy | None = None) -> int:
        """UNLOAD the result to a fresh prefix under the table's location, then point the table at it:
        the Glue location update is the atomic switch from the old data to the new. `split_by` is not
        needed here: Athena scales the one query out itself."""
        prefix = f"{table.location.rstrip('/')}/run={uuid.uuid4().hex[:12]}/"
        self._unload(sql, prefix, table.partition_keys)
        schema = table.schema if len(table.schema) else self.query(f"SELECT * FROM ({sql}) LIMIT 0").schema
        self.register_table(TableInfo(table.name, prefix, schema, table.partition_keys))
        counted = self.query(f"SELECT count(*) AS n FROM {table.name}")
        return int(counted["n"][0].as_py()) if counted.num_rows else 0

    def replace_partitions(
        self,
        table: TableInfo,
        sql: str | Sequence[str],
        partitions: Sequence[tuple[int | str, ...]],
        split_by: SplitBy | None = None,
    ) -> int:
        """Athena rewrites the table rather than its partitions: one UNLOAD of the other partitions' rows
        (copied, not recomputed) and `sql`'s rows to a fresh prefix, then the same atomic repointing as
        `create_table_as`. Rows of `sql` outside the listed partitions are not detected here."""
        current = {t.name: t for t in self.tables()}.get(table.name)
        if current is None or not current.partition_keys:
            raise CatalogError(f"table {table.name}: not a registered partitioned table")
        keys = current.partition_keys
        columns = ", ".join(f'"{name}"' for name in current.schema.names)  # partition keys last
        listed = " OR ".join(
            "(" + " AND ".join(f'"{k}" = {_literal(v)}' for k, v in zip(keys, values, strict=True)) + ")"
            for values in partitions
        )
        kept = f"SELECT {columns} FROM {current.name}" + (f" WHERE NOT ({listed})" if listed else "")
        prefix = f"{table.location.rstrip('/')}/run={uuid.uuid4().hex[:12]}/"
        statements = [sql] if isinstance(sql, str) else list(sql)
        fresh = " UNION ALL ".join(
            f"SELECT {columns} FROM ({s}) AS fresh{i}" for i, s in enumerate(statements)
        )
        self._unload(f"{kept} UNION ALL {fresh}", prefix, keys)
        self.register_table(TableInfo(current.name, prefix, current.schema, keys))
        if not listed:
            return 0
        counted = self.query(f"SELECT count(*) AS n FROM {current.name} WHERE {listed}")
        return int(counted["n"][0].as_py()) if counted.num_rows else 0

    def _unload(self, sql: str, prefix: str, partition_keys: tuple[str, ...] = ()) -> None:
        """UNLOAD the result of `sql` (DuckDB SQL) as ZSTD Parquet under `prefix` (Athena refuses a
        prefix that already holds objects)."""
        keys = ", ".join(f"'{k}'" for k in partition_keys)
        partitioning = f", partitioned_by = ARRAY[{keys}]" if keys else ""
        self._execute(
            f"UNLOAD ({to_athena(sql)}) TO '{prefix}' "
            f"WITH (format = 'PARQUET', compression = 'ZSTD'{partitioning})"
        )

    def query(self, sql: str) -> pa.Table:
        return self._results(self._execute(to_athena(sql)))

    def query_to_files(
        self, sql: str, destination: str, *, max_rows_per_file: int = MAX_ROWS_PER_FILE
    ) -> QueryFiles:
        """UNLOAD the result to `destination`: Athena's workers write the files (one or more each, named
        by Athena, without a `.parquet` suffix); nothing passes through this process. Athena does not
        bound rows per file (`max_rows_per_file` is not used) nor report the row count."""
        prefix = destination.rstrip("/") + "/"
        self._unload(sql, prefix)
        return QueryFiles(location=prefix, rows=None)

    def read_session(self, tables: Collection[str]) -> AthenaReadSession:
        """Read-only queries over `tables` through this catalog (`cdp.catalog.athena_session`)."""
        return AthenaReadSession(self, tables)

    def analyst_query(self, sql: str) -> pa.Table:
        """One SELECT (checked by sqlglot's parse before anything is sent) in the analyst workgroup, whose
        own enforced configuration says where results go."""
        limits = self.analyst_limits
        athena_sql = analyst_select_to_athena(sql, limits.max_sql_chars)
        qid = self._execute(athena_sql, workgroup=self.analyst_workgroup, timeout=limits.timeout_seconds)
        return self._results(qid, max_rows=limits.max_rows)

    def _execute(self, athena_sql: str, workgroup: str | None = None, timeout: float | None = None) -> str:
        """Run one statement (already in Athena's dialect) to completion; returns its execution id. In
        another `workgroup` than the platform's, the workgroup's enforced result location is used."""
        request: dict[str, Any] = {
            "QueryString": athena_sql,
            "QueryExecutionContext": {"Database": self.database},
            "WorkGroup": workgroup or self.workgroup,
        }
        if workgroup is None:
            request["ResultConfiguration"] = {"OutputLocation": self.output_location}
        qid = self.athena.start_query_execution(**request)["QueryExecutionId"]
        timeout = self.timeout_seconds if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while True:
            status = self.athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]
            state = status["State"]
            if state == "SUCCEEDED":
                break
            if state in ("FAILED", "CANCELLED"):
                raise CatalogError(f"Athena query {qid} {state}: {status.get('StateChangeReason', '')}")
            if time.monotonic() > deadline:
                self.athena.stop_query_execution(QueryExecutionId=qid)
                raise CatalogError(f"Athena query {qid} still {state} after {timeout:.0f}s: stopped")
            time.sleep(self.poll_seconds)
        return qid

    def _results(self, qid: str, max_rows: int | None = None) -> pa.Table:
        names: list[str] = []
        types: list[str] = []
        rows: list[list[str | None]] = []
        first = True
        for page in self.athena.get_paginator("get_query_results").paginate(QueryExecutionId=qid):
            rs = page["ResultSet"]
            if not names:
                meta = rs.get("ResultSetMetadata", {}).get("ColumnInfo", [])
                names = [c["Name"] for c in meta]
                types = [c["Type"] for c in meta]
            data = rs.get("Rows", [])
            if first and data and names and [d.get("VarCharValue") for d in data[0]["Data"]] == names:
                data = data[1:]  # Athena repeats the header as the first row
            first = False
            rows.extend([d.get("VarCharValue") for d in r["Data"]] for r in data)
            if max_rows is not None and len(rows) > max_rows:
                raise QueryRefused(f"analyst SQL: more than {max_rows:,} rows; aggregate, or add a LIMIT")
        columns = {}
        for i, (name, typ) in enumerate(zip(names, types, strict=True)):
            values = pa.array([r[i] if i < len(r) else None for r in rows], pa.string())
            target = _arrow_type(typ)
            columns[name] = values if target == pa.string() else values.cast(target)
        return pa.table(columns) if columns else pa.table({})


def _arrow_type(glue: str) -> pa.DataType:
    """The Arrow type of a Glue or Athena column type (`decimal(p,s)` exactly; unknown types as text)."""
    glue = glue.lower().strip()
    if glue.startswith("array<"):
        return pa.list_(_arrow_type(glue[6:-1]))
    decimal = _DECIMAL.fullmatch(glue)
    if decimal:
        return pa.decimal128(int(decimal["precision"]), int(decimal["scale"] or 0))
    return _ARROW.get(glue.split("(")[0], pa.string())


def _literal(value: int | str) -> str:
    """A partition value as an SQL literal."""
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


_INTEGER_RANGES = {"year": (1990, 2100), "month": (1, 12)}


def _partition_field(table: TableInfo, key: str) -> pa.Field | None:
    index = table.schema.get_field_index(key)
    return table.schema.field(index) if index >= 0 else None


def _projection(key: str, field: pa.Field | None) -> dict[str, str]:
    """Athena partition projection of one key: an integer range for year/month (and integer keys), an
    enum of the values a string key declares in its field metadata (`PARTITION_VALUES`, e.g. a training
    set's `split`), else `injected` (queries name the value)."""
    if field is None or pa.types.is_integer(field.type):
        lo, hi = _INTEGER_RANGES.get(key, (0, 2**31 - 1))
        return {f"projection.{key}.type": "integer", f"projection.{key}.range": f"{lo},{hi}"}
    values = (field.metadata or {}).get(PARTITION_VALUES)
    if values:
        return {f"projection.{key}.type": "enum", f"projection.{key}.values": values.decode()}
    return {f"projection.{key}.type": "injected"}
