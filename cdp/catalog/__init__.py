"""Catalog + SQL port: tables over the Parquet lake (DuckDB locally, Glue + Athena in AWS)."""
