"""Write a view's offline features for the whole lake as a partitioned lake table (`<view>_features`).

Locally DuckDB streams the view into hive-partitioned Parquet with `COPY` under a memory limit (what the
full-size benchmark measures); other catalogs run the query and write the result through the lake writer.
"""

from __future__ import annotations

import shutil
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from cdp.backends import Backends
from cdp.catalog.local import DuckDbCatalog
from cdp.catalog.port import TableInfo
from cdp.lake.tables import LakeTable
from cdp.lake.writer import LakeWriter
from features.views import view_sql


def features_table_name(view: str) -> str:
    return f"{view}_features"


def materialize_view(backends: Backends, view: str, memory_limit: str = "6GB") -> dict[str, Any]:
    """Compute `view` over every transaction and replace its features table; returns rows and location."""
    bucket = backends.settings.lake_bucket
    name = features_table_name(view)
    location = f"s3://{bucket}/{name}/"
    catalog = backends.catalog
    if isinstance(catalog, DuckDbCatalog):
        root = backends.object_store.local_path(location)
        assert root is not None
        tmp = root.with_name(root.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        con = catalog.connect()
        try:
            con.execute(f"SET memory_limit = '{memory_limit}'")
            con.execute("SET preserve_insertion_order = false")
            con.execute(
                f"COPY ({view_sql(view)}) TO '{tmp.as_posix()}' "
                "(FORMAT parquet, COMPRESSION zstd, PARTITION_BY (year, month), OVERWRITE_OR_IGNORE true)"
            )
        finally:
            con.close()
        shutil.rmtree(root, ignore_errors=True)
        tmp.rename(root)
        files = sorted(root.glob("**/*.parquet"))
        rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
        schema = pq.read_schema(files[0]) if files else pa.schema([])
        schema = pa.schema([f for f in schema if f.name not in ("year", "month")])
        schema = schema.append(pa.field("year", pa.int32())).append(pa.field("month", pa.int32()))
    else:
        table = catalog.query(view_sql(view))
        table = table.set_column(table.schema.get_field_index("year"), "year", table["year"].cast(pa.int32()))
        table = table.set_column(
            table.schema.get_field_index("month"), "month", table["month"].cast(pa.int32())
        )
        LakeWriter(backends.object_store, bucket).write_chunk(
            LakeTable(name, table.schema, ("year", "month")), table, "0"
        )
        rows, schema = table.num_rows, table.schema
    catalog.register_table(TableInfo(name, location, schema, ("year", "month")))
    return {"table": name, "location": location, "rows": rows}
