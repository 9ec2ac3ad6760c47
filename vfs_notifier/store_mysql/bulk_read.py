"""A restart's read of every companion entry (the versions the service remembers), fast.

PyMySQL reads a packet per row and converts every column of every row in Python (setting
the socket's timeout twice a packet). So the entries come about GROUP to a row, each entry
one string, a query per range of video ids, and are split here: at 300,000 entries, six
columns a row took 2.6 s, a GROUP BY 0.8 s (the server sorts for it), ranges 0.45 s.
"""

from __future__ import annotations

import queue
import threading
from typing import Callable, Iterator, Optional

import pymysql.cursors

from ..store import FILES_TABLE, Columns

# Such a row is some 200 KB, 3 MB at most (GROUP_BYTES, within any max_allowed_packet
# from 4 MB).
GROUP = 2048
GROUP_BYTES = 3 << 20
# Ranges fetched ahead of the caller: a few hundred KB each.
AHEAD = 4
# Fields split by spaces, the path last (it may hold spaces); entries by NUL, which no path holds.
ENTRY = "CONCAT_WS(' ', `video_id`, `dev`, `ino`, `size`, `mtime_ns`, `path`)"


def remembered_columns(cursor: pymysql.cursors.Cursor,
                       then: Optional[Callable[[pymysql.cursors.Cursor], None]] = None) -> Iterator[Columns]:
    """Every entry, in batches of columns, read in the caller's transaction. A range longer
    than group_concat_max_len (ids unevenly spread, paths near the column's 1,024 characters)
    comes back cut short, which its length shows (_maybe_cut), and is read again entry by entry.

    The ranges are fetched on a thread of their own, a few ahead: while the server builds the
    next range's string (its own core) and the thread waits for it (without the GIL), the
    caller splits and hashes this one. At a million entries the server's part is about 2 s,
    the caller's about as much again. The cursor is the thread's until the last range is in;
    `then(cursor)` runs on the thread after it, in the same snapshot, while the caller works on
    what it was given."""
    ranges: "queue.Queue[Optional[tuple[str, Optional[BaseException]]]]" = queue.Queue(AHEAD)
    stop = threading.Event()

    def fetch() -> None:
        try:
            for entries in _fetch_ranges(cursor):
                if stop.is_set():
                    return
                ranges.put((entries, None))
            if then is not None:
                then(cursor)
            ranges.put(None)
        except BaseException as err:  # noqa: B036 (handed to the caller, who raises it)
            ranges.put(("", err))

    reader = threading.Thread(target=fetch, name="store-read", daemon=True)
    reader.start()
    try:
        while (got := ranges.get()) is not None:
            entries, err = got
            if err is not None:
                raise err
            yield columns([e.split(" ", 5) for e in entries.split("\0")])
    finally:
        stop.set()
        while reader.is_alive():      # a caller that stops early: the cursor must be free again
            try:
                ranges.get(timeout=0.1)
            except queue.Empty:
                pass
        reader.join()


def _fetch_ranges(cursor: pymysql.cursors.Cursor) -> Iterator[str]:
    """The entries of each range of video ids, as one NUL-separated string."""
    cursor.execute(f"SET SESSION group_concat_max_len = {GROUP_BYTES}")
    cursor.execute(f"SELECT MIN(`video_id`), MAX(`video_id`), COUNT(*) FROM `{FILES_TABLE}`")
    low, high, count = cursor.fetchone()
    if not count:
        return
    width = max(1, GROUP * (high - low + 1) // count)
    for start in range(low, high + 1, width):
        span = (start, start + width)
        cursor.execute(f"SELECT COUNT(*), GROUP_CONCAT({ENTRY} SEPARATOR '\\0') "
                       f"FROM `{FILES_TABLE}` WHERE `video_id` >= %s AND `video_id` < %s", span)
        count, entries = cursor.fetchone()
        if not count:
            continue
        if entries is None or _maybe_cut(entries):
            cursor.execute(f"SELECT {ENTRY} FROM `{FILES_TABLE}` WHERE `video_id` >= %s AND `video_id` < %s",
                           span)
            entries = "\0".join(row[0] for row in cursor.fetchall())
        yield entries


def _maybe_cut(entries: str) -> bool:
    """Whether GROUP_CONCAT may have cut this short: it cuts at group_concat_max_len bytes (on
    a character's boundary), so a result shorter than that by more than a character was not.
    (Asking the server for the full length instead costs it every entry's string twice.)"""
    return len(entries) * 4 > GROUP_BYTES - 4 and len(entries.encode()) > GROUP_BYTES - 4


def columns(entries: list[list[str]]) -> Columns:
    """Entries split into their six fields (video_id dev ino size mtime_ns path), as columns."""
    video_ids, devs, inos, sizes, mtimes, paths = zip(*entries)
    return (list(map(int, video_ids)), paths, list(map(int, devs)), list(map(int, inos)),
            list(map(int, sizes)), list(map(int, mtimes)))


def unremembered_ids(cursor: pymysql.cursors.Cursor) -> list[int]:
    """The ids of the `videos` rows with no companion entry, ascending. Only ids: they come
    from a narrow index of `videos` (idx_status holds every id), where asking for the paths too
    makes the server read every whole row (at a million rows 1.3 s against 3.0-3.6 s)."""
    cursor.execute(f"SELECT v.`id` FROM `videos` v LEFT JOIN `{FILES_TABLE}` f ON f.`video_id` = v.`id` "
                   "WHERE f.`video_id` IS NULL")
    return sorted(row[0] for row in cursor.fetchall())
