"""The embedded store: the same `videos` table in an SQLite file, so that the service
runs with nothing installed. It behaves as the MySQL store does, which the tests hold it to."""

from __future__ import annotations

import os
import sqlite3
from typing import Iterator, Optional, Sequence

from .rows import Row
from .store import RowsRejected, StoreUnavailable, VideoRow, chunks

CREATE_TABLE = """\
CREATE TABLE IF NOT EXISTS videos (
  id INTEGER PRIMARY KEY AUTOINCREMENT, main_dir varchar(512) DEFAULT NULL,
  des_video_path varchar(1024) NOT NULL, status int DEFAULT 1,
  created_date datetime DEFAULT CURRENT_TIMESTAMP, des_url varchar(1024) DEFAULT NULL);
CREATE INDEX IF NOT EXISTS idx_des_video_path ON videos (des_video_path);
CREATE INDEX IF NOT EXISTS idx_status ON videos (status);"""

BUSY_TIMEOUT = 10

INSERT = "INSERT INTO videos (main_dir, des_video_path, status, des_url) VALUES (?, ?, 1, ?)"


class SQLiteStore:
    def __init__(self, path: str) -> None:
        self.path = path
        self.description = f"SQLite {path}"
        self._conn: Optional[sqlite3.Connection] = None

    def open(self) -> None:
        self.close()
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            # Waiting for another program's lock stalls the service's loop: keep it well below
            # half the unit's WatchdogSec=30s (a write that times out is retried later).
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(CREATE_TABLE)
        except (sqlite3.Error, OSError) as err:
            raise StoreUnavailable(f"{self.path}: {err}") from None
        self._conn = conn

    def registered_paths(self) -> Iterator[str]:
        return self._stream("SELECT des_video_path FROM videos", ())

    def paths_below(self, directory: str) -> Iterator[str]:
        prefix = directory + "/"
        # substr() compares exactly, where LIKE would ignore ASCII case.
        return self._stream("SELECT des_video_path FROM videos WHERE substr(des_video_path, 1, ?) = ?",
                            (len(prefix), prefix))

    def _stream(self, query: str, args: tuple) -> Iterator[str]:
        conn = self._connection()
        try:
            for (path,) in conn.execute(query, args):
                yield path
        except sqlite3.Error as err:
            raise StoreUnavailable(f"{self.path}: {err}") from None

    def videos(self) -> Iterator[VideoRow]:
        conn = self._connection()
        try:
            for row in conn.execute("SELECT id, main_dir, des_video_path, status, created_date, des_url "
                                    "FROM videos ORDER BY id"):
                yield VideoRow(*row)
        except sqlite3.Error as err:
            raise StoreUnavailable(f"{self.path}: {err}") from None

    def insert(self, rows: Sequence[Row]) -> None:
        self._write(INSERT, [(r.main_dir, r.path, r.url) for r in rows])

    def delete(self, paths: Sequence[str]) -> int:
        conn = self._connection()
        deleted = 0
        try:
            conn.execute("BEGIN")
            for part in chunks(paths, 500):
                marks = ", ".join("?" * len(part))
                deleted += conn.execute(f"DELETE FROM videos WHERE des_video_path IN ({marks})",
                                        list(part)).rowcount
            conn.execute("COMMIT")
        except sqlite3.Error as err:
            self._rollback()
            raise StoreUnavailable(f"{self.path}: {err}") from None
        return deleted

    def _write(self, sql: str, values: list) -> None:
        conn = self._connection()
        try:
            conn.execute("BEGIN")
            conn.executemany(sql, values)
            conn.execute("COMMIT")
        except sqlite3.IntegrityError as err:
            self._rollback()
            raise RowsRejected(str(err)) from None
        except sqlite3.Error as err:
            self._rollback()
            raise StoreUnavailable(f"{self.path}: {err}") from None

    def _rollback(self) -> None:
        try:
            assert self._conn is not None
            self._conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreUnavailable("not open")
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
