"""The registrar: the only part of the service that talks to the store.

Everything that changes rows comes here as a value from the gate: a finished file
(`offer`), a rename (`move`), a file or directory that left (`withdraw`), the start and
end of a reconcile (intake.py: the registrar's side facing the gate). They wait (queue.py)
until flush() writes them, one write a call,
one transaction each: renames (moves.py), then a batch of rows (writes.py) or a page of
withdrawals (withdrawals.py). The registrar keeps the memory of registered versions that
says which files are registered, as which version, under which row; holds the leases of
the roots it may write (lease.py: the one answer to "may this instance write this root",
asked at every offer and carried by every write as its fence); and turns every store
failure into its reconnect path (link.py: backoff, then a reconcile), so that no store
error can reach the loop.

The life of a row (docs/RELIABILITY.md says the same for operators):
- a finished file with no memory entry gets a row;
- a finished file whose version is remembered gets nothing, even if a consumer deleted
  its row: nothing resurrects a row but `vfs-notifier resync`;
- a finished file whose content (size, mtime) changed is signalled on its row (status 1,
  created_date now); if a consumer deleted that row, it is a new video and gets a new one;
- a rename keeps the row (id and status), updating its path and URL in place;
- a file that left loses its row (with `forget_removed`), through `withdraw` only, which
  checks the disk at the moment it deletes.
"""

from __future__ import annotations

import logging
import math
import time
from itertools import islice
from typing import Callable, Iterable, Optional, Sequence

from ..memory import VersionMemory, is_version
from ..settings import Root
from ..store import Fence, LeaseLost, RowsRejected, Store, StoreUnavailable, WriteConflict
from .intake import BATCH, QUEUE_CAP, Intake
from .lease import Leases
from .link import Link
from .memory_read import read_memory
from .moves import MoveWriter
from .queue import Waiting
from .withdrawals import Withdrawals
from .writes import RowWriter

log = logging.getLogger("vfs_notifier")

# A page of withdrawals (a query, an lstat a row, a DELETE) takes 10-25 ms: a turn with less
# left leaves it to the next, though never more than WITHDRAWALS_MAY_WAIT turns running.
WITHDRAWAL_PAGE_SECONDS = 0.025
WITHDRAWALS_MAY_WAIT = 3

_REFUSED = (StoreUnavailable, LeaseLost, WriteConflict)


class Registrar(Intake):
    def __init__(self, store: Store, roots: Sequence[Root], forget_removed: bool,
                 clock: Callable[[], float] = time.monotonic, queue_cap: int = QUEUE_CAP,
                 copy_to: str = "", lease_seconds: float = 15.0) -> None:
        self.store = store
        self.roots = tuple(roots)
        self.copy_to = copy_to
        # The paths this instance's rows name: below its roots, or in copy mode below copy_to.
        self.prefixes = tuple(root.path + "/" for root in roots) + ((copy_to + "/",) if copy_to else ())
        self.forget_removed = forget_removed
        self.clock = clock
        self.queue_cap = queue_cap
        self.memory: Optional[VersionMemory] = None    # None: not read from the store yet
        self.leases = Leases([root.path for root in roots], lease_seconds)
        self.link = Link()
        self.waiting = Waiting()
        self.rows = RowWriter(store, clock)
        self.renames = MoveWriter(store, roots, forget_removed)
        self.withdrawals = Withdrawals(self.prefixes)
        self.reconcile_needed = False                  # work was refused (queue full, store away)
        # `vfs-notifier resync`: the operator's explicit way back to the mirror. Remembered
        # versions are checked against the table, and a file whose row is gone gets one again.
        self.resync = False
        # `vfs-notifier pending`: judge everything, write nothing, take no lease.
        self.dry_run = False
        self._withdrawals_waited = 0    # turns in a row too short for a page of withdrawals
        self._conflict_said = ""

    # --- may this instance write this root ----------------------------------------

    def may_write(self, root: str) -> bool:
        """The one answer: this instance holds `root`'s lease (a dry run writes nothing and
        may judge every root). Every offer, move and withdrawal asks it; every write carries
        the lease's token, which the store checks in the write's own transaction."""
        return self.dry_run or self.leases.holds(root)

    @property
    def standby(self) -> dict[str, str]:
        """Roots another instance holds: root path -> who."""
        return self.leases.standby

    def _root_of(self, path: str) -> str:
        """The watched root a stored path belongs to ("" if none): a copy's is the one root
        copy mode allows."""
        for root in self.roots:
            if path.startswith(root.path + "/") or path == root.path:
                return root.path
        if self.copy_to and (path + "/").startswith(self.copy_to + "/") and self.roots:
            return self.roots[0].path
        return ""

    def _fence(self, paths: Iterable[str]) -> Fence:
        """The fence of a write of rows at these paths (a path of no root: token 0, refused)."""
        return self.leases.fence({self._root_of(path) for path in paths})

    # --- state, for the loop and the status line ----------------------------------

    @property
    def connected(self) -> bool:
        return self.link.connected

    @connected.setter
    def connected(self, connected: bool) -> None:
        self.link.connected = connected

    @property
    def problem(self) -> str:
        return self.link.problem

    @property
    def retry_at(self) -> float:
        return self.link.retry_at

    @retry_at.setter
    def retry_at(self, when: float) -> None:
        self.link.retry_at = when

    @property
    def registered(self) -> int:
        return self.rows.registered

    @property
    def signalled(self) -> int:
        return self.rows.signalled

    @property
    def rejected(self) -> int:
        return self.rows.rejected

    @property
    def moved(self) -> int:
        return self.renames.moved

    @property
    def withdrawn(self) -> int:
        return self.withdrawals.withdrawn + self.renames.withdrawn

    # --- talking to the store -------------------------------------------------------

    def connect(self) -> bool:
        """(Re)connect, take or renew the leases, read the memory if needed. True when newly
        connected."""
        if not self.link.may_try(self.clock()):
            return False
        try:
            self.store.open()
            gained = [] if self.dry_run else self._renew()[0]
            if self.memory is None or self.rows.uncertain or gained:
                self._read_memory()    # after the leases: a takeover reads the last holder's rows
            self.link.up()
        except _REFUSED as err:
            self._failed(str(err))
            return False
        log.info("database %s: connected, %d files registered below the watched roots",
                 self.store.description, len(self.memory or ()))
        return True

    def _read_memory(self) -> None:
        adoptable = (lambda path: False) if self.dry_run else (lambda path: self.may_write(self._root_of(path)))
        self.memory = read_memory(self.store, [root.path for root in self.roots], self.prefixes,
                                  adoptable, self._fence)
        self.rows.uncertain = False
        for path, offer in list(self.queue.items()):
            if is_version(self.memory.get(path), offer.version):   # a batch that landed before the break
                del self.queue[path]

    def renew_leases(self) -> tuple[list[str], list[str]]:
        """Take or renew every root's lease (every poll). Returns (roots gained, roots lost)
        since the last call; a store that fails meanwhile takes the reconnect path, like any
        other store call (never a silent standby)."""
        if not self.connected or self.dry_run:
            return [], []
        try:
            gained, lost = self._renew()
            if gained:
                self._read_memory()    # the last holder's rows
        except _REFUSED as err:
            self._failed(str(err))
            return [], []
        return gained, lost

    def _renew(self) -> tuple[list[str], list[str]]:
        """Take or renew every lease; what waits for a root lost is dropped. (gained, lost)."""
        gained, lost = self.leases.renew(self.store)
        self._drop_work_of(lost)
        return gained, lost

    def _drop_work_of(self, roots: Sequence[str]) -> None:
        """Roots this instance no longer holds: nothing waiting for them is written (their
        holder finds it all by its own events and walks)."""
        if roots:
            self.waiting.drop_roots(roots, self._root_of)
            self.withdrawals.drop_roots(roots, self._root_of)

    def flush(self, limit: int = BATCH, time_left: float = math.inf, wait: bool = False) -> int:
        """Write renames, then either up to `limit` queued rows or a page of withdrawals. Rows
        written. One such write a call: its commit goes on while the loop does (the store's
        `busy`), and a call while it does returns at once unless told to `wait` for it.
        `time_left`: seconds left in the loop's turn, which a page of withdrawals may wait for."""
        waiting = self.waiting
        if self.dry_run:
            waiting.offers.clear()
            waiting.moves.clear()
            waiting.withdrawals.clear()
            return 0
        if not self.connected or (self.store.busy and not wait):
            return 0
        memory = self.memory
        assert memory is not None
        written = 0
        try:
            self.rows.settle(memory, self._fence, waiting)    # the last write: a failure is met here
            if waiting.moves:
                self.renames.write(waiting.moves, memory, self._fence, waiting.withdrawals)
            withdrawing = bool(waiting.withdrawals or self.withdrawals)
            overdue = self._withdrawals_waited >= WITHDRAWALS_MAY_WAIT
            if self.queue and not (withdrawing and overdue):
                self._withdrawals_waited += withdrawing
                written = self.rows.write(list(islice(self.queue.values(), limit)), memory, self.lookup,
                                          self._fence, waiting)
            elif withdrawing and (overdue or time_left >= WITHDRAWAL_PAGE_SECONDS):
                self._withdrawals_waited = 0
                self.withdrawals.write(self.store, memory, waiting.withdrawals, self.queue, self._fence)
            elif withdrawing:
                self._withdrawals_waited += 1
            if wait:
                self.rows.settle(memory, self._fence, waiting)
        except StoreUnavailable as err:
            self._failed(str(err))
            return 0
        except LeaseLost as err:
            self._lease_lost(err.roots)
            return 0
        except WriteConflict as err:
            self._conflict(str(err))
            return 0
        self.link.worked()
        return written

    def _lease_lost(self, roots: Sequence[str]) -> None:
        """A write's fence failed: it committed nothing. Its roots are another's now (or this
        instance's lease lapsed: taken again at the next poll if nobody else took it)."""
        self.rows.abandon()
        self.leases.lost(roots)
        self._drop_work_of(roots)
        self._refresh_memory()

    def _conflict(self, reason: str) -> None:
        """The cluster refused a write for another transaction's sake (Galera certification,
        deadlock, lock wait). It may have been a takeover: the leases are asked before any
        write again, never a blind retry; the rows stay queued for a root still held."""
        self.rows.abandon()
        if reason != self._conflict_said:
            self._conflict_said = reason
            log.warning("database %s refused a write (%s): nothing of it was committed; asking the "
                        "leases again before writing again", self.store.description, reason)
        try:
            self._renew()
        except _REFUSED as err:
            self._failed(str(err))
            return
        self._refresh_memory()

    def _refresh_memory(self) -> None:
        """A write was rolled back after the memory may have counted it done: read it again."""
        try:
            self._read_memory()
        except _REFUSED as err:
            self._failed(str(err))

    def _failed(self, problem: str) -> None:
        backoff = self.link.down(problem, self.clock())
        if backoff is not None:   # once per problem, until a write works again
            log.warning("database %s unavailable: %s; %d changes wait, retrying in %.1f s",
                        self.store.description, problem, self.pending, backoff)
        self.store.close()
        # Whatever was written since the last commit known to have landed may not have:
        # the memory is read again from the store on reconnecting.
        self.rows.abandon()

    def close(self) -> None:
        """A clean stop: the leases are released, so a standby takes over at its next poll."""
        if self.connected:
            try:
                # The write under way is fenced by the leases: end it first.
                self.rows.settle(self.memory, self._fence, self.waiting)
            except (*_REFUSED, RowsRejected):
                pass              # its rows are found again by the next holder's walk
            self.leases.release(self.store)
        self.store.close()
        self.rows.writing = None
        self.link.connected = False
