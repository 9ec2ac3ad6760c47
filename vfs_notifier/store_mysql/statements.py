"""The statements that write rows, each on the cursor of a transaction its caller owns:
multi-row INSERTs whose values are quoted once, companion entries upserted, renames as
bulk UPDATEs, withdrawals as DELETEs by id. Every list is cut to what one statement may
carry (max_allowed_packet, placeholders)."""

from __future__ import annotations

from typing import Iterator, Optional, Sequence

import pymysql

from ..store import FILES_TABLE, NewVideo, Remembered, StoreUnavailable, chunks, last_per_key
from .errors import code
from .schema import UPSERT_FILES_HEAD, UPSERT_FILES_TAIL, like_below

# Bytes of values per INSERT statement, a character counted as 4 (UTF-8 at worst): below
# max_allowed_packet (4 MB on MySQL 5.7, 16 MB on MariaDB) whatever the paths hold.
STATEMENT_BYTES = 1_500_000
IN_LIST = 500


def insert_rows(cursor, id_step: int, videos: Sequence[NewVideo], values: list[str]) -> list[int]:
    """The INSERTs of `videos` (their `values` quoted already); their ids, in order."""
    ids: list[int] = []
    done = 0
    for part in by_size(values):
        cursor.execute("INSERT INTO `videos` (`main_dir`, `des_video_path`, `status`, `des_url`) "
                       "VALUES " + ", ".join(part))
        if id_step:
            ids.extend(range(cursor.lastrowid, cursor.lastrowid + len(part) * id_step, id_step))
        else:
            ids.extend(_read_back(cursor, cursor.lastrowid, [v.path for v in videos[done:done + len(part)]]))
        done += len(part)
    return ids


def remember(cursor, entries: Sequence[Remembered], replaces: Optional[Sequence[str]] = None,
             quoted: Optional[dict[int, str]] = None) -> None:
    """`quoted`: video id -> its path quoted already (an insert quoted each path once)."""
    if quoted is None:
        # An insert's entries are one per path and per new id already; others may not be.
        entries = last_per_key(entries)
    paths = [e.path for e in entries] if replaces is None else list(replaces)
    for part in chunks(paths, IN_LIST):
        cursor.execute(f"DELETE FROM `{FILES_TABLE}` WHERE `path` IN ({marks(part)}) "
                       f"AND BINARY `path` IN ({marks(part)})", list(part) * 2)
    quote = cursor.connection.escape
    quoted = quoted or {}
    # %d refuses anything but a number: no value but the quoted path is text.
    values = ["(%d, %s, %d, %d, %d, %d)" % (e.video_id, quoted.get(e.video_id) or quote(e.path), *e.version)
              for e in entries]
    for part in by_size(values):
        cursor.execute(UPSERT_FILES_HEAD + ", ".join(part) + UPSERT_FILES_TAIL)


def resignal(cursor, changes: Sequence[Remembered]) -> None:
    for part in chunks([c.video_id for c in changes], IN_LIST):
        cursor.execute("UPDATE `videos` SET `status` = 1, `created_date` = NOW() "
                       f"WHERE `id` IN ({marks(part)})", list(part))
    remember(cursor, changes)


def move(cursor, old: str, new: str, main_dir: str, old_url: str, new_url: str) -> int:
    # LIKE and = follow the case-insensitive collation (and use the index); the BINARY
    # LEFT() comparisons keep only rows really at or below `old`.
    where = ("(`{c}` = %s OR `{c}` LIKE %s ESCAPE '!') AND "
             "(BINARY `{c}` = BINARY %s OR BINARY LEFT(`{c}`, %s) = BINARY %s)")
    at = [old, like_below(old), old, len(old) + 1, old + "/"]
    moved = cursor.execute(
        "UPDATE `videos` SET `des_video_path` = CONCAT(%s, SUBSTRING(`des_video_path`, %s)), "
        "`des_url` = IF(BINARY LEFT(`des_url`, %s) = BINARY %s, "
        "CONCAT(%s, SUBSTRING(`des_url`, %s)), `des_url`), `main_dir` = %s "
        "WHERE " + where.format(c="des_video_path"),
        [new, len(old) + 1, len(old_url), old_url, new_url, len(old_url) + 1, main_dir, *at])
    cursor.execute(f"UPDATE `{FILES_TABLE}` SET `path` = CONCAT(%s, SUBSTRING(`path`, %s)) "
                   "WHERE " + where.format(c="path"), [new, len(old) + 1, *at])
    return moved


def withdraw(cursor, ids: Sequence[int]) -> int:
    deleted = 0
    for part in chunks(list(ids), IN_LIST):
        deleted += cursor.execute(f"DELETE FROM `videos` WHERE `id` IN ({marks(part)})", list(part))
        cursor.execute(f"DELETE FROM `{FILES_TABLE}` WHERE `video_id` IN ({marks(part)})", list(part))
    return deleted


def forget(cursor, ids: Sequence[int]) -> None:
    for part in chunks(list(ids), IN_LIST):
        cursor.execute(f"DELETE FROM `{FILES_TABLE}` WHERE `video_id` IN ({marks(part)})", list(part))


def consecutive_id_step(cursor) -> int:
    """auto_increment_increment when the server gives one INSERT's rows consecutive ids, else 0.

    With innodb_autoinc_lock_mode 0 or 1 a multi-row INSERT of known length holds the table's
    AUTO-INC lock for the whole statement: its ids are first, first + step, ... and no other
    writer's rows can interleave. Mode 2 (MySQL 8's default) allows interleaving."""
    try:
        cursor.execute("SELECT @@innodb_autoinc_lock_mode, @@auto_increment_increment")
        mode, step = cursor.fetchone()
    except pymysql.MySQLError as err:
        if code(err) >= 2000:
            raise     # the client lost the server: the caller's reconnect path
        return 0      # a server without the variable: read the ids back
    return int(step) if int(mode) in (0, 1) and int(step) >= 1 else 0


def _read_back(cursor, first: int, paths: list[str]) -> list[int]:
    """The ids of a multi-row INSERT, in order. The server reports the first one; the rest
    are usually first + k * auto_increment_increment, but another writer's rows may
    interleave (innodb_autoinc_lock_mode=2), so the rows are read back and matched by path."""
    cursor.execute("SELECT `id`, `des_video_path` FROM `videos` WHERE `id` BETWEEN %s AND "
                   "%s + %s * @@auto_increment_increment ORDER BY `id`", (first, first, len(paths) - 1))
    ids = _match(cursor.fetchall(), paths)
    if ids is None:
        cursor.execute("SELECT `id`, `des_video_path` FROM `videos` WHERE `id` >= %s ORDER BY `id`",
                       (first,))
        ids = _match(cursor.fetchall(), paths)
    if ids is None:
        raise StoreUnavailable(f"could not read back the ids of {len(paths)} inserted rows")
    return ids


def _match(rows: Sequence[tuple], paths: list[str]) -> Optional[list[int]]:
    ids, want = [], iter(paths)
    path = next(want, None)
    for row_id, row_path in rows:
        if path is None:
            break
        if row_path == path:
            ids.append(row_id)
            path = next(want, None)
    return ids if len(ids) == len(paths) else None


def by_size(values: list[str]) -> Iterator[list[str]]:
    """Rows' quoted values grouped into statements, each below STATEMENT_BYTES."""
    start, size = 0, 0
    for index, value in enumerate(values):
        cost = len(value) * 4 + 2     # characters to UTF-8 bytes, at worst
        if size + cost > STATEMENT_BYTES and index > start:
            yield values[start:index]
            start, size = index, 0
        size += cost
    if start < len(values):
        yield values[start:]


def marks(part: Sequence) -> str:
    return ", ".join(["%s"] * len(part))
