"""The embedded store: the same `videos` table in an SQLite file, so that the service
runs with nothing installed. It behaves as the MySQL store does, which the tests hold it to.

SQLite compares text byte for byte, so paths match exactly as files do; "below a
directory" is the range ["dir/", "dir0") ('0' follows '/'), which uses the index.
Leases are flock()s (leases.py); every write checks, in its transaction, that the locks of
the roots it touches are still this store's.
"""

from __future__ import annotations

import os
import sqlite3
from itertools import islice
from typing import Callable, Iterator, Optional, Sequence

from ..store import (FILES_TABLE, Columns, Fence, Lease, LeaseLost, NewVideo, Remembered, RowsRejected,
                     StoreUnavailable, Version, VideoRow, chunks, last_per_key)
from .leases import Claims

CREATE_TABLE = f"""\
CREATE TABLE IF NOT EXISTS videos (
  id INTEGER PRIMARY KEY AUTOINCREMENT, main_dir varchar(512) DEFAULT NULL,
  des_video_path varchar(1024) NOT NULL, status int DEFAULT 1,
  created_date datetime DEFAULT CURRENT_TIMESTAMP, des_url varchar(1024) DEFAULT NULL);
CREATE INDEX IF NOT EXISTS idx_des_video_path ON videos (des_video_path);
CREATE INDEX IF NOT EXISTS idx_status ON videos (status);
CREATE TABLE IF NOT EXISTS {FILES_TABLE} (
  video_id INTEGER PRIMARY KEY, path varchar(1024) NOT NULL, dev bigint NOT NULL,
  ino bigint NOT NULL, size bigint NOT NULL, mtime_ns bigint NOT NULL);
CREATE INDEX IF NOT EXISTS idx_{FILES_TABLE}_path ON {FILES_TABLE} (path);"""

# Waiting for another program's lock stalls the service's loop: keep it well below
# half the unit's WatchdogSec=30s (a write that times out is retried later).
BUSY_TIMEOUT = 10
FILE_COLUMNS = "video_id, path, dev, ino, size, mtime_ns"
UPSERT_FILES = (f"INSERT INTO {FILES_TABLE} ({FILE_COLUMNS}) VALUES {{}} "
                "ON CONFLICT (video_id) DO UPDATE SET path = excluded.path, dev = excluded.dev, "
                "ino = excluded.ino, size = excluded.size, mtime_ns = excluded.mtime_ns")
IN_LIST = 500
_U64 = 1 << 64


def _signed(value: int) -> int:
    """SQLite integers are signed 64-bit; device and inode numbers are unsigned."""
    return value - _U64 if value >= 1 << 63 else value


def _entry(row: tuple) -> Remembered:
    dev, ino = (v + _U64 if v < 0 else v for v in row[2:4])
    return Remembered(row[0], row[1], Version(dev, ino, row[4], row[5]))


class SQLiteStore:
    """One connection for rows (autocommit; writes in explicit IMMEDIATE transactions) and
    one open descriptor per claimed root."""

    # Commits are local and short: always made before a call returns.
    busy = False

    def sync(self) -> None:
        pass

    def __init__(self, path: str) -> None:
        self.path = path
        self.description = f"SQLite {path}"
        self._conn: Optional[sqlite3.Connection] = None
        self._claims = Claims(path)
        self._streaming = False

    def open(self) -> None:
        self._close_main()
        try:
            os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(CREATE_TABLE)
        except (sqlite3.Error, OSError) as err:
            raise StoreUnavailable(f"{self.path}: {err}") from None
        self._conn = conn

    # --- reading --------------------------------------------------------------------

    def remembered(self) -> Iterator[Remembered]:
        for row in self._stream(f"SELECT {FILE_COLUMNS} FROM {FILES_TABLE}", ()):
            yield _entry(row)

    def remembered_columns(self) -> Iterator[Columns]:
        rows = self._stream(f"SELECT {FILE_COLUMNS} FROM {FILES_TABLE}", ())
        while True:
            batch = [_entry(row) for row in islice(rows, 10000)]
            if not batch:
                return
            video_ids, paths, versions = zip(*batch)
            devs, inos, sizes, mtimes = zip(*versions)
            yield video_ids, paths, devs, inos, sizes, mtimes

    def remembered_below(self, directory: str, after_id: int = 0, limit: int = 0) -> Iterator[Remembered]:
        page = " AND video_id > ? ORDER BY video_id LIMIT ?" if limit else ""
        args = (directory + "/", directory + "0") + ((after_id, limit) if limit else ())
        for row in self._stream(f"SELECT {FILE_COLUMNS} FROM {FILES_TABLE} WHERE path >= ? AND path < ?{page}",
                                args):
            yield _entry(row)

    def unremembered(self) -> Iterator[tuple[int, str]]:
        yield from self._stream(f"SELECT v.id, v.des_video_path FROM videos v LEFT JOIN {FILES_TABLE} f "
                                "ON f.video_id = v.id WHERE f.video_id IS NULL ORDER BY v.id", ())

    def videos(self) -> Iterator[VideoRow]:
        for row in self._stream("SELECT id, main_dir, des_video_path, status, created_date, des_url "
                                "FROM videos ORDER BY id", ()):
            yield VideoRow(*row)

    def existing(self, ids: Sequence[int]) -> set[int]:
        found: set[int] = set()
        for part in chunks(list(ids), IN_LIST):
            found.update(r[0] for r in self._stream(f"SELECT id FROM videos WHERE id IN ({_marks(part)})",
                                                    tuple(part)))
        return found

    def _stream(self, query: str, args: tuple) -> Iterator[tuple]:
        conn = self._connection()
        self._streaming = True
        try:
            yield from conn.execute(query, args)
        except sqlite3.Error as err:
            raise StoreUnavailable(f"{self.path}: {err}") from None
        finally:
            self._streaming = False

    # --- writing --------------------------------------------------------------------

    def insert(self, videos: Sequence[NewVideo], fence: Fence, replaces: Optional[Sequence[str]] = None) -> list[int]:
        def write(conn: sqlite3.Connection) -> list[int]:
            ids: list[int] = []
            for part in chunks(videos, _per_statement(conn, 3)):
                last = conn.execute("INSERT INTO videos (main_dir, des_video_path, status, des_url) VALUES "
                                    + ", ".join(["(?, ?, 1, ?)"] * len(part)),
                                    [value for v in part for value in (v.main_dir, v.path, v.url)]).lastrowid
                # One writer at a time holds the database, so the rows took consecutive ids
                # ending at `last`; reading them back proves it instead of assuming it.
                first = last - len(part) + 1
                rows = conn.execute("SELECT id, des_video_path FROM videos WHERE id BETWEEN ? AND ? "
                                    "ORDER BY id", (first, last)).fetchall()
                if [p for _, p in rows] != [v.path for v in part]:
                    raise sqlite3.OperationalError(f"could not read back the ids of {len(part)} rows")
                ids.extend(i for i, _ in rows)
            self._remember(conn, [Remembered(i, v.path, v.version) for i, v in zip(ids, videos)], replaces)
            return ids
        return self._write(write, fence)

    def start_insert(self, videos: Sequence[NewVideo], fence: Fence,
                     replaces: Optional[Sequence[str]] = None) -> Callable[[], list[int]]:
        ids = self.insert(videos, fence, replaces)    # SQLite writes in the caller's thread: done now
        return lambda: ids

    def remember(self, entries: Sequence[Remembered], fence: Fence) -> None:
        self._write(lambda conn: self._remember(conn, entries), fence)

    def _remember(self, conn: sqlite3.Connection, entries: Sequence[Remembered],
                  replaces: Optional[Sequence[str]] = None) -> None:
        entries = last_per_key(entries)
        paths = [e.path for e in entries] if replaces is None else list(replaces)
        for part in chunks(paths, IN_LIST):
            conn.execute(f"DELETE FROM {FILES_TABLE} WHERE path IN ({_marks(part)})", list(part))
        for part in chunks(entries, _per_statement(conn, 6)):
            conn.execute(UPSERT_FILES.format(", ".join(["(?, ?, ?, ?, ?, ?)"] * len(part))),
                         [value for e in part for value in (e.video_id, e.path, _signed(e.version.dev),
                                                             _signed(e.version.ino), *e.version[2:])])

    def resignal(self, changes: Sequence[Remembered], fence: Fence) -> None:
        def write(conn: sqlite3.Connection) -> None:
            for part in chunks([c.video_id for c in changes], IN_LIST):
                conn.execute("UPDATE videos SET status = 1, created_date = CURRENT_TIMESTAMP "
                             f"WHERE id IN ({_marks(part)})", list(part))
            self._remember(conn, changes)
        self._write(write, fence)

    def move(self, old: str, new: str, main_dir: str, old_url: str, new_url: str, fence: Fence) -> int:
        at = (old, old + "/", old + "0")
        cut = len(old) + 1

        def write(conn: sqlite3.Connection) -> int:
            moved = conn.execute(
                "UPDATE videos SET des_video_path = ? || substr(des_video_path, ?), "
                "des_url = CASE WHEN substr(des_url, 1, ?) = ? THEN ? || substr(des_url, ?) ELSE des_url END, "
                "main_dir = ? WHERE des_video_path = ? OR (des_video_path >= ? AND des_video_path < ?)",
                (new, cut, len(old_url), old_url, new_url, len(old_url) + 1, main_dir, *at)).rowcount
            conn.execute(f"UPDATE {FILES_TABLE} SET path = ? || substr(path, ?) "
                         "WHERE path = ? OR (path >= ? AND path < ?)", (new, cut, *at))
            return moved
        return self._write(write, fence)

    def withdraw(self, ids: Sequence[int], fence: Fence) -> int:
        def write(conn: sqlite3.Connection) -> int:
            deleted = 0
            for part in chunks(list(ids), IN_LIST):
                deleted += conn.execute(f"DELETE FROM videos WHERE id IN ({_marks(part)})", list(part)).rowcount
                conn.execute(f"DELETE FROM {FILES_TABLE} WHERE video_id IN ({_marks(part)})", list(part))
            return deleted
        return self._write(write, fence)

    def forget(self, ids: Sequence[int], fence: Fence) -> None:
        def write(conn: sqlite3.Connection) -> None:
            for part in chunks(list(ids), IN_LIST):
                conn.execute(f"DELETE FROM {FILES_TABLE} WHERE video_id IN ({_marks(part)})", list(part))
        self._write(write, fence)

    def _write(self, work, fence: Fence):
        """One transaction; IMMEDIATE takes the write lock first, so nobody interleaves. The
        fence is checked inside it, last: a lock lost meanwhile commits nothing."""
        conn = self._connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
            result = work(conn)
            lost = [root for root in fence if not self._claims.holds(root)]
            if lost:
                raise LeaseLost(lost)
            conn.execute("COMMIT")
            return result
        except (sqlite3.IntegrityError, sqlite3.InterfaceError, UnicodeError, OverflowError) as err:
            self._rollback()
            raise RowsRejected(str(err)) from None
        except sqlite3.Error as err:
            self._rollback()
            raise StoreUnavailable(f"{self.path}: {err}") from None
        except BaseException:
            self._rollback()
            raise

    def _rollback(self) -> None:
        try:
            assert self._conn is not None
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass

    def _connection(self) -> sqlite3.Connection:
        if self._streaming:
            # SQLite would cope; MySQL cannot (one result at a time per connection), and the
            # registrar must not learn habits here that break there.
            raise RuntimeError("a store call while a stream is still being read: finish or close it first")
        if self._conn is None:
            raise StoreUnavailable("not open")
        return self._conn

    # --- leases -------------------------------------------------------------------

    def claim_path(self, root: str) -> str:
        return self._claims.path(root)

    def lease(self, root: str, token: int, seconds: float) -> Lease:
        return self._claims.take(root)

    def release(self, root: str, token: int) -> None:
        self._claims.release(root)

    def close(self) -> None:
        self._claims.release_all()
        self._close_main()

    def _close_main(self) -> None:
        self._streaming = False
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _per_statement(conn: sqlite3.Connection, columns: int) -> int:
    """Rows per multi-row statement: at most SQLITE_LIMIT_VARIABLE_NUMBER placeholders (32,766 here)."""
    return max(1, conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // columns)


def _marks(part: Sequence) -> str:
    return ", ".join("?" * len(part))
