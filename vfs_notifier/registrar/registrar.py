"""The registrar: the only part of the service that talks to the store.

Everything that changes rows comes here as a value from the gate: a finished file
(`offer`), a rename (`move`), a file or directory that left (`withdraw`), the start and
end of a reconcile. The registrar writes them in batches, one transaction and one round
trip each; keeps the memory of registered versions that says which files are registered,
as which version, under which row; holds the leases of the roots it may write (lease.py:
the one answer to "may this instance write this root", asked at every offer and carried by
every write as its fence); and turns every store failure into its reconnect path (backoff,
then a reconcile), so that no store error can reach the loop.

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
import os
import stat
import time
from collections import deque
from itertools import islice
from typing import Callable, NamedTuple, Optional, Sequence

from ..memory import Entry, VersionMemory, content_of, identity_of
from ..rows import Row, printable, quote_segment
from ..settings import Root
from ..store import (Fence, LeaseLost, NewVideo, Remembered, RowsRejected, Store, StoreUnavailable, Version,
                     WriteConflict)
from .lease import Leases

log = logging.getLogger("vfs_notifier")

BATCH = 2000               # rows a write takes from the queue at most (a turn writes one)
CHECKS_PER_FLUSH = 100     # withdrawal candidates checked on disk per flush (an lstat each), and deleted in one statement
LOG_EACH_WITHDRAWAL = 10   # more rows withdrawn in one flush are logged as one line
LOG_EACH_REGISTRATION = 10 # more files registered by one write are logged as one line
# A page of withdrawals (a query, an lstat a row, a DELETE) takes 10-25 ms: a turn with less
# left leaves it to the next, though never more than WITHDRAWALS_MAY_WAIT turns running.
WITHDRAWAL_PAGE_SECONDS = 0.025
WITHDRAWALS_MAY_WAIT = 3
STALL_SECONDS = 1.0        # an insert under way this long: the store is stalled (see `stalled`)
QUEUE_CAP = 5000           # rows queued at most; past it a reconcile is due instead (memory stays bounded)
OFFLINE_QUEUE_CAP = 2000   # the same while the store is away: memory stays flat through an outage
DIRECTORIES_PER_QUERY = 16 # more directories withdrawn at once are read in one query of their parent
BACKOFF_FIRST, BACKOFF_MAX = 0.5, 10.0
NO_VERSION = Version(0, 0, 0, 0)


class Offer(NamedTuple):
    row: Row
    version: Version
    announce: bool


class Move(NamedTuple):
    old: str
    new: str
    main_dir: str
    old_url: str
    new_url: str
    is_dir: bool


class _Writing(NamedTuple):
    """New rows whose insert is under way (MySQL: on the store's thread). Until it is applied
    (_settle) they stay queued, so is_current() still sees them."""
    offers: list[Offer]
    paths: frozenset[str]
    ids: Callable[[], list[int]]
    since: float                # when it began, on the registrar's clock


class _Reconcile:
    __slots__ = ("hits", "before")

    def __init__(self, before: int) -> None:
        self.hits = 0          # remembered files the walk met, as the very version remembered
        self.before = before   # files remembered below the root when the walk began


class Registrar:
    def __init__(self, store: Store, roots: Sequence[Root], forget_removed: bool,
                 clock: Callable[[], float] = time.monotonic, queue_cap: int = QUEUE_CAP,
                 copy_to: str = "", lease_seconds: float = 15.0) -> None:
        self.store = store
        self.roots = tuple(roots)
        self.copy_to = copy_to
        self.leases = Leases([root.path for root in roots], lease_seconds)
        # The paths this instance's rows name: below its roots, or in copy mode below copy_to.
        self.prefixes = tuple(root.path + "/" for root in roots) + ((copy_to + "/",) if copy_to else ())
        self.forget_removed = forget_removed
        self.clock = clock
        self.queue_cap = queue_cap
        self.memory: Optional[VersionMemory] = None    # None: not read from the store yet
        self.queue: dict[str, Offer] = {}
        self.moves: list[Move] = []
        self.withdrawals: dict[str, bool] = {}         # stored path -> is a directory
        self.checks: deque[Remembered] = deque()       # withdrawal candidates to check on disk
        self.sweeps: deque[tuple[str, int]] = deque()  # directories whose rows are read page by page
        self.reconciles: dict[str, _Reconcile] = {}    # root path -> the reconcile under way
        self.connected = False
        self.problem = ""
        self.retry_at = 0.0
        self.reconcile_needed = False                  # work was refused (queue full, store away)
        self._uncertain = False                        # a write failed midway: re-read the memory
        self._writing: Optional[_Writing] = None       # the insert under way
        # `vfs-notifier resync`: the operator's explicit way back to the mirror. Remembered
        # versions are checked against the table, and a file whose row is gone gets one again.
        self.resync = False
        # `vfs-notifier pending`: judge everything, write nothing, claim nothing.
        self.dry_run = False
        self._backoff = BACKOFF_FIRST
        self._said = ""
        self._withdrawals_waited = 0    # turns in a row too short for a page of withdrawals
        self._conflict_said = ""
        self.registered = self.signalled = self.moved = self.withdrawn = self.rejected = 0

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

    def _fence(self, paths) -> Fence:
        """The fence of a write of rows at these paths."""
        return self.leases.fence({self._root_of(path) for path in paths} - {""})

    # --- what the gate tells the registrar ----------------------------------------

    def lookup(self, path: str) -> Optional[Entry]:
        """The remembered version of a path, seeing renames not yet written as done."""
        if self.memory is None:
            return None
        return self.memory.get(self._origin(path))

    def has_row(self, path: str) -> bool:
        """A row is written for this path or its insert is under way (renames seen as done)."""
        origin = self._origin(path)
        return ((self.memory is not None and self.memory.get(origin) is not None)
                or (self._writing is not None and origin in self._writing.paths))

    def _origin(self, path: str) -> str:
        """Where the path's row is in the store now: before the renames not yet written."""
        if not self.moves:
            return path
        for move in reversed(self.moves):
            if path == move.new or (move.is_dir and path.startswith(move.new + "/")):
                path = move.old + path[len(move.new):]
        return path

    def is_current(self, path: str, version: Version) -> bool:
        """True when this very version of the path is registered (or its row was deleted)."""
        queued = self.queue.get(path)
        if queued is not None:
            return queued.version == version
        return self.remembered_as(path, version)

    def remembered_as(self, path: str, version: Version) -> bool:
        """True when the memory holds this very version (a queued row does not count)."""
        if self.resync:
            return False
        entry = self.lookup(path)
        return (entry is not None and entry.content == content_of(version)
                and entry.identity == identity_of(version))

    def offer(self, row: Row, version: Version, announce: bool = True) -> bool:
        """A finished file. True if it was queued (new, or a new version of a registered one)."""
        self.withdrawals.pop(row.path, None)
        if not self.may_write(row.main_dir) or self.is_current(row.path, version):
            return False
        cap = self.queue_cap if self.connected else min(self.queue_cap, OFFLINE_QUEUE_CAP)
        if row.path not in self.queue and len(self.queue) >= cap:
            self.reconcile_needed = True    # the reconcile after the outage finds it again
            return False
        self.queue[row.path] = Offer(row, version, announce)
        return True

    @property
    def accepting(self) -> bool:
        """Whether walks may go on feeding rows (false while the store is away, and while a
        write's worth of rows waits: a longer queue only held more rows in memory, and cost a
        cold start 14 % more CPU in an A/B run)."""
        return self.dry_run or (self.connected and len(self.queue) < BATCH)

    def move(self, old: Row, new: Row, is_dir: bool) -> None:
        """A file or directory renamed within the watched trees: its rows follow it. A file
        only queued has no row to move: it is dropped, and the gate judges its new name."""
        self._drop_queued(old.path, is_dir)
        self.withdrawals.pop(old.path, None)
        if not (self.may_write(self._root_of(old.path)) and self.may_write(new.main_dir)):
            return      # the holder of the other root moves its rows
        if not is_dir and not self.has_row(old.path):
            return
        self.moves.append(Move(old.path, new.path, new.main_dir, old.url, new.url, is_dir))

    def withdraw(self, path: str, is_dir: bool) -> None:
        """A file or directory left: its rows go if, when they are deleted, it is still gone."""
        self._drop_queued(path, is_dir)
        if self.forget_removed and self.may_write(self._root_of(path)):
            self.withdrawals[path] = is_dir

    def _drop_queued(self, path: str, is_dir: bool) -> None:
        self.queue.pop(path, None)
        if is_dir:
            prefix = path + "/"
            for queued in [p for p in self.queue if p.startswith(prefix)]:
                del self.queue[queued]

    def begin_reconcile(self, root: Root) -> None:
        self.reconciles[root.path] = _Reconcile(self.count_below(root.path))

    def found_registered(self, root: Root) -> None:
        reconcile = self.reconciles.get(root.path)
        if reconcile is not None:
            reconcile.hits += 1

    def end_reconcile(self, root: Root, complete: bool) -> None:
        """A walk of the whole root ended: rows whose files it did not meet are checked."""
        reconcile = self.reconciles.pop(root.path, None)
        if reconcile is None or not complete or not self.forget_removed:
            return
        if not reconcile.before:
            # Nothing was remembered when the walk began (a first start): every row below
            # the root was written for a file this walk or an event found, and a file that
            # left since was reported by its own event. A sweep would lstat them all again.
            return
        if reconcile.hits != self.count_below(root.path):
            # Some registered file was not met again (files registered while the walk went on
            # count on both sides, unless the walk had passed their place already): check each
            # row below the root on disk (a sweep is a withdrawal of the root that keeps what
            # is still there).
            self.withdrawals[root.path] = True

    def count_below(self, root: str) -> int:
        return self.memory.count_below(root) if self.memory is not None else 0

    @property
    def store_away(self) -> bool:
        """The store is unavailable (and this is no dry run): nothing offered could be written
        until the reconcile that follows reconnecting, which finds it again anyway."""
        return not self.connected and not self.dry_run

    @property
    def stalled(self) -> bool:
        """An insert has been under way for over STALL_SECONDS (a server that stopped
        answering, or is far behind): rows will not be written soon."""
        writing = self._writing
        return writing is not None and self.clock() - writing.since > STALL_SECONDS

    @property
    def committing(self) -> bool:
        """A write's commit is under way: the loop comes back shortly to learn how it ended."""
        return self.connected and self.store.busy

    @property
    def pending(self) -> int:
        return len(self.queue) + len(self.moves) + len(self.withdrawals) + len(self.checks) + len(self.sweeps)

    # --- talking to the store -------------------------------------------------------

    def connect(self) -> bool:
        """(Re)connect, take or renew the leases, read the memory if needed. True when newly
        connected."""
        if self.connected or self.clock() < self.retry_at:
            return False
        try:
            self.store.open()
            gained: list[str] = []
            if not self.dry_run:
                gained, lost = self.leases.renew(self.store)
                self._drop_work_of(lost)
            if self.memory is None or self._uncertain or gained:
                self._read_memory()    # after the leases: a takeover reads the last holder's rows
            self.connected, self.problem = True, ""
        except (StoreUnavailable, LeaseLost, WriteConflict) as err:
            self._failed(str(err))
            return False
        log.info("database %s: connected, %d files registered below the watched roots",
                 self.store.description, len(self.memory or ()))
        return True

    def _read_memory(self) -> None:
        memory = VersionMemory(root.path for root in self.roots)
        prefixes = self.prefixes
        for entry in self.store.remembered():
            if entry.path.startswith(prefixes):
                memory.put(entry.path, entry.version, entry.video_id)
        # Rows an earlier version of the service wrote have no memory entry: adopt each
        # with the version on disk now, so that an upgrade neither doubles nor re-signals.
        # Only below the roots this instance holds: the others' holder adopts theirs.
        adopted = []
        for video_id, path in self.store.unremembered():
            if (path.startswith(prefixes) and memory.get(path) is None
                    and not self.dry_run and self.may_write(self._root_of(path))):
                version = _version_on_disk(path) or NO_VERSION
                adopted.append(Remembered(video_id, path, version))
                memory.put(path, version, video_id)
        if adopted:
            self.store.remember(adopted, self._fence(a.path for a in adopted))
            log.info("adopted %d rows written before this version kept its memory", len(adopted))
        memory.merge()
        self.memory = memory
        self._uncertain = False
        for path, offer in list(self.queue.items()):
            entry = memory.get(path)   # a batch that did land before the connection broke
            if (entry is not None and entry.content == content_of(offer.version)
                    and entry.identity == identity_of(offer.version)):
                del self.queue[path]

    def renew_leases(self) -> tuple[list[str], list[str]]:
        """Take or renew every root's lease (every poll). Returns (roots gained, roots lost)
        since the last call; a store that fails meanwhile takes the reconnect path, like any
        other store call (never a silent standby)."""
        if not self.connected or self.dry_run:
            return [], []
        try:
            gained, lost = self.leases.renew(self.store)
            self._drop_work_of(lost)
            if gained:
                self._read_memory()    # the last holder's rows
        except (StoreUnavailable, LeaseLost, WriteConflict) as err:
            self._failed(str(err))
            return [], []
        return gained, lost

    def _drop_work_of(self, roots: Sequence[str]) -> None:
        """Roots this instance no longer holds: nothing queued for them is written (their
        holder finds it all by its own events and walks)."""
        if not roots:
            return
        dropped = set(roots)
        mine = self._root_of
        for path in [p for p in self.queue if mine(p) in dropped]:
            del self.queue[path]
        self.moves = [m for m in self.moves if mine(m.old) not in dropped and mine(m.new) not in dropped]
        for path in [p for p in self.withdrawals if mine(p) in dropped]:
            del self.withdrawals[path]
        self.checks = deque(c for c in self.checks if mine(c.path) not in dropped)
        self.sweeps = deque(s for s in self.sweeps if mine(s[0]) not in dropped)
        for root in dropped:
            self.reconciles.pop(root, None)

    def flush(self, limit: int = BATCH, time_left: float = math.inf, wait: bool = False) -> int:
        """Write renames, then either up to `limit` queued rows or a page of withdrawals. Rows
        written. One such write a call: its commit goes on while the loop does (the store's
        `busy`), and a call while it does returns at once unless told to `wait` for it.
        `time_left`: seconds left in the loop's turn, which a page of withdrawals may wait for."""
        if self.dry_run:
            self.queue.clear()
            self.moves.clear()
            self.withdrawals.clear()
            return 0
        if not self.connected or (self.store.busy and not wait):
            return 0
        written = 0
        try:
            self._settle()    # the last write: a failure is met here, not later
            if self.moves:
                self._write_moves()
            withdrawing = bool(self.withdrawals or self.checks or self.sweeps)
            overdue = self._withdrawals_waited >= WITHDRAWALS_MAY_WAIT
            if self.queue and not (withdrawing and overdue):
                self._withdrawals_waited += withdrawing
                written = self._write_batch(list(islice(self.queue.values(), limit)))
            elif withdrawing and (overdue or time_left >= WITHDRAWAL_PAGE_SECONDS):
                self._withdrawals_waited = 0
                self._write_withdrawals()
            elif withdrawing:
                self._withdrawals_waited += 1
            if wait:
                self._settle()
        except StoreUnavailable as err:
            self._failed(str(err))
            return 0
        except LeaseLost as err:
            self._lease_lost(err.roots)
            return 0
        except WriteConflict as err:
            self._conflict(str(err))
            return 0
        self._worked()
        return written

    def _lease_lost(self, roots: Sequence[str]) -> None:
        """A write's fence failed: it committed nothing. Its roots are another's now (or this
        instance's lease lapsed: taken again at the next poll if nobody else took it)."""
        self._writing = None
        self.leases.lost(roots)
        self._drop_work_of(roots)
        self._refresh_memory()

    def _conflict(self, reason: str) -> None:
        """The cluster refused a write for another transaction's sake (Galera certification,
        deadlock, lock wait). It may have been a takeover: the leases are asked before any
        write again, never a blind retry; the rows stay queued for a root still held."""
        self._writing = None
        if reason != self._conflict_said:
            self._conflict_said = reason
            log.warning("database %s refused a write (%s): nothing of it was committed; asking the "
                        "leases again before writing again", self.store.description, reason)
        try:
            _, lost = self.leases.renew(self.store)
            self._drop_work_of(lost)
        except (StoreUnavailable, LeaseLost, WriteConflict) as err:
            self._failed(str(err))
            return
        self._refresh_memory()

    def _refresh_memory(self) -> None:
        """A write was rolled back after the memory may have counted it done: read it again."""
        try:
            self._read_memory()
        except (StoreUnavailable, LeaseLost, WriteConflict) as err:
            self._failed(str(err))

    def _write_moves(self) -> None:
        assert self.memory is not None
        while self.moves:
            move = self.moves[0]
            replaced = None if move.is_dir else self.memory.get(move.new)
            fence = self._fence((move.old, move.new))
            if replaced is not None and self.forget_removed:
                # Renamed over a registered file: that file is gone, and its row with it.
                self.store.withdraw([replaced.video_id], fence)
                self.memory.remove(move.new)
                self.withdrawn += 1
            moved = self.store.move(move.old, move.new, move.main_dir, move.old_url, move.new_url, fence)
            if move.is_dir:
                below = list(self.store.remembered_below(move.new))
                for entry in below:
                    self._rekey(move.old + entry.path[len(move.new):], entry.path)
                moved -= self._undo_stale_moves(move, below, fence)
            else:
                self._rekey(move.old, move.new)
            self.moves.pop(0)
            if moved:
                self.moved += moved
                log.info("moved %d rows from %s to %s", moved, printable(move.old), printable(move.new),
                         extra={"VIDEO_PATH": move.new})

    def _undo_stale_moves(self, move: Move, below: list[Remembered], fence: Fence) -> int:
        """Rows the rename's event is older than: a walk registered what is at the old path now.

        Events describe the past and walks the present: when a directory is renamed and a new
        one made at its old path before the rename's events are read, rows of the new
        directory's files are under the old path already, and the bulk move carried them
        along. Each moved row's file is checked (an lstat) against the identity remembered
        for it; one that is not at its new path but is at its old one goes back. One that is at
        neither (the new directory went too) is withdrawn, checked on disk as every withdrawal:
        no event will name the path the move carried it to, where its file never was.
        """
        back = 0
        for entry in below:
            if _same_file(entry.path, entry.version):
                continue
            suffix = entry.path[len(move.new):]
            old_path = move.old + suffix
            if not _same_file(old_path, entry.version):
                if self.forget_removed:
                    self.withdrawals[entry.path] = False
                continue
            url_suffix = "/".join(quote_segment(part) for part in suffix.split("/"))
            main_dir = next((r.path for r in self.roots if old_path.startswith(r.path + "/")), move.main_dir)
            back += self.store.move(entry.path, old_path, main_dir, move.new_url + url_suffix,
                                    move.old_url + url_suffix, fence)
            self._rekey(entry.path, old_path)
        return back

    def _rekey(self, old: str, new: str) -> None:
        assert self.memory is not None
        entry = self.memory.get(old)
        if entry is not None:
            self.memory.remove(old)
            self.memory.put_entry(new, entry)

    def _write_withdrawals(self) -> None:
        assert self.memory is not None
        for path, is_dir in self._coalesced_withdrawals():
            if is_dir:
                # A sweep queued and not begun yet reads this directory's rows anyway (one
                # under way may have passed them while the files were still there).
                if not any(after == 0 and (path == queued or path.startswith(queued + "/"))
                           for queued, after in self.sweeps):
                    self.sweeps.append((path, 0))
            else:
                entry = self.memory.get(path)
                if entry is not None:
                    self.checks.append(Remembered(entry.video_id, path, NO_VERSION))
        self.withdrawals.clear()
        if self.sweeps and len(self.checks) < CHECKS_PER_FLUSH:
            # One page of a directory's rows a flush: a sweep of 100,000 rows is fifty
            # bounded turns, not one long one.
            directory, after = self.sweeps.popleft()
            page = list(self.store.remembered_below(directory, after, CHECKS_PER_FLUSH))
            if len(page) == CHECKS_PER_FLUSH:
                self.sweeps.appendleft((directory, page[-1].video_id))
            prefixes = self.prefixes   # only this instance's rows, whatever the query returns
            self.checks.extend(e for e in page if e.path.startswith(prefixes))
        gone: list[Remembered] = []
        for _ in range(min(CHECKS_PER_FLUSH, len(self.checks))):
            candidate = self.checks.popleft()
            if not _is_regular_file(candidate.path) and candidate.path not in self.queue:
                gone.append(candidate)
        if not gone:
            return
        try:
            self.store.withdraw([c.video_id for c in gone], self._fence(c.path for c in gone))
        except StoreUnavailable:
            self.checks.extendleft(reversed(gone))   # checked again after reconnecting
            raise
        # Each row by name when a few files went; a tree removed at once (rm -rf of 30,000
        # directories) is said in one line a page, each path at DEBUG: a line per row costs
        # as much as the row's own withdrawal.
        one_by_one = len(gone) <= LOG_EACH_WITHDRAWAL
        level = logging.INFO if one_by_one else logging.DEBUG
        for candidate in gone:
            self.memory.remove(candidate.path)
            if log.isEnabledFor(level):
                log.log(level, "withdrew the row of %s: the file is gone", printable(candidate.path),
                        extra={"VIDEO_PATH": candidate.path})
        if not one_by_one:
            log.info("withdrew %d rows: their files are gone (%s, ...)", len(gone),
                     printable(gone[0].path))
        self.withdrawn += len(gone)

    def _coalesced_withdrawals(self) -> list[tuple[str, bool]]:
        """The directories to read rows below, fewest queries first.

        `rm -rf` of a tree of 30,000 directories reports each one: a query per directory
        would hold the loop for minutes. A directory below another being withdrawn is read
        with it; many directories are read as one query of their common parent (each row
        is checked on disk anyway, so reading more than needed withdraws nothing more).
        """
        directories = sorted(p for p, is_dir in self.withdrawals.items() if is_dir)
        outer: list[str] = []
        for directory in directories:
            if not outer or not directory.startswith(outer[-1] + "/"):
                outer.append(directory)
        if len(outer) > DIRECTORIES_PER_QUERY:
            parent = os.path.commonpath(outer)
            if (parent + "/").startswith(self.prefixes) or parent + "/" in self.prefixes:
                outer = [parent]     # never above a root: other instances' rows live there
        files = [(p, False) for p, is_dir in self.withdrawals.items()
                 if not is_dir and not any(p.startswith(d + "/") for d in outer)]
        return [(d, True) for d in outer] + files

    def _write_batch(self, batch: list[Offer]) -> int:
        assert self.memory is not None
        changed = {}
        for offer in batch:
            entry = self.lookup(offer.row.path)
            if entry is not None:
                changed[offer.row.path] = entry
        alive = self.store.existing([e.video_id for e in changed.values()]) if changed else set()
        new, signal, silent = [], [], []
        for offer in batch:
            entry = changed.get(offer.row.path)
            if entry is None or entry.video_id not in alive:
                new.append(offer)       # never registered, or a new video where a row was deleted
            elif entry.content != content_of(offer.version):
                signal.append((offer, entry))
            elif entry.identity != identity_of(offer.version):
                silent.append((offer, entry))   # the same bytes under another inode (a replaced copy)
        self._uncertain = True
        if signal:
            self.store.resignal([Remembered(e.video_id, o.row.path, o.version) for o, e in signal],
                                self._fence(o.row.path for o, _ in signal))
            for offer, entry in signal:
                self.memory.put(offer.row.path, offer.version, entry.video_id)
                log.info("%s changed (re-uploaded): its row %d is signalled again (status 1)",
                         printable(offer.row.path), entry.video_id,
                         extra={"VIDEO_PATH": offer.row.path, "VIDEO_URL": offer.row.url})
            self.signalled += len(signal)
        if silent:
            self.store.remember([Remembered(e.video_id, o.row.path, o.version) for o, e in silent],
                                self._fence(o.row.path for o, _ in silent))
            for offer, entry in silent:
                self.memory.put(offer.row.path, offer.version, entry.video_id)
        writing = set(id(o) for o in new)
        for offer in batch:
            if id(offer) not in writing:
                self._unqueue(offer)
        if new:
            # Only paths remembered before (a row a consumer deleted) have an entry to replace.
            replaces = [o.row.path for o in new if o.row.path in changed]
            try:
                ids = self.store.start_insert([_video(o) for o in new], self._fence(o.row.path for o in new),
                                              replaces)
            except RowsRejected:
                self._registered(new, self._insert_one_by_one(new))
            else:
                # Applied by the next flush (_settle), before any other write; at once if
                # it is done already (SQLite writes in this thread).
                self._writing = _Writing(new, frozenset(o.row.path for o in new), ids, self.clock())
                if not self.store.busy:
                    self._settle()
                return len(batch)
        self._uncertain = False
        return len(batch)

    def _settle(self) -> None:
        """Meet the end of the write under way; rows of an insert are registered now."""
        writing, self._writing = self._writing, None
        if writing is None:
            self.store.sync()
            return
        try:
            self.store.sync()
            ids = writing.ids()
        except RowsRejected:
            ids = self._insert_one_by_one(writing.offers)
        self._registered(writing.offers, ids)
        self._uncertain = False

    def _registered(self, offers: list[Offer], ids: list[Optional[int]]) -> None:
        assert self.memory is not None
        announced, quiet = [], 0
        for offer, video_id in zip(offers, ids):
            self._unqueue(offer)
            if video_id is not None:
                self.memory.put(offer.row.path, offer.version, video_id)
                self.registered += 1
                if offer.announce:
                    announced.append(offer)
                else:
                    quiet += 1
        # Each file by name, with its URL, when a few arrived; a burst (20,000 files copied in
        # at once) is said in one line a write, each file at DEBUG: a line a file cost a sixth
        # of the loop's time in a burst. The same rule as for withdrawals.
        one_by_one = len(announced) <= LOG_EACH_REGISTRATION
        level = logging.INFO if one_by_one else logging.DEBUG
        if announced and log.isEnabledFor(level):
            for offer in announced:
                row = offer.row
                log.log(level, "registered %s as %s", printable(row.path), row.url,
                        extra={"VIDEO_PATH": row.path, "VIDEO_URL": row.url, "MAIN_DIR": row.main_dir})
        if not one_by_one:
            log.info("registered %d new files (%s, ...)", len(announced), printable(announced[0].row.path))
        if quiet:
            log.info("registered %d files found by a directory walk", quiet)

    def _unqueue(self, offer: Offer) -> None:
        """Written: off the queue, unless a newer version of the path was offered meanwhile."""
        if self.queue.get(offer.row.path) is offer:
            del self.queue[offer.row.path]

    def _insert_one_by_one(self, offers: list[Offer]) -> list[Optional[int]]:
        """A batch the database refused: find the rows at fault, skip them, keep the rest."""
        ids: list[Optional[int]] = []
        for offer in offers:
            try:
                ids.extend(self.store.insert([_video(offer)], self._fence((offer.row.path,))))
            except RowsRejected as err:
                ids.append(None)
                self.rejected += 1
                log.warning("skipped %s: the database refused its row (%s)", printable(offer.row.path), err)
        return ids

    def _worked(self) -> None:
        self._backoff, self._said = BACKOFF_FIRST, ""

    def _failed(self, problem: str) -> None:
        if problem != self._said:   # once per problem, until a write works again
            self._said = problem
            log.warning("database %s unavailable: %s; %d changes wait, retrying in %.1f s",
                        self.store.description, problem, self.pending, self._backoff)
        self.store.close()
        # Whatever was written since the last commit known to have landed may not have:
        # the memory is read again from the store on reconnecting.
        self._uncertain = True
        self._writing = None    # its rows stay queued: written again, or found written
        self.connected, self.problem = False, problem
        self.retry_at = self.clock() + self._backoff
        self._backoff = min(self._backoff * 2, BACKOFF_MAX)

    def close(self) -> None:
        """A clean stop: the leases are released, so a standby takes over at its next poll."""
        if self.connected:
            try:
                self._settle()    # the write under way is fenced by the leases: end it first
            except (StoreUnavailable, LeaseLost, WriteConflict, RowsRejected):
                pass              # its rows are found again by the next holder's walk
            self.leases.release(self.store)
        self.store.close()
        self._writing = None
        self.connected = False


def version_of(st: os.stat_result) -> Version:
    return Version(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _version_on_disk(path: str) -> Optional[Version]:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return version_of(st) if stat.S_ISREG(st.st_mode) else None


def _same_file(path: str, version: Version) -> bool:
    on_disk = _version_on_disk(path)
    return on_disk is not None and (on_disk.dev, on_disk.ino) == (version.dev, version.ino)


def _video(offer: Offer) -> NewVideo:
    row = offer.row
    return NewVideo(row.main_dir, row.path, row.url, offer.version)


def _is_regular_file(path: str) -> bool:
    """True for a regular file (not a link to one): a row's path must still be one."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError:
        return True  # cannot tell (a permission problem): keep the row
