"""An insert, the one write whose statements (not only its COMMIT) run on the commit thread:
the loop quotes the values (quote), the thread sends them, the companion entries, the fence
and the commit (run)."""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import pymysql

from ..store import NewVideo, Remembered, RowsRejected
from . import statements
from .errors import CONFLICT, code, data_error, reason
from .servers import quietly_rollback


def quote(conn: pymysql.connections.Connection, videos: Sequence[NewVideo]) -> tuple[list[str], list[str]]:
    """The VALUES tuple of each video's row, and its path quoted, in order."""
    # Quoted here, not by execute(args): PyMySQL's per-value dispatch cost more than the
    # server's insert of the row (a cold start writes 100,000). Quoting is the loop's
    # work; the thread only waits for the server, which is what it is for.
    escape = conn.escape
    paths = [escape(v.path) for v in videos]
    roots = {main_dir: escape(main_dir) for main_dir in {v.main_dir for v in videos}}   # one a root
    values = [f"({roots[v.main_dir]}, {path}, 1, {escape(v.url)})" for v, path in zip(videos, paths)]
    return values, paths


def run(conn: pymysql.connections.Connection, id_step: int, check_fence: Callable[[pymysql.cursors.Cursor], None],
        videos: list[NewVideo], values: list[str], paths: list[str],
        replaces: Optional[Sequence[str]]) -> list[int]:
    """On the commit thread: the rows, their entries, the fence and the commit; the new ids.
    Rows refused (RowsRejected), a fence lost or a conflict: rolled back, the connection kept.
    Any other driver error leaves the connection to the caller to close."""
    try:
        with conn.cursor() as cursor:
            ids = statements.insert_rows(cursor, id_step, videos, values)
            entries = [Remembered(i, v.path, v.version) for i, v in zip(ids, videos)]
            statements.remember(cursor, entries, replaces, quoted=dict(zip(ids, paths)))
            check_fence(cursor)
        conn.commit()
        return ids
    except BaseException as err:
        if (isinstance(err, (pymysql.MySQLError, OSError)) and not data_error(err)
                and code(err) not in CONFLICT):
            raise          # the connection is lost or broken: sync() closes it
        quietly_rollback(conn)
        if data_error(err):
            raise RowsRejected(reason(err)) from None
        raise
