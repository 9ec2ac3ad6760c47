"""The production store: the existing `videos` table of a MySQL/MariaDB server, via PyMySQL.

`des_video_path` is utf8mb4_general_ci, so the server thinks `A.mp4`, `a.mp4` and `a.mp4 `
are one path; files on disk disagree. Every statement that selects rows by path pairs the
plain comparison (which uses the index) with a BINARY one (which is exact).
Leases are rows of `vfs_notifier_leases` (lease.py says why not GET_LOCK): taken and
renewed by conditional UPDATEs on a second connection, timed by the server's clock, and
checked by every write in its own transaction (the fence) by an UPDATE of the lease row,
which on a Galera cluster also puts the row in the write's certification set.
Several servers may be listed (database.nodes): the first that answers is used, and a
lost connection moves on to the next.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from typing import Callable, Iterator, Optional, Sequence

import uuid

import pymysql
import pymysql.cursors
from pymysql.constants import CLIENT

from .settings import Database
from .store import (FILES_TABLE, LEASES_TABLE, Fence, Lease, LeaseLost, NewVideo, Remembered, RowsRejected,
                    StoreUnavailable, Version, VideoRow, WriteConflict, chunks, holder, last_per_key,
                    root_digest)

log = logging.getLogger("vfs_notifier")

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

# One row per watched root and table. `token` grows with every takeover; `expires` is the
# server's clock (NOW(6)), never a host's; `writes` counts fenced writes (the fence's UPDATE
# must change the row, or Galera would not certify it against a takeover).
CREATE_LEASES = f"""\
CREATE TABLE IF NOT EXISTS `{LEASES_TABLE}` (
  `lease_key` char(40) NOT NULL, `root` varchar(1024) NOT NULL,
  `holder` varchar(255) NOT NULL, `instance` char(32) NOT NULL,
  `token` bigint unsigned NOT NULL, `expires` datetime(6) NOT NULL,
  `taken` datetime(6) NOT NULL, `writes` bigint unsigned NOT NULL DEFAULT 0,
  PRIMARY KEY (`lease_key`)
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
# Leases are one-line queries on their own connection; housekeeping asks them in the same
# loop pass as a batch may be written, so both together must stay below half WatchdogSec.
LEASE_IO_TIMEOUT = 2
# Bytes of values per INSERT statement, a character counted as 4 (UTF-8 at worst): below
# max_allowed_packet (4 MB on MySQL 5.7, 16 MB on MariaDB) whatever the paths hold.
STATEMENT_BYTES = 1_500_000
IN_LIST = 500

# MySQL error numbers that mean "not allowed to", as opposed to "cannot reach".
_DENIED = {1044, 1142, 1227}
# Refused for another transaction's sake, the connection still good: a deadlock or a Galera
# certification failure (1213), a lock wait timeout (1205).
_CONFLICT = {1213, 1205}
# "WSREP has not yet prepared node for application use": a Galera node out of the cluster's
# primary component; its data may be stale, so another node is used.
_NODE_NOT_READY = 1047
# Data errors: the rows are at fault, not the server.
_DATA = {1048, 1264, 1366, 1406, 1265}


def old_lock_name(database: str, root: str) -> str:
    """The named lock by which version 1.1 claimed a root (MySQLStore.lease leaves it such a root)."""
    return "vfs-notifier:" + root_digest(f"{database}.videos\0{root}")


def lease_key(database: str, root: str) -> str:
    """The lease row of one root in one database's table."""
    return root_digest(f"{database}.videos\0{root}")


def like_below(directory: str) -> str:
    return directory.replace("!", "!!").replace("%", "!%").replace("_", "!_") + "/%"


class MySQLStore:
    """Two connections to one server: one for rows, one for leases (renewed while a write is
    under way on the first). Both are opened by open() on the first listed server that
    answers, starting with the next one when the last connection was lost."""

    def __init__(self, database: Database) -> None:
        self._db = database
        self._conn: Optional[pymysql.connections.Connection] = None
        self._lease_conn: Optional[pymysql.connections.Connection] = None
        # This process's leases are told from an earlier run's on the same host and pid.
        self._instance = uuid.uuid4().hex
        self._servers = _servers(database)
        self._node = 0             # the server in use, or to try first
        self._node_lost = False    # its connection was lost: open() starts with the next one
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
        self.description = self._describe(0)

    def _describe(self, node: int) -> str:
        db = self._db
        many = f" (server {node + 1} of {len(self._servers)})" if len(self._servers) > 1 else ""
        return f"MySQL {db.user}@{_where(self._servers[node])}/{db.name}{many}"

    def _connect(self, node: int, autocommit: bool, timeout: int = IO_TIMEOUT,
                 flags: int = 0) -> pymysql.connections.Connection:
        db = self._db
        host, port, sock = self._servers[node]
        try:
            return pymysql.connect(
                host=host or "localhost", port=port, unix_socket=sock or None,
                user=db.user, password=db.password, database=db.name, charset="utf8mb4",
                autocommit=autocommit, connect_timeout=min(CONNECT_TIMEOUT, timeout),
                read_timeout=timeout, write_timeout=timeout, client_flag=flags)
        except pymysql.MySQLError as err:
            raise StoreUnavailable(_reason(err)) from None
        except OSError as err:
            raise StoreUnavailable(str(err)) from None

    def open(self) -> None:
        self.close()
        count = len(self._servers)
        first = (self._node + 1) % count if self._node_lost else self._node
        problems = []
        for step in range(count):
            node = (first + step) % count
            try:
                self._open_on(node)
            except StoreUnavailable as err:
                self.close()
                problems.append(f"{_where(self._servers[node])}: {err}" if count > 1 else str(err))
                continue
            if node != self._node or self._node_lost:
                if count > 1:
                    log.info("database: using %s", self._describe(node))
            self._node, self._node_lost = node, False
            self.description = self._describe(node)
            return
        raise StoreUnavailable("; ".join(problems))

    def _open_on(self, node: int) -> None:
        self._conn = self._connect(node, autocommit=False)
        with self._guard() as cursor:
            galera = _galera_ready(cursor)
            for table, ddl in (("videos", CREATE_TABLE), (FILES_TABLE, CREATE_FILES),
                               (LEASES_TABLE, CREATE_LEASES)):
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
        # FOUND_ROWS: a renewal in the same microsecond changes no value but still matched.
        self._lease_conn = self._connect(node, autocommit=False, timeout=LEASE_IO_TIMEOUT,
                                         flags=CLIENT.FOUND_ROWS)
        try:
            with self._lease_conn.cursor() as cursor:
                # A takeover must not wait on the holder's fence (a row lock held to its
                # commit): it fails within a second and is tried again at the next poll.
                cursor.execute("SET SESSION innodb_lock_wait_timeout = 1")
                if galera:
                    cursor.execute("SET SESSION wsrep_sync_wait = 1")
        except (pymysql.MySQLError, OSError) as err:
            raise StoreUnavailable(_reason(err)) from None

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

    def insert(self, videos: Sequence[NewVideo], fence: Fence, replaces: Optional[Sequence[str]] = None) -> list[int]:
        ids = self.start_insert(videos, fence, replaces)
        self.sync()
        return ids()

    def start_insert(self, videos: Sequence[NewVideo], fence: Fence,
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
        job = self._thread().submit(self._insert_job, conn, list(videos), values, paths, replaces, dict(fence))
        self._commit = job
        return lambda: job.result(timeout=0)

    def _insert_job(self, conn: pymysql.connections.Connection, videos: list[NewVideo], values: list[str],
                    paths: list[str], replaces: Optional[Sequence[str]], fence: Fence) -> list[int]:
        """On the store's thread: the statements of one insert, its fence and its commit."""
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
                self._fence(cursor, fence)
            conn.commit()
            return ids
        except BaseException as err:
            if (isinstance(err, (pymysql.MySQLError, OSError)) and not _data_error(err)
                    and _code(err) not in _CONFLICT):
                raise          # the connection is lost or broken: sync() closes it
            try:
                conn.rollback()
            except (pymysql.MySQLError, OSError):
                pass           # then the next statement finds the connection broken
            if _data_error(err):
                raise RowsRejected(_reason(err)) from None
            raise

    def remember(self, entries: Sequence[Remembered], fence: Fence) -> None:
        with self._guard(background=True, fence=fence) as cursor:
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

    def resignal(self, changes: Sequence[Remembered], fence: Fence) -> None:
        with self._guard(background=True, fence=fence) as cursor:
            for part in chunks([c.video_id for c in changes], IN_LIST):
                cursor.execute("UPDATE `videos` SET `status` = 1, `created_date` = NOW() "
                               f"WHERE `id` IN ({_marks(part)})", list(part))
            self._remember(cursor, changes)

    def move(self, old: str, new: str, main_dir: str, old_url: str, new_url: str, fence: Fence) -> int:
        # LIKE and = follow the case-insensitive collation (and use the index); the BINARY
        # LEFT() comparisons keep only rows really at or below `old`.
        where = ("(`{c}` = %s OR `{c}` LIKE %s ESCAPE '!') AND "
                 "(BINARY `{c}` = BINARY %s OR BINARY LEFT(`{c}`, %s) = BINARY %s)")
        at = [old, like_below(old), old, len(old) + 1, old + "/"]
        with self._guard(fence=fence) as cursor:
            moved = cursor.execute(
                "UPDATE `videos` SET `des_video_path` = CONCAT(%s, SUBSTRING(`des_video_path`, %s)), "
                "`des_url` = IF(BINARY LEFT(`des_url`, %s) = BINARY %s, "
                "CONCAT(%s, SUBSTRING(`des_url`, %s)), `des_url`), `main_dir` = %s "
                "WHERE " + where.format(c="des_video_path"),
                [new, len(old) + 1, len(old_url), old_url, new_url, len(old_url) + 1, main_dir, *at])
            cursor.execute(f"UPDATE `{FILES_TABLE}` SET `path` = CONCAT(%s, SUBSTRING(`path`, %s)) "
                           "WHERE " + where.format(c="path"), [new, len(old) + 1, *at])
        return moved

    def withdraw(self, ids: Sequence[int], fence: Fence) -> int:
        deleted = 0
        with self._guard(background=True, fence=fence) as cursor:
            for part in chunks(list(ids), IN_LIST):
                deleted += cursor.execute(f"DELETE FROM `videos` WHERE `id` IN ({_marks(part)})", list(part))
                cursor.execute(f"DELETE FROM `{FILES_TABLE}` WHERE `video_id` IN ({_marks(part)})", list(part))
        return deleted

    def forget(self, ids: Sequence[int], fence: Fence) -> None:
        with self._guard(background=True, fence=fence) as cursor:
            for part in chunks(list(ids), IN_LIST):
                cursor.execute(f"DELETE FROM `{FILES_TABLE}` WHERE `video_id` IN ({_marks(part)})", list(part))

    # --- leases -------------------------------------------------------------------

    def lease(self, root: str, token: int, seconds: float) -> Lease:
        conn = self._lease_conn
        if conn is None:
            raise StoreUnavailable("not connected")
        key = lease_key(self._db.name, root)
        micros = int(seconds * 1_000_000)
        try:
            with conn.cursor() as cursor:
                if token:
                    try:
                        renewed = cursor.execute(
                            f"UPDATE `{LEASES_TABLE}` SET `expires` = NOW(6) + INTERVAL %s MICROSECOND "
                            "WHERE `lease_key` = %s AND `instance` = %s AND `token` = %s",
                            (micros, key, self._instance, token))
                        conn.commit()
                    except pymysql.MySQLError as err:
                        if _code(err) not in _CONFLICT:
                            raise
                        # A takeover under way, or our own fence's row lock: not an answer.
                        # The fence of the next write says for sure; ask again next poll.
                        _quietly_rollback(conn)
                        return Lease(token, "")
                    if renewed:
                        return Lease(token, "")
                # Version 1.1 claimed a root by GET_LOCK alone and knows nothing of leases:
                # during a rolling upgrade, a root it holds is left to it.
                cursor.execute("SELECT IS_USED_LOCK(%s)", (old_lock_name(self._db.name, root),))
                if cursor.fetchone()[0] is not None:
                    conn.commit()
                    return Lease(0, "a vfs-notifier 1.1 instance (by its GET_LOCK claim)")
                try:
                    # A missing row is made lapsed, then taken like any lapsed one.
                    cursor.execute(
                        f"INSERT IGNORE INTO `{LEASES_TABLE}` (`lease_key`, `root`, `holder`, `instance`, "
                        "`token`, `expires`, `taken`) VALUES (%s, %s, '', '', 0, "
                        "NOW(6) - INTERVAL 1 SECOND, NOW(6))", (key, root))
                    taken = cursor.execute(
                        f"UPDATE `{LEASES_TABLE}` SET `token` = `token` + 1, `holder` = %s, `instance` = %s, "
                        "`expires` = NOW(6) + INTERVAL %s MICROSECOND, `taken` = NOW(6) "
                        "WHERE `lease_key` = %s AND `expires` <= NOW(6)",
                        (holder(), self._instance, micros, key))
                    new_token = 0
                    if taken:
                        cursor.execute(f"SELECT `token` FROM `{LEASES_TABLE}` WHERE `lease_key` = %s", (key,))
                        new_token = int(cursor.fetchone()[0])
                    conn.commit()    # Galera: certified here; two takers, one commits
                except pymysql.MySQLError as err:
                    if _code(err) not in _CONFLICT:
                        raise
                    _quietly_rollback(conn)
                    new_token = 0
                if new_token:
                    return Lease(new_token, "")
                cursor.execute(f"SELECT `holder` FROM `{LEASES_TABLE}` WHERE `lease_key` = %s", (key,))
                found = cursor.fetchone()
                conn.commit()
                return Lease(0, (found[0] if found else "") or "another instance")
        except (pymysql.MySQLError, OSError) as err:
            self._lost()
            raise StoreUnavailable(_reason(err)) from None

    def release(self, root: str, token: int) -> None:
        conn = self._lease_conn
        if conn is None or not token:
            return
        try:
            with conn.cursor() as cursor:
                cursor.execute(f"UPDATE `{LEASES_TABLE}` SET `expires` = NOW(6) - INTERVAL 1 SECOND "
                               "WHERE `lease_key` = %s AND `instance` = %s AND `token` = %s",
                               (lease_key(self._db.name, root), self._instance, token))
            conn.commit()
        except (pymysql.MySQLError, OSError):
            _quietly_rollback(conn)   # then it lapses by itself

    def _fence(self, cursor, fence: Fence) -> None:
        """Last statement of every write: each lease still ours and current, or LeaseLost.
        The UPDATE (not a SELECT) locks the row to the commit, so a takeover on this server
        waits for it, and on Galera puts the row in the write set certified against one."""
        lost = []
        for root, token in fence.items():
            if not token or not cursor.execute(
                    f"UPDATE `{LEASES_TABLE}` SET `writes` = `writes` + 1 WHERE `lease_key` = %s "
                    "AND `instance` = %s AND `token` = %s AND `expires` > NOW(6)",
                    (lease_key(self._db.name, root), self._instance, token)):
                lost.append(root)
        if lost:
            raise LeaseLost(lost)

    # --- connections ----------------------------------------------------------------

    def close(self) -> None:
        self._lease_conn, conn = None, self._lease_conn
        _quietly_close(conn)
        self._close_main()

    def _lost(self) -> None:
        """A connection was lost: both go, and open() tries the next server first."""
        self._node_lost = True
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

    @property
    def busy(self) -> bool:
        """A write is still under way on the store's thread (a commit, or an insert's
        statements and commit): the next call would wait for it."""
        return self._commit is not None and not self._commit.done()

    def sync(self) -> None:
        """Wait for the write under way; its failure is this call's StoreUnavailable (or, the
        write rolled back and the connection kept: RowsRejected, an insert's rows refused;
        LeaseLost, its fence failed; WriteConflict, the cluster refused it)."""
        commit, self._commit = self._commit, None
        if commit is None:
            return
        try:
            commit.result(timeout=IO_TIMEOUT + 1)
        except (pymysql.MySQLError, OSError, FuturesTimeout) as err:
            if _code(err) in _CONFLICT and self._conn is not None:
                _quietly_rollback(self._conn)
                raise WriteConflict(_reason(err)) from None
            self._lost()
            raise StoreUnavailable(f"the last commit failed: {_reason(err)}") from None

    def _thread(self) -> ThreadPoolExecutor:
        if self._committer is None:
            self._committer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-commit")
        return self._committer

    def _commit_in_background(self, conn: pymysql.connections.Connection) -> None:
        self._commit = self._thread().submit(conn.commit)

    def _guard(self, background: bool = False, fence: Optional[Fence] = None) -> "_Transaction":
        self._ready()
        return _Transaction(self, background, fence)

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

    def __init__(self, store: MySQLStore, background: bool, fence: Optional[Fence]) -> None:
        self.store = store
        self.background = background     # commit on the store's thread (see MySQLStore.busy)
        self.fence = fence               # a write's: checked last, before the commit

    def __enter__(self) -> pymysql.cursors.Cursor:
        assert self.store._conn is not None
        self.cursor = self.store._conn.cursor()
        return self.cursor

    def __exit__(self, kind, err, tb) -> bool:
        conn = self.store._conn
        if err is None and self.fence is not None:
            try:
                self.store._fence(self.cursor, self.fence)
            except (LeaseLost, pymysql.MySQLError, OSError) as fence_err:
                err = fence_err
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
                self.store._lost()
            raise RowsRejected(_reason(err)) from None
        if isinstance(err, LeaseLost) or (isinstance(err, pymysql.MySQLError) and _code(err) in _CONFLICT):
            try:
                conn.rollback()
            except (pymysql.MySQLError, OSError):
                self.store._lost()
                raise StoreUnavailable(_reason(err)) from None
            if isinstance(err, LeaseLost):
                raise err
            raise WriteConflict(_reason(err)) from None
        if isinstance(err, StoreUnavailable):
            self.store._lost()
            return False
        if isinstance(err, (pymysql.MySQLError, OSError)):
            self.store._lost()
            raise StoreUnavailable(_reason(err)) from None
        try:  # a stream left half read, or a bug: end the transaction, keep the connection
            conn.rollback()
        except (pymysql.MySQLError, OSError):
            self.store._lost()
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


def _quietly_rollback(conn: pymysql.connections.Connection) -> None:
    try:
        conn.rollback()
    except (pymysql.MySQLError, OSError):
        pass          # then the next statement finds the connection broken


def _servers(database: Database) -> tuple[tuple[str, int, str], ...]:
    """(host, port, socket) of each server to try: the socket or MYSQL_HOST, then the nodes."""
    first = [("", 0, database.socket)] if database.socket else []
    tcp = [(host, port, "") for host, port in database.servers]
    return tuple(first + tcp) or (("localhost", database.port, ""),)


def _where(server: tuple[str, int, str]) -> str:
    host, port, sock = server
    if sock:
        return f"socket {sock}"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _galera_ready(cursor) -> bool:
    """True on a Galera node (then reads wait for the cluster: wsrep_sync_wait), False on a
    plain server; StoreUnavailable on a node not ready to serve (out of the primary
    component, or still joining), so that the next server is used."""
    try:
        cursor.execute("SHOW VARIABLES LIKE 'wsrep_on'")
        row = cursor.fetchone()
        if not row or str(row[1]).upper() != "ON":
            return False
        cursor.execute("SHOW STATUS LIKE 'wsrep_ready'")
        ready = cursor.fetchone()
    except pymysql.MySQLError as err:
        if _code(err) >= 2000:
            raise     # the client lost the server: the caller's reconnect path
        return False
    if not ready or str(ready[1]).upper() != "ON":
        raise StoreUnavailable("Galera node not ready (wsrep_ready is OFF: not in the primary component)")
    cursor.execute("SET SESSION wsrep_sync_wait = 1")
    return True


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
