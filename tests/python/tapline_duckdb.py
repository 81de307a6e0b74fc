"""The documented archive layout as DuckDB views, shared by the interoperability test
(tests/python/duckdb_answers.py) and the query benchmark (benches/duckdb_queries.py).

- `ev`: every event row, with the hive `date` partition as a column;
- `cp`: every checkpoint row;
- `latest`: each session's latest checkpoint, which is its row in `sessions`
  (highest last_seq, the end seal first, then the newest sealed_at).
"""


def define_views(con, archive):
    con.execute(
        f"""CREATE VIEW ev AS SELECT * FROM read_parquet(
                '{archive}/events/*/*.parquet', hive_partitioning = true)"""
    )
    con.execute(
        f"""CREATE VIEW cp AS SELECT * FROM read_parquet(
                '{archive}/sessions/*/*.parquet', hive_partitioning = true)"""
    )
    con.execute(
        """CREATE VIEW latest AS SELECT * FROM cp QUALIFY row_number() OVER (
                PARTITION BY session_id
                ORDER BY last_seq DESC, (seal_kind = 'end') DESC, sealed_at DESC) = 1"""
    )
