"""The production store: the existing `videos` table of a MySQL/MariaDB server, via PyMySQL.

Two connections to one server: one for rows, one for leases (renewed while a write is under
way on the first). Both are opened by open() on the first listed server that answers
(servers.py), starting with the next one when the last connection was lost. Reads are the
queries of reads.py and bulk_read.py, streamed here. Every write is one transaction
(statements.py) whose last statement is its fence (leases.py), committed on a thread of its
own (commit_thread.py), an insert's statements with it (insert.py); errors are turned into
the store interface's (errors.py).
"""

from __future__ import annotations

import logging
import uuid
from concurrent.futures import TimeoutError as FuturesTimeout
from functools import partial
from typing import Callable, Iterator, Optional, Sequence

import pymysql
import pymysql.cursors
from pymysql.constants import CLIENT

from ..settings import Database
from ..store import (Columns, Fence, Lease, LeaseLost, NewVideo, Remembered, RowsRejected, StoreUnavailable,
                     VideoRow, WriteConflict, chunks)
from . import bulk_read, insert, leases, reads, statements
from .commit_thread import CommitThread
from .errors import CONFLICT, code, data_error, reason
from .schema import create_missing
from .servers import (IO_TIMEOUT, LEASE_IO_TIMEOUT, bound_idle_writes, connect, galera_ready, quietly_close,
                      quietly_rollback, servers, where)
from .statements import IN_LIST, consecutive_id_step

log = logging.getLogger("vfs_notifier")

STREAM_BATCH = 10000    # rows of a streamed read held at once


class MySQLStore:
    def __init__(self, database: Database) -> None:
        self._db = database
        self._conn: Optional[pymysql.connections.Connection] = None
        self._lease_conn: Optional[pymysql.connections.Connection] = None
        # This process's leases are told from an earlier run's on the same host and pid.
        self._instance = uuid.uuid4().hex
        self._servers = servers(database)
        self._node = 0             # the server in use, or to try first
        self._node_lost = False    # its connection was lost: open() starts with the next one
        self._streaming = False  # an SSCursor's rows are still arriving on self._conn
        # The auto-increment step when one multi-row INSERT is sure to get consecutive ids
        # (innodb_autoinc_lock_mode 0 or 1, MariaDB's default); 0: read the ids back.
        self._id_step = 0
        self._commits = CommitThread(timeout=IO_TIMEOUT + 1)
        # Read ahead by remembered_columns(), for the unremembered() that follows it; any other
        # call in between (_ready) drops it.
        self._unremembered_ahead: Optional[list[int]] = None
        self.description = self._describe(0)

    def _describe(self, node: int) -> str:
        db = self._db
        many = f" (server {node + 1} of {len(self._servers)})" if len(self._servers) > 1 else ""
        return f"MySQL {db.user}@{where(self._servers[node])}/{db.name}{many}"

    def _connect(self, node: int, autocommit: bool, timeout: int = IO_TIMEOUT,
                 flags: int = 0) -> pymysql.connections.Connection:
        return connect(self._db, self._servers[node], autocommit, timeout, flags)

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
                problems.append(f"{where(self._servers[node])}: {err}" if count > 1 else str(err))
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
            galera = galera_ready(cursor)
            bound_idle_writes(cursor, self._db.lease_seconds)
            create_missing(cursor, self._db)
            self._id_step = consecutive_id_step(cursor)
        # FOUND_ROWS: a renewal in the same microsecond changes no value but still matched.
        self._lease_conn = self._connect(node, autocommit=False, timeout=LEASE_IO_TIMEOUT,
                                         flags=CLIENT.FOUND_ROWS)
        leases.prepare_session(self._lease_conn, self._db.lease_seconds, galera)

    # --- reading --------------------------------------------------------------------

    def remembered(self) -> Iterator[Remembered]:
        return reads.remembered(self._stream)

    def remembered_columns(self) -> Iterator[Columns]:
        # One transaction: one snapshot of the table. The question a restart asks next,
        # unremembered(), is answered on the reading thread meanwhile, from the same snapshot.
        ahead: list[list[int]] = []
        with self._guard() as cursor:
            yield from bulk_read.remembered_columns(
                cursor, then=lambda cursor: ahead.append(bulk_read.unremembered_ids(cursor)))
        self._unremembered_ahead = ahead[0] if ahead else None

    def remembered_below(self, directory: str, after_id: int = 0, limit: int = 0) -> Iterator[Remembered]:
        return reads.remembered_below(self._stream, directory, after_id, limit)

    def unremembered(self) -> Iterator[tuple[int, str]]:
        ids, self._unremembered_ahead = self._unremembered_ahead, None
        if ids is None:
            with self._guard() as cursor:
                ids = bulk_read.unremembered_ids(cursor)
        for part in chunks(ids, IN_LIST):
            with self._guard() as cursor:
                rows = reads.paths_of(cursor, part)
            yield from rows

    def videos(self) -> Iterator[VideoRow]:
        return reads.videos(self._stream)

    def existing(self, ids: Sequence[int]) -> set[int]:
        with self._guard() as cursor:
            return reads.existing(cursor, ids)

    def _stream(self, query: str, args: tuple) -> Iterator[tuple]:
        """Rows as the server sends them (SSCursor): 100,000 rows never sit in memory at once."""
        for batch in self._stream_batches(query, args):
            yield from batch

    def _stream_batches(self, query: str, args: tuple) -> Iterator[tuple]:
        """_stream()'s rows, a batch of up to STREAM_BATCH at a time."""
        with self._guard():
            assert self._conn is not None
            cursor = self._conn.cursor(pymysql.cursors.SSCursor)
            self._streaming = True
            try:
                cursor.execute(query, args or None)
                while True:
                    batch = cursor.fetchmany(STREAM_BATCH)
                    if not batch:
                        break
                    yield batch
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
        values, paths = insert.quote(conn, videos)
        check = partial(leases.check_fence, database=self._db.name, instance=self._instance, fence=dict(fence))
        job = self._commits.start(insert.run, conn, self._id_step, check, list(videos), values, paths, replaces)
        return lambda: job.result(timeout=0)

    def remember(self, entries: Sequence[Remembered], fence: Fence) -> None:
        with self._guard(background=True, fence=fence) as cursor:
            statements.remember(cursor, entries)

    def resignal(self, changes: Sequence[Remembered], fence: Fence) -> None:
        with self._guard(background=True, fence=fence) as cursor:
            statements.resignal(cursor, changes)

    def move(self, old: str, new: str, main_dir: str, old_url: str, new_url: str, fence: Fence) -> int:
        with self._guard(fence=fence) as cursor:
            return statements.move(cursor, old, new, main_dir, old_url, new_url)

    def withdraw(self, ids: Sequence[int], fence: Fence) -> int:
        with self._guard(background=True, fence=fence) as cursor:
            return statements.withdraw(cursor, ids)

    def forget(self, ids: Sequence[int], fence: Fence) -> None:
        with self._guard(background=True, fence=fence) as cursor:
            statements.forget(cursor, ids)

    # --- leases -------------------------------------------------------------------

    def lease(self, root: str, token: int, seconds: float) -> Lease:
        if self._lease_conn is None:
            raise StoreUnavailable("not connected")
        try:
            return leases.take_or_renew(self._lease_conn, self._db.name, self._instance, root, token, seconds)
        except (pymysql.MySQLError, OSError) as err:
            self._lost()
            raise StoreUnavailable(reason(err)) from None

    def release(self, root: str, token: int) -> None:
        if self._lease_conn is not None and token:
            leases.release(self._lease_conn, self._db.name, self._instance, root, token)

    # --- connections ----------------------------------------------------------------

    def close(self) -> None:
        self._lease_conn, conn = None, self._lease_conn
        quietly_close(conn)
        self._close_main()

    def _lost(self) -> None:
        """A connection was lost: both go, and open() tries the next server first."""
        self._node_lost = True
        self._close_main()

    def _close_main(self) -> None:
        self._commits.settle()
        self._conn, conn = None, self._conn
        self._streaming = False
        quietly_close(conn)

    @property
    def busy(self) -> bool:
        """A write is still under way on the store's thread (a commit, or an insert's
        statements and commit): the next call would wait for it."""
        return self._commits.busy

    def sync(self) -> None:
        """Wait for the write under way; its failure is this call's StoreUnavailable (or, the
        write rolled back and the connection kept: RowsRejected, an insert's rows refused;
        LeaseLost, its fence failed; WriteConflict, the cluster refused it)."""
        try:
            self._commits.wait()
        except (pymysql.MySQLError, OSError, FuturesTimeout) as err:
            if code(err) in CONFLICT and self._conn is not None:
                quietly_rollback(self._conn)
                raise WriteConflict(reason(err)) from None
            self._lost()
            raise StoreUnavailable(f"the last commit failed: {reason(err)}") from None

    def _guard(self, background: bool = False, fence: Optional[Fence] = None) -> "_Transaction":
        self._ready()
        return _Transaction(self, background, fence)

    def _ready(self) -> None:
        """The write before settled, no stream open, a connection there: the next may go."""
        self._unremembered_ahead = None
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
        self.background = background     # commit on the commit thread (commit_thread.py)
        self.fence = fence               # a write's: checked last, before the commit

    def __enter__(self) -> pymysql.cursors.Cursor:
        assert self.store._conn is not None
        self.cursor = self.store._conn.cursor()
        return self.cursor

    def __exit__(self, kind, err, tb) -> bool:
        conn = self.store._conn
        if err is None and self.fence is not None:
            try:
                leases.check_fence(self.cursor, self.store._db.name, self.store._instance, self.fence)
            except (LeaseLost, pymysql.MySQLError, OSError) as fence_err:
                err = fence_err
        if err is None:
            if self.background:
                self.store._commits.start(conn.commit)
                return False
            try:
                conn.commit()
                return False
            except (pymysql.MySQLError, OSError) as commit_err:
                err = commit_err
        if data_error(err):
            try:
                conn.rollback()
            except (pymysql.MySQLError, OSError):
                self.store._lost()
            raise RowsRejected(reason(err)) from None
        if isinstance(err, LeaseLost) or (isinstance(err, pymysql.MySQLError) and code(err) in CONFLICT):
            try:
                conn.rollback()
            except (pymysql.MySQLError, OSError):
                self.store._lost()
                raise StoreUnavailable(reason(err)) from None
            if isinstance(err, LeaseLost):
                raise err
            raise WriteConflict(reason(err)) from None
        if isinstance(err, StoreUnavailable):
            self.store._lost()
            return False
        if isinstance(err, (pymysql.MySQLError, OSError)):
            self.store._lost()
            raise StoreUnavailable(reason(err)) from None
        try:  # a stream left half read, or a bug: end the transaction, keep the connection
            conn.rollback()
        except (pymysql.MySQLError, OSError):
            self.store._lost()
        return False
