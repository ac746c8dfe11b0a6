"""A cursor for statements that send whole columns as arrays: bound on the server, in binary.

Django's psycopg 3 cursor binds on the client: every array element is rendered and quoted as
text in Python, 1 to 5 µs each (a datetime the most), on an ORM thread that shares the GIL
with the socket loop. Bound on the server, an array sent as ``%b`` is dumped in binary, about
0.3 µs an element (``bench/flush_writes.py``). An array's element type comes from its values:
a column mixing ``int`` and ``float`` (or naive and aware datetimes) fails, so callers pass
one type per column.
"""

from typing import Any

import psycopg
from django.db import connection


def array_cursor() -> Any:
    """Django's cursor; on PostgreSQL, one on Django's connection (its transaction, its error
    classes, its query log) that binds parameters on the server."""
    if connection.vendor != "postgresql":
        return connection.cursor()
    connection.ensure_connection()
    raw = psycopg.Cursor(connection.connection)
    return (connection.make_debug_cursor if connection.queries_logged else connection.make_cursor)(raw)
