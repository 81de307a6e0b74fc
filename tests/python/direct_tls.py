"""Connects with libpq 17+ (psycopg's bundled libpq) using the conninfo in argv[1],
runs argv[2], and prints the libpq version and the first column of the first row as
JSON; a connection error is printed as {"error": …} with exit status 1."""

import json
import sys

import psycopg

try:
    with psycopg.connect(sys.argv[1], autocommit=True) as conn:
        value = conn.execute(sys.argv[2]).fetchone()[0]
        print(json.dumps({"libpq": psycopg.pq.version(), "value": value}))
except psycopg.Error as e:
    print(json.dumps({"libpq": psycopg.pq.version(), "error": str(e)}))
    sys.exit(1)
