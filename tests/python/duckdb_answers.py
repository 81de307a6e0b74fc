"""DuckDB's answers over a tapline archive, read straight from the Parquet files.

Usage: python3 duckdb_answers.py ARCHIVE_DIR
Prints one JSON object; tests/duckdb_interop.rs compares it with tapline's own
answers. Nothing here knows tapline's code: only the documented archive layout
(hive `date=` folders, the `payload_splice` rule, one checkpoint row per seal).
"""

import json
import sys

import duckdb
from tapline_duckdb import define_views

archive = sys.argv[1]
con = duckdb.connect()
define_views(con, archive)


def rows(sql):
    return [list(r) for r in con.execute(sql).fetchall()]


answers = {
    "events": con.execute("SELECT count(*) FROM ev").fetchone()[0],
    "sessions": con.execute("SELECT count(*) FROM latest").fetchone()[0],
    "events_by_day": rows(
        "SELECT CAST(date AS VARCHAR), count(*) FROM ev GROUP BY 1 ORDER BY 1"
    ),
    # A join of sessions to events: queries per signed-in user.
    "queries_by_user": rows(
        """SELECT s."user", count(*) FROM latest s JOIN ev e USING (session_id)
           WHERE e.kind = 'query' GROUP BY 1 ORDER BY 1"""
    ),
    # Whole payload bytes per session: the stored bytes plus the SQL cut out of them.
    "payload_bytes_by_session": rows(
        """SELECT session_id, sum(octet_length(payload)
               + CASE WHEN payload_splice IS NULL THEN 0 ELSE strlen(command) END)
           FROM ev GROUP BY 1 ORDER BY 1"""
    ),
    "ended": rows(
        "SELECT session_id, end_reason, events FROM latest ORDER BY session_id"
    ),
}
print(json.dumps(answers, default=str))
