"""The production store: the existing `videos` table of a MySQL/MariaDB server, via PyMySQL."""

from __future__ import annotations

from typing import Iterator, Optional, Sequence

import pymysql
import pymysql.cursors

from .rows import Row
from .settings import Database
from .store import RowsRejected, StoreUnavailable, VideoRow, chunks

# Exactly the table existing deployments have; never altered on their side.
CREATE_TABLE = """\
CREATE TABLE IF NOT EXISTS `videos` (
  `id` int(11) NOT NULL AUTO_INCREMENT, `main_dir` varchar(512) DEFAULT NULL,
  `des_video_path` varchar(1024) NOT NULL, `status` int(11) DEFAULT 1,
  `created_date` datetime DEFAULT current_timestamp(), `des_url` varchar(1024) DEFAULT NULL,
  PRIMARY KEY (`id`), KEY `idx_des_video_path` (`des_video_path`(255)), KEY `idx_status` (`status`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci"""

# Every value a placeholder: only then does PyMySQL's executemany send one multi-row INSERT.
INSERT = "INSERT INTO `videos` (`main_dir`, `des_video_path`, `status`, `des_url`) VALUES (%s, %s, %s, %s)"

# A server that stops answering (a network partition sends no RST) blocks the service's
# loop for this long at most; it must stay well below half the unit's WatchdogSec=30s, or
# systemd kills the service in the middle of an outage it is meant to ride out.
IO_TIMEOUT = 10

# MySQL error numbers that mean "not allowed to", as opposed to "cannot reach".
_DENIED = {1044, 1142, 1227}
# Data errors: the rows are at fault, not the server.
_DATA = {1048, 1264, 1366, 1406, 1265}


class MySQLStore:
    def __init__(self, database: Database) -> None:
        self._db = database
        self._conn: Optional[pymysql.connections.Connection] = None
        where = f"socket {database.socket}" if database.socket else f"{database.host}:{database.port}"
        self.description = f"MySQL {database.user}@{where}/{database.name}"

    def open(self) -> None:
        self.close()
        db = self._db
        try:
            self._conn = pymysql.connect(
                host=db.host or "localhost", port=db.port, unix_socket=db.socket or None,
                user=db.user, password=db.password, database=db.name, charset="utf8mb4",
                autocommit=False, connect_timeout=5, read_timeout=IO_TIMEOUT, write_timeout=IO_TIMEOUT)
        except pymysql.MySQLError as err:
            raise StoreUnavailable(_reason(err)) from None
        except OSError as err:
            raise StoreUnavailable(str(err)) from None
        self._ensure_table()

    def _ensure_table(self) -> None:
        with self._guard() as cursor:
            cursor.execute("SHOW TABLES LIKE 'videos'")
            if cursor.fetchone():
                return
            try:
                cursor.execute(CREATE_TABLE)
            except pymysql.MySQLError as err:
                if _code(err) in _DENIED:
                    raise StoreUnavailable(
                        f"table `videos` is missing in {self._db.name} and {self._db.user} may not "
                        f"create it: run `vfs-notifier init-db` as a user who may "
                        f"({_reason(err)})") from None
                raise

    def registered_paths(self) -> Iterator[str]:
        return self._stream("SELECT `des_video_path` FROM `videos`", ())

    def paths_below(self, directory: str) -> Iterator[str]:
        prefix = directory + "/"
        like = prefix.replace("!", "!!").replace("%", "!%").replace("_", "!_") + "%"
        # LIKE uses the index but follows the column's case-insensitive collation:
        # startswith keeps only the rows really below `directory`.
        for path in self._stream("SELECT `des_video_path` FROM `videos` "
                                 "WHERE `des_video_path` LIKE %s ESCAPE '!'", (like,)):
            if path.startswith(prefix):
                yield path

    def _stream(self, query: str, args: tuple) -> Iterator[str]:
        assert self._conn is not None
        with self._guard():
            cursor = self._conn.cursor(pymysql.cursors.SSCursor)
            try:
                cursor.execute(query, args or None)
                while True:
                    batch = cursor.fetchmany(10000)
                    if not batch:
                        break
                    for (path,) in batch:
                        yield path
            finally:
                cursor.close()
            self._conn.commit()  # ends the read transaction: later reads see new rows

    def videos(self) -> Iterator[VideoRow]:
        assert self._conn is not None
        with self._guard():
            cursor = self._conn.cursor(pymysql.cursors.SSCursor)
            try:
                cursor.execute("SELECT `id`, `main_dir`, `des_video_path`, `status`, `created_date`, "
                               "`des_url` FROM `videos` ORDER BY `id`")
                while True:
                    batch = cursor.fetchmany(10000)
                    if not batch:
                        break
                    for id_, main_dir, path, status, created, url in batch:
                        yield VideoRow(id_, main_dir, path, status, created and str(created), url)
            finally:
                cursor.close()

    def insert(self, rows: Sequence[Row]) -> None:
        values = [(r.main_dir, r.path, 1, r.url) for r in rows]
        with self._guard() as cursor:
            cursor.executemany(INSERT, values)

    def delete(self, paths: Sequence[str]) -> int:
        deleted = 0
        with self._guard() as cursor:
            for part in chunks(paths, 500):
                marks = ", ".join(["%s"] * len(part))
                # The column's collation is case- and accent-insensitive: the BINARY
                # comparison keeps `A.mp4` when `a.mp4` goes; the plain one uses the index.
                deleted += cursor.execute(
                    f"DELETE FROM `videos` WHERE `des_video_path` IN ({marks}) "
                    f"AND BINARY `des_video_path` IN ({marks})", list(part) * 2)
        return deleted

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # already broken: nothing left to close
                pass
            self._conn = None

    def _guard(self) -> "_Transaction":
        if self._conn is None:
            raise StoreUnavailable("not connected")
        return _Transaction(self)


class _Transaction:
    """Commits on success; on failure rolls back and turns the driver's error into ours."""

    def __init__(self, store: MySQLStore) -> None:
        self.store = store

    def __enter__(self) -> pymysql.cursors.Cursor:
        assert self.store._conn is not None
        self.cursor = self.store._conn.cursor()
        return self.cursor

    def __exit__(self, kind, err, tb) -> bool:
        conn = self.store._conn
        if err is None:
            try:
                conn.commit()
                return False
            except (pymysql.MySQLError, OSError) as commit_err:
                err = commit_err
        if isinstance(err, StoreUnavailable):
            self.store.close()
            return False
        if isinstance(err, pymysql.MySQLError) and _code(err) in _DATA:
            try:
                conn.rollback()
            except (pymysql.MySQLError, OSError):
                self.store.close()
            raise RowsRejected(_reason(err)) from None
        if isinstance(err, (pymysql.MySQLError, OSError)):
            self.store.close()
            raise StoreUnavailable(_reason(err)) from None
        return False


def _code(err: BaseException) -> int:
    args = getattr(err, "args", ())
    return args[0] if args and isinstance(args[0], int) else 0


def _reason(err: BaseException) -> str:
    """The server's message without the driver's tuple dressing (never holds a password)."""
    args = getattr(err, "args", ())
    if len(args) >= 2:
        return f"{args[1]} (MySQL error {args[0]})"
    return str(err) or type(err).__name__
