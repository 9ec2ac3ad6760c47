"""The queries that read rows, and the rows they make. Each is given the store's stream (rows
as the server sends them, so that 100,000 never sit in memory at once) or, for a read short
enough to fetch whole, a cursor of the store's transaction."""

from __future__ import annotations

from typing import Callable, Iterator, Sequence

import pymysql.cursors

from ..store import FILES_TABLE, Remembered, Version, VideoRow, chunks
from .schema import FILE_COLUMNS, like_below
from .statements import IN_LIST, marks

Stream = Callable[[str, tuple], Iterator[tuple]]   # (query, its arguments) -> rows


def remembered(stream: Stream) -> Iterator[Remembered]:
    for row in stream(f"SELECT {FILE_COLUMNS} FROM `{FILES_TABLE}`", ()):
        yield Remembered(row[0], row[1], Version(*row[2:]))


def remembered_below(stream: Stream, directory: str, after_id: int = 0, limit: int = 0) -> Iterator[Remembered]:
    """The entries below `directory`; a page of `limit` after `after_id` when limit is set."""
    prefix = directory + "/"
    page = " AND `video_id` > %s ORDER BY `video_id` LIMIT %s" if limit else ""
    args = (like_below(directory), after_id, limit) if limit else (like_below(directory),)
    for row in stream(f"SELECT {FILE_COLUMNS} FROM `{FILES_TABLE}` "
                      f"WHERE `path` LIKE %s ESCAPE '!'{page}", args):
        if row[1].startswith(prefix):  # binary collation: LIKE is exact already
            yield Remembered(row[0], row[1], Version(*row[2:]))


def paths_of(cursor: pymysql.cursors.Cursor, ids: Sequence[int]) -> list[tuple[int, str]]:
    """(id, des_video_path) of each of `ids` (a page of at most IN_LIST) that has a row, by id:
    the paths of the rows without a companion entry, once bulk_read.unremembered_ids() found them."""
    cursor.execute(f"SELECT `id`, `des_video_path` FROM `videos` WHERE `id` IN ({marks(ids)}) ORDER BY `id`",
                   list(ids))
    return [(row[0], row[1]) for row in cursor.fetchall()]


def videos(stream: Stream) -> Iterator[VideoRow]:
    for row in stream("SELECT `id`, `main_dir`, `des_video_path`, `status`, "
                      "`created_date`, `des_url` FROM `videos` ORDER BY `id`", ()):
        created = None if row[4] is None else str(row[4])
        yield VideoRow(row[0], row[1], row[2], row[3], created, row[5])


def existing(cursor: pymysql.cursors.Cursor, ids: Sequence[int]) -> set[int]:
    """Which of `ids` still have a `videos` row."""
    found: set[int] = set()
    for part in chunks(list(ids), IN_LIST):
        cursor.execute(f"SELECT `id` FROM `videos` WHERE `id` IN ({marks(part)})", list(part))
        found.update(r[0] for r in cursor.fetchall())
    return found
