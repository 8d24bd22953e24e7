"""The Parquet lake: table layout, partitioned idempotent writes, manifests."""
