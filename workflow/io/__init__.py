"""Input and output: PostgreSQL connections and COPY, parquet files."""
