"""The batch path: IBM files -> protected, partitioned Parquet lake."""
