"""Times queries with DuckDB over a tapline archive, for benches/archive_queries.rs.

Usage: python3 duckdb_queries.py ARCHIVE_DIR ROUNDS < queries.json
queries.json is a list of [name, sql]; the SQL reads the views `events` and
`sessions` defined here from the documented layout. Each round connects afresh and
defines the views, as a new tapline process opens a fresh context, so the file
listing and footers are part of every timing. Prints one JSON object:
{name: {"seconds": [...], "rows": [...]}}.
"""

import json
import sys
import time

import duckdb

archive, rounds = sys.argv[1], int(sys.argv[2])
queries = json.load(sys.stdin)
out = {}
for name, sql in queries:
    seconds = []
    rows = None
    for _ in range(rounds):
        t0 = time.perf_counter()
        con = duckdb.connect()
        con.execute(
            f"""CREATE VIEW events AS SELECT * FROM read_parquet(
                    '{archive}/events/*/*.parquet', hive_partitioning = true)"""
        )
        con.execute(
            f"""CREATE VIEW sessions AS SELECT * FROM read_parquet(
                    '{archive}/sessions/*/*.parquet', hive_partitioning = true)
                QUALIFY row_number() OVER (PARTITION BY session_id
                    ORDER BY last_seq DESC, (seal_kind = 'end') DESC, sealed_at DESC) = 1"""
        )
        rows = [[str(v) for v in r] for r in con.execute(sql).fetchall()]
        con.close()
        seconds.append(time.perf_counter() - t0)
    out[name] = {"seconds": seconds, "rows": rows}
print(json.dumps(out))
