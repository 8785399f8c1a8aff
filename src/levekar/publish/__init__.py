"""Pipeline stage: the published store (DuckDB, Parquet, CSV, GeoParquet, manifest)."""
