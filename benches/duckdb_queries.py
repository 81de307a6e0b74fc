"""Times queries with DuckDB over a tapline archive, for benches/archive_queries.rs.

Usage: python3 duckdb_queries.py ARCHIVE_DIR ROUNDS < queries.json
queries.json is a list of [name, sql]; the SQL reads the views `events` and
`sessions` (tests/python/tapline_duckdb.py defines them from the documented layout). Each round connects afresh and
defines the views, as a new tapline process opens a fresh context, so the file
listing and footers are part of every timing. Prints one JSON object:
{name: {"seconds": [...], "rows": [...]}}.
"""

import json
import os
import sys
import time

import duckdb

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "python"))
from tapline_duckdb import define_views  # noqa: E402

archive, rounds = sys.argv[1], int(sys.argv[2])
queries = json.load(sys.stdin)
out = {}
for name, sql in queries:
    seconds = []
    rows = None
    for _ in range(rounds):
        t0 = time.perf_counter()
        con = duckdb.connect()
        define_views(con, archive)
        con.execute("CREATE VIEW events AS SELECT * FROM ev")
        con.execute("CREATE VIEW sessions AS SELECT * FROM latest")
        rows = [[str(v) for v in r] for r in con.execute(sql).fetchall()]
        con.close()
        seconds.append(time.perf_counter() - t0)
    out[name] = {"seconds": seconds, "rows": rows}
print(json.dumps(out))
