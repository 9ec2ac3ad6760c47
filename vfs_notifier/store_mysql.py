"""The production store: the existing `videos` table of a MySQL/MariaDB server, via PyMySQL.

`des_video_path` is utf8mb4_general_ci, so the server thinks `A.mp4`, `a.mp4` and `a.mp4 `
are one path; files on disk disagree. Every statement that selects rows by path pairs the
plain comparison (which uses the index) with a BINARY one (which is exact).
Claims are named locks on a second connection kept only for them: the server drops the
lock when that connection ends, so a killed holder frees its roots without help.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from typing import Callable, Iterator, Optional, Sequence

import pymysql
import pymysql.cursors

from .settings import Database
from .store import (CLAIMS_TABLE, FILES_TABLE, NewVideo, Remembered, RowsRejected, StoreUnavailable,
                    Version, VideoRow, chunks, holder, last_per_key, root_digest)

# Exactly the table existing deployments have; never altered on their side.
CREATE_TABLE = """\
CREATE TABLE IF NOT EXISTS `videos` (
  `id` int(11) NOT NULL AUTO_INCREMENT, `main_dir` varchar(512) DEFAULT NULL,
  `des_video_path` varchar(1024) NOT NULL, `status` int(11) DEFAULT 1,
  `created_date` datetime DEFAULT current_timestamp(), `des_url` varchar(1024) DEFAULT NULL,
  PRIMARY KEY (`id`), KEY `idx_des_video_path` (`des_video_path`(255)), KEY `idx_status` (`status`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci"""

# Ours: binary collation, since a path is bytes to the file system. No foreign key:
# consumers delete videos rows and must not be refused for it.
CREATE_FILES = f"""\
CREATE TABLE IF NOT EXISTS `{FILES_TABLE}` (
  `video_id` int(11) NOT NULL, `path` varchar(1024) NOT NULL,
  `dev` bigint unsigned NOT NULL, `ino` bigint unsigned NOT NULL,
  `size` bigint NOT NULL, `mtime_ns` bigint NOT NULL,
  PRIMARY KEY (`video_id`), KEY `idx_path` (`path`(255))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"""

CREATE_CLAIMS = f"""\
CREATE TABLE IF NOT EXISTS `{CLAIMS_TABLE}` (
  `lock_name` varchar(64) NOT NULL, `root` varchar(1024) NOT NULL,
  `holder` varchar(255) NOT NULL, `since` datetime NOT NULL DEFAULT current_timestamp(),
  PRIMARY KEY (`lock_name`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"""

UPSERT_FILES_HEAD = f"INSERT INTO `{FILES_TABLE}` (`video_id`, `path`, `dev`, `ino`, `size`, `mtime_ns`) VALUES "
UPSERT_FILES_TAIL = (" ON DUPLICATE KEY UPDATE `path` = VALUES(`path`), `dev` = VALUES(`dev`), "
                     "`ino` = VALUES(`ino`), `size` = VALUES(`size`), `mtime_ns` = VALUES(`mtime_ns`)")
FILE_COLUMNS = "`video_id`, `path`, `dev`, `ino`, `size`, `mtime_ns`"

# A server that stops answering (a network partition sends no RST) blocks the service's
# loop for this long at most; it must stay well below half the unit's WatchdogSec=30s, or
# systemd kills the service in the middle of an outage it is meant to ride out.
IO_TIMEOUT = 6
CONNECT_TIMEOUT = 3
# Claims are one-line queries on their own connection; housekeeping asks them in the same
# loop pass as a batch may be written, so both together must stay below half WatchdogSec.
CLAIM_IO_TIMEOUT = 2
# Bytes of values per INSERT statement, a character counted as 4 (UTF-8 at worst): below
# max_allowed_packet (4 MB on MySQL 5.7, 16 MB on MariaDB) whatever the paths hold.
STATEMENT_BYTES = 1_500_000
IN_LIST = 500

# See claim(): a claim whose holder stops asking for this long is released by the server.
CLAIM_IDLE_SECONDS = 60

# MySQL error numbers that mean "not allowed to", as opposed to "cannot reach".
_DENIED = {1044, 1142, 1227}
# Data errors: the rows are at fault, not the server.
_DATA = {1048, 1264, 1366, 1406, 1265}


def lock_name(database: str, root: str) -> str:
    """The named lock of one root in one database's table (the server allows 64 characters)."""
    return "vfs-notifier:" + root_digest(f"{database}.videos\0{root}")


def like_below(directory: str) -> str:
    return directory.replace("!", "!!").replace("%", "!%").replace("_", "!_") + "/%"


class MySQLStore:
    """Two connections: one for rows (reopened by open()), one kept only for claims, so a
    reconnect after an outage keeps the claims while their connection lives. Any failure on
    the claims connection drops it and with it every claim: holds() then says False."""

    def __init__(self, database: Database) -> None:
        self._db = database
        self._conn: Optional[pymysql.connections.Connection] = None
        self._claims_conn: Optional[pymysql.connections.Connection] = None
        self._claimed: set[str] = set()
        self._streaming = False  # an SSCursor's rows are still arriving on self._conn
        # The auto-increment step when one multi-row INSERT is sure to get consecutive ids
        # (innodb_autoinc_lock_mode 0 or 1, MariaDB's default); 0: read the ids back.
        self._id_step = 0
        # A write's COMMIT runs on a thread of its own: its fsync (tens of ms, over 100 under
        # heavy disk load such as an rm -rf of a large tree) must not hold the service's
        # loop. So does an insert's every statement: the loop judges the next files while
        # the server writes these. The connection is the thread's until sync().
        self._committer: Optional[ThreadPoolExecutor] = None
        self._commit: Optional[Future] = None
        where = f"socket {database.socket}" if database.socket else f"{database.host}:{database.port}"
        self.description = f"MySQL {database.user}@{where}/{database.name}"

    def _connect(self, autocommit: bool, timeout: int = IO_TIMEOUT) -> pymysql.connections.Connection:
        db = self._db
        try:
            return pymysql.connect(
                host=db.host or "localhost", port=db.port, unix_socket=db.socket or None,
                user=db.user, password=db.password, database=db.name, charset="utf8mb4",
                autocommit=autocommit, connect_timeout=min(CONNECT_TIMEOUT, timeout),
                read_timeout=timeout, write_timeout=timeout)
        except pymysql.MySQLError as err:
            raise StoreUnavailable(_reason(err)) from None
        except OSError as err:
            raise StoreUnavailable(str(err)) from None

    def open(self) -> None:
        self._close_main()  # claims live on their own connection and outlast a reconnect
        self._conn = self._connect(autocommit=False)
        with self._guard() as cursor:
            for table, ddl in (("videos", CREATE_TABLE), (FILES_TABLE, CREATE_FILES),
                               (CLAIMS_TABLE, CREATE_CLAIMS)):
                cursor.execute("SHOW TABLES LIKE %s", (table,))
                if cursor.fetchone():
                    continue
                try:
                    cursor.execute(ddl)
                except pymysql.MySQLError as err:
                    if _code(err) in _DENIED:
                        raise StoreUnavailable(
                            f"table `{table}` is missing in {self._db.name} and {self._db.user} may "
                            f"not create it: run `vfs-notifier init-db` as a user who may "
                            f"({_reason(err)})") from None
                    raise
            self._id_step = _consecutive_id_step(cursor)

    # --- reading --------------------------------------------------------------------

    def remembered(self) -> Iterator[Remembered]:
        for row in self._stream(f"SELECT {FILE_COLUMNS} FROM `{FILES_TABLE}`", ()):
            yield Remembered(row[0], row[1], Version(*row[2:]))

    def remembered_below(self, directory: str, after_id: int = 0, limit: int = 0) -> Iterator[Remembered]:
        prefix = directory + "/"
        page = " AND `video_id` > %s ORDER BY `video_id` LIMIT %s" if limit else ""
        args = (like_below(directory), after_id, limit) if limit else (like_below(directory),)
        for row in self._stream(f"SELECT {FILE_COLUMNS} FROM `{FILES_TABLE}` "
                                f"WHERE `path` LIKE %s ESCAPE '!'{page}", args):
            if row[1].startswith(prefix):  # binary collation: LIKE is exact already
                yield Remembered(row[0], row[1], Version(*row[2:]))

    def unremembered(self) -> Iterator[tuple[int, str]]:
        for row in self._stream(f"SELECT v.`id`, v.`des_video_path` FROM `videos` v LEFT JOIN "
                                f"`{FILES_TABLE}` f ON f.`video_id` = v.`id` "
                                "WHERE f.`video_id` IS NULL ORDER BY v.`id`", ()):
            yield row[0], row[1]

    def videos(self) -> Iterator[VideoRow]:
        for row in self._stream("SELECT `id`, `main_dir`, `des_video_path`, `status`, "
                                "`created_date`, `des_url` FROM `videos` ORDER BY `id`", ()):
            created = None if row[4] is None else str(row[4])
            yield VideoRow(row[0], row[1], row[2], row[3], created, row[5])

    def existing(self, ids: Sequence[int]) -> set[int]:
        found: set[int] = set()
        with self._guard() as cursor:
            for part in chunks(list(ids), IN_LIST):
                cursor.execute(f"SELECT `id` FROM `videos` WHERE `id` IN ({_marks(part)})", list(part))
                found.update(r[0] for r in cursor.fetchall())
        return found

    def _stream(self, query: str, args: tuple) -> Iterator[tuple]:
        """Rows as the server sends them (SSCursor): 100,000 rows never sit in memory at once."""
        with self._guard():
            assert self._conn is not None
            cursor = self._conn.cursor(pymysql.cursors.SSCursor)
            self._streaming = True
            try:
                cursor.execute(query, args or None)
                while True:
                    batch = cursor.fetchmany(10000)
                    if not batch:
                        break
                    yield from batch
            finally:
                self._streaming = False
                cursor.close()

    # --- writing --------------------------------------------------------------------

    def insert(self, videos: Sequence[NewVideo], replaces: Optional[Sequence[str]] = None) -> list[int]:
        ids = self.start_insert(videos, replaces)
        self.sync()
        return ids()

    def start_insert(self, videos: Sequence[NewVideo],
                     replaces: Optional[Sequence[str]] = None) -> Callable[[], list[int]]:
        self._ready()
        conn = self._conn
        assert conn is not None
        # Quoted here, not by execute(args): PyMySQL's per-value dispatch cost more than the
        # server's insert of the row (a cold start writes 100,000). Quoting is the loop's
        # work; the thread only waits for the server, which is what it is for.
        quote = conn.escape
        paths = [quote(v.path) for v in videos]
        roots = {main_dir: quote(main_dir) for main_dir in {v.main_dir for v in videos}}   # one a root
        values = [f"({roots[v.main_dir]}, {path}, 1, {quote(v.url)})" for v, path in zip(videos, paths)]
        job = self._thread().submit(self._insert_job, conn, list(videos), values, paths, replaces)
        self._commit = job
        return lambda: job.result(timeout=0)

    def _insert_job(self, conn: pymysql.connections.Connection, videos: list[NewVideo], values: list[str],
                    paths: list[str], replaces: Optional[Sequence[str]]) -> list[int]:
        """On the store's thread: the statements of one insert and its commit."""
        try:
            ids: list[int] = []
            with conn.cursor() as cursor:
                done = 0
                for part in _by_size(values):
                    cursor.execute("INSERT INTO `videos` (`main_dir`, `des_video_path`, `status`, `des_url`) "
                                   "VALUES " + ", ".join(part))
                    if self._id_step:
                        ids.extend(range(cursor.lastrowid, cursor.lastrowid + len(part) * self._id_step,
                                         self._id_step))
                    else:
                        ids.extend(_read_back(cursor, cursor.lastrowid, [v.path for v in videos[done:done + len(part)]]))
                    done += len(part)
                entries = [Remembered(i, v.path, v.version) for i, v in zip(ids, videos)]
                self._remember(cursor, entries, replaces, quoted=dict(zip(ids, paths)))
            conn.commit()
            return ids
        except BaseException as err:
            if isinstance(err, (pymysql.MySQLError, OSError)) and not _data_error(err):
                raise          # the connection is lost or broken: sync() closes it
            try:
                conn.rollback()
            except (pymysql.MySQLError, OSError):
                pass           # then the next statement finds the connection broken
            if _data_error(err):
                raise RowsRejected(_reason(err)) from None
            raise

    def remember(self, entries: Sequence[Remembered]) -> None:
        with self._guard(background=True) as cursor:
            self._remember(cursor, entries)

    def _remember(self, cursor, entries: Sequence[Remembered], replaces: Optional[Sequence[str]] = None,
                  quoted: Optional[dict[int, str]] = None) -> None:
        """`quoted`: video id -> its path quoted already (an insert quoted each path once)."""
        if quoted is None:
            # An insert's entries are one per path and per new id already; others may not be.
            entries = last_per_key(entries)
        paths = [e.path for e in entries] if replaces is None else list(replaces)
        for part in chunks(paths, IN_LIST):
            cursor.execute(f"DELETE FROM `{FILES_TABLE}` WHERE `path` IN ({_marks(part)}) "
                           f"AND BINARY `path` IN ({_marks(part)})", list(part) * 2)
        quote = cursor.connection.escape
        quoted = quoted or {}
        # %d refuses anything but a number: no value but the quoted path is text.
        values = ["(%d, %s, %d, %d, %d, %d)" % (e.video_id, quoted.get(e.video_id) or quote(e.path), *e.version)
                  for e in entries]
        for part in _by_size(values):
            cursor.execute(UPSERT_FILES_HEAD + ", ".join(part) + UPSERT_FILES_TAIL)

    def resignal(self, changes: Sequence[Remembered]) -> None:
        with self._guard(background=True) as cursor:
            for part in chunks([c.video_id for c in changes], IN_LIST):
                cursor.execute("UPDATE `videos` SET `status` = 1, `created_date` = NOW() "
                               f"WHERE `id` IN ({_marks(part)})", list(part))
            self._remember(cursor, changes)

    def move(self, old: str, new: str, main_dir: str, old_url: str, new_url: str) -> int:
        # LIKE and = follow the case-insensitive collation (and use the index); the BINARY
        # LEFT() comparisons keep only rows really at or below `old`.
        where = ("(`{c}` = %s OR `{c}` LIKE %s ESCAPE '!') AND "
                 "(BINARY `{c}` = BINARY %s OR BINARY LEFT(`{c}`, %s) = BINARY %s)")
        at = [old, like_below(old), old, len(old) + 1, old + "/"]
        with self._guard() as cursor:
            moved = cursor.execute(
                "UPDATE `videos` SET `des_video_path` = CONCAT(%s, SUBSTRING(`des_video_path`, %s)), "
                "`des_url` = IF(BINARY LEFT(`des_url`, %s) = BINARY %s, "
                "CONCAT(%s, SUBSTRING(`des_url`, %s)), `des_url`), `main_dir` = %s "
                "WHERE " + where.format(c="des_video_path"),
                [new, len(old) + 1, len(old_url), old_url, new_url, len(old_url) + 1, main_dir, *at])
            cursor.execute(f"UPDATE `{FILES_TABLE}` SET `path` = CONCAT(%s, SUBSTRING(`path`, %s)) "
                           "WHERE " + where.format(c="path"), [new, len(old) + 1, *at])
        return moved

    def withdraw(self, ids: Sequence[int]) -> int:
        deleted = 0
        with self._guard(background=True) as cursor:
            for part in chunks(list(ids), IN_LIST):
                deleted += cursor.execute(f"DELETE FROM `videos` WHERE `id` IN ({_marks(part)})", list(part))
                cursor.execute(f"DELETE FROM `{FILES_TABLE}` WHERE `video_id` IN ({_marks(part)})", list(part))
        return deleted

    def forget(self, ids: Sequence[int]) -> None:
        with self._guard(background=True) as cursor:
            for part in chunks(list(ids), IN_LIST):
                cursor.execute(f"DELETE FROM `{FILES_TABLE}` WHERE `video_id` IN ({_marks(part)})", list(part))

    # --- claims ---------------------------------------------------------------------

    def claim(self, root: str) -> Optional[str]:
        if root in self._claimed and self.holds(root):
            return None
        name = lock_name(self._db.name, root)
        try:
            if self._claims_conn is None:
                self._claims_conn = self._connect(autocommit=True, timeout=CLAIM_IO_TIMEOUT)
                self._claimed.clear()
                # A holder host that dies without closing its TCP connection would keep the
                # lock until keepalive gives up (hours). The holder asks holds() every
                # poll_interval, so an idle minute means it is gone: the server drops it.
                with self._claims_conn.cursor() as cursor:
                    cursor.execute("SET SESSION wait_timeout = %s", (CLAIM_IDLE_SECONDS,))
            with self._claims_conn.cursor() as cursor:
                cursor.execute("SELECT GET_LOCK(%s, 0)", (name,))
                got = cursor.fetchone()[0]
                if got == 1:
                    cursor.execute(f"INSERT INTO `{CLAIMS_TABLE}` (`lock_name`, `root`, `holder`, `since`) "
                                   "VALUES (%s, %s, %s, NOW()) ON DUPLICATE KEY UPDATE `root` = VALUES(`root`), "
                                   "`holder` = VALUES(`holder`), `since` = VALUES(`since`)",
                                   (name, root, holder()))
                    self._claimed.add(root)
                    return None
                if got is None:
                    raise StoreUnavailable(f"GET_LOCK({name}) failed")
                cursor.execute(f"SELECT `holder` FROM `{CLAIMS_TABLE}` WHERE `lock_name` = %s", (name,))
                found = cursor.fetchone()
                return found[0] if found else "another instance"
        except (pymysql.MySQLError, OSError) as err:
            self._close_claims()
            raise StoreUnavailable(_reason(err)) from None

    def holds(self, root: str) -> bool:
        if root not in self._claimed or self._claims_conn is None:
            return False
        try:
            with self._claims_conn.cursor() as cursor:
                cursor.execute("SELECT IS_USED_LOCK(%s) = CONNECTION_ID()",
                               (lock_name(self._db.name, root),))
                return cursor.fetchone()[0] == 1
        except Exception:  # whatever went wrong, the lock cannot be trusted: reconnect later
            self._close_claims()
            return False

    def release(self, root: str) -> None:
        if root not in self._claimed or self._claims_conn is None:
            return
        self._claimed.discard(root)
        name = lock_name(self._db.name, root)
        try:
            with self._claims_conn.cursor() as cursor:
                # The holder row goes first: once the lock is free, it is the next holder's.
                cursor.execute(f"DELETE FROM `{CLAIMS_TABLE}` WHERE `lock_name` = %s AND `holder` = %s",
                               (name, holder()))
                cursor.execute("SELECT RELEASE_LOCK(%s)", (name,))
        except (pymysql.MySQLError, OSError):
            self._close_claims()  # the lock went with the connection

    # --- connections ----------------------------------------------------------------

    def close(self) -> None:
        for root in list(self._claimed):
            self.release(root)
        self._close_claims()
        self._close_main()

    def _close_main(self) -> None:
        commit, self._commit = self._commit, None
        if commit is not None:
            try:   # the connection is the commit's until it ends (bounded by its read timeout)
                commit.result(timeout=IO_TIMEOUT + 1)
            except Exception:  # closing anyway: what landed is read back on reconnecting
                pass
        self._conn, conn = None, self._conn
        self._streaming = False
        _quietly_close(conn)

    def _close_claims(self) -> None:
        self._claims_conn, conn = None, self._claims_conn
        self._claimed.clear()
        _quietly_close(conn)

    @property
    def busy(self) -> bool:
        """A write is still under way on the store's thread (a commit, or an insert's
        statements and commit): the next call would wait for it."""
        return self._commit is not None and not self._commit.done()

    def sync(self) -> None:
        """Wait for the write under way; its failure is this call's StoreUnavailable (or
        RowsRejected: an insert's rows refused, rolled back, the connection kept)."""
        commit, self._commit = self._commit, None
        if commit is None:
            return
        try:
            commit.result(timeout=IO_TIMEOUT + 1)
        except (pymysql.MySQLError, OSError, FuturesTimeout) as err:
            self._close_main()
            raise StoreUnavailable(f"the last commit failed: {_reason(err)}") from None

    def _thread(self) -> ThreadPoolExecutor:
        if self._committer is None:
            self._committer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-commit")
        return self._committer

    def _commit_in_background(self, conn: pymysql.connections.Connection) -> None:
        self._commit = self._thread().submit(conn.commit)

    def _guard(self, background: bool = False) -> "_Transaction":
        self._ready()
        return _Transaction(self, background)

    def _ready(self) -> None:
        """The write before settled, no stream open, a connection there: the next may go."""
        self.sync()
        if self._streaming:
            # PyMySQL would silently drain the rest of the stream to run this statement.
            raise RuntimeError("a store call while a stream is still being read: finish or close it first")
        if self._conn is None:
            raise StoreUnavailable("not connected")


class _Transaction:
    """Commits on success; on failure rolls back and turns the driver's error into ours."""

    def __init__(self, store: MySQLStore, background: bool) -> None:
        self.store = store
        self.background = background     # commit on the store's thread (see MySQLStore.busy)

    def __enter__(self) -> pymysql.cursors.Cursor:
        assert self.store._conn is not None
        self.cursor = self.store._conn.cursor()
        return self.cursor

    def __exit__(self, kind, err, tb) -> bool:
        conn = self.store._conn
        if err is None:
            if self.background:
                self.store._commit_in_background(conn)
                return False
            try:
                conn.commit()
                return False
            except (pymysql.MySQLError, OSError) as commit_err:
                err = commit_err
        if _data_error(err):
            try:
                conn.rollback()
            except (pymysql.MySQLError, OSError):
                self.store._close_main()
            raise RowsRejected(_reason(err)) from None
        if isinstance(err, StoreUnavailable):
            self.store._close_main()
            return False
        if isinstance(err, (pymysql.MySQLError, OSError)):
            self.store._close_main()
            raise StoreUnavailable(_reason(err)) from None
        try:  # a stream left half read, or a bug: end the transaction, keep the connection
            conn.rollback()
        except (pymysql.MySQLError, OSError):
            self.store._close_main()
        return False


def _data_error(err: BaseException) -> bool:
    """The rows are at fault, not the server."""
    return isinstance(err, (UnicodeError, OverflowError, RowsRejected)) or (
        isinstance(err, pymysql.MySQLError) and _code(err) in _DATA)


def _consecutive_id_step(cursor) -> int:
    """auto_increment_increment when the server gives one INSERT's rows consecutive ids, else 0.

    With innodb_autoinc_lock_mode 0 or 1 a multi-row INSERT of known length holds the table's
    AUTO-INC lock for the whole statement: its ids are first, first + step, ... and no other
    writer's rows can interleave. Mode 2 (MySQL 8's default) allows interleaving."""
    try:
        cursor.execute("SELECT @@innodb_autoinc_lock_mode, @@auto_increment_increment")
        mode, step = cursor.fetchone()
    except pymysql.MySQLError as err:
        if _code(err) >= 2000:
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


def _by_size(values: list[str]) -> Iterator[list[str]]:
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


def _marks(part: Sequence) -> str:
    return ", ".join(["%s"] * len(part))


def _quietly_close(conn: Optional[pymysql.connections.Connection]) -> None:
    if conn is not None:
        try:
            conn.close()
        except Exception:  # already broken: nothing left to close
            pass


def _code(err: BaseException) -> int:
    args = getattr(err, "args", ())
    return args[0] if args and isinstance(args[0], int) else 0


def _reason(err: BaseException) -> str:
    """The server's message without the driver's tuple dressing (never holds a password)."""
    if isinstance(err, UnicodeError):
        return f"a value is not valid UTF-8 text ({type(err).__name__})"
    args = getattr(err, "args", ())
    if len(args) >= 2:
        return f"{args[1]} (MySQL error {args[0]})"
    return str(err) or type(err).__name__
