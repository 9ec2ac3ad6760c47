"""A restart's read of every companion entry (the versions the service remembers), fast.

PyMySQL reads a packet per row and converts every column of every row in Python (setting
the socket's timeout twice a packet). So the entries come about GROUP to a row, each entry
one string, a query per range of video ids, and are split here: at 300,000 entries, six
columns a row took 2.6 s, a GROUP BY 0.8 s (the server sorts for it), ranges 0.45 s.
"""

from __future__ import annotations

from typing import Iterator

import pymysql.cursors

from ..store import FILES_TABLE, Columns

# Such a row is some 200 KB, 3 MB at most (GROUP_BYTES, within any max_allowed_packet
# from 4 MB).
GROUP = 2048
GROUP_BYTES = 3 << 20
# Fields split by spaces, the path last (it may hold spaces); entries by NUL, which no path holds.
ENTRY = "CONCAT_WS(' ', `video_id`, `dev`, `ino`, `size`, `mtime_ns`, `path`)"


def remembered_columns(cursor: pymysql.cursors.Cursor) -> Iterator[Columns]:
    """Every entry, in batches of columns, read in the caller's transaction. A range longer
    than group_concat_max_len (ids unevenly spread, paths near the column's 1,024 characters)
    comes back cut short, which its length shows, and is read again entry by entry."""
    cursor.execute(f"SET SESSION group_concat_max_len = {GROUP_BYTES}")
    cursor.execute(f"SELECT MIN(`video_id`), MAX(`video_id`), COUNT(*) FROM `{FILES_TABLE}`")
    low, high, count = cursor.fetchone()
    if not count:
        return
    width = max(1, GROUP * (high - low + 1) // count)
    for start in range(low, high + 1, width):
        span = (start, start + width)
        cursor.execute(f"SELECT COUNT(*), SUM(CHAR_LENGTH({ENTRY})), GROUP_CONCAT({ENTRY} SEPARATOR '\\0') "
                       f"FROM `{FILES_TABLE}` WHERE `video_id` >= %s AND `video_id` < %s", span)
        count, length, entries = cursor.fetchone()
        if not count:
            continue
        if entries is None or len(entries) != length + count - 1:
            cursor.execute(f"SELECT {ENTRY} FROM `{FILES_TABLE}` WHERE `video_id` >= %s AND `video_id` < %s",
                           span)
            entries = "\0".join(row[0] for row in cursor.fetchall())
        yield columns([e.split(" ", 5) for e in entries.split("\0")])


def columns(entries: list[list[str]]) -> Columns:
    """Entries split into their six fields (video_id dev ino size mtime_ns path), as columns."""
    video_ids, devs, inos, sizes, mtimes, paths = zip(*entries)
    return (list(map(int, video_ids)), paths, list(map(int, devs)), list(map(int, inos)),
            list(map(int, sizes)), list(map(int, mtimes)))
