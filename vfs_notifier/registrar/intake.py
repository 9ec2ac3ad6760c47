"""What the gate tells the registrar (a finished file, a rename, a file or directory that
left, a reconcile's start and end) and what it asks of it (is this version registered? may
walks go on feeding rows?): the registrar's side facing the gate, over the state the
Registrar keeps (its memory, what waits, the leases)."""

from __future__ import annotations

import os
from typing import Optional

from ..memory import Entry, is_version
from ..rows import Row
from ..settings import Root
from ..store import Version
from .disk import version_of
from .queue import Move, Offer

BATCH = 2000               # rows a write takes from the queue at most (a turn writes one)
QUEUE_CAP = 5000           # rows queued at most; past it a reconcile is due instead (memory stays bounded)
OFFLINE_QUEUE_CAP = 2000   # the same while the store is away: memory stays flat through an outage


class Intake:
    """A part of Registrar (its base): the methods the gate and the loop call."""

    # --- what the gate tells the registrar ----------------------------------------

    @property
    def queue(self) -> dict[str, Offer]:
        """Rows waiting to be written, by path."""
        return self.waiting.offers

    def lookup(self, path: str) -> Optional[Entry]:
        """The remembered version of a path, seeing renames not yet written as done."""
        if self.memory is None:
            return None
        return self.memory.get(self.waiting.origin(path))

    def has_row(self, path: str) -> bool:
        """A row is written for this path or its insert is under way (renames seen as done)."""
        origin = self.waiting.origin(path)
        return (self.memory is not None and self.memory.get(origin) is not None) or self.rows.under_way(origin)

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
        return is_version(self.lookup(path), version)

    def unchanged(self, path: str, st: os.stat_result, reconciling: Optional[Root] = None) -> bool:
        """A walk's question for each file it meets: is this very version registered, or
        queued (`st`: its lstat)? During a whole-root walk (`reconciling`), a remembered file
        counts as met. The common case, nothing queued or renamed, costs one memory lookup:
        a warm restart asks it of every file."""
        waiting, memory = self.waiting, self.memory
        if memory is not None and not (self.resync or waiting.moves or path in waiting.offers):
            if not memory.holds(path, st):
                return False
            if reconciling is not None:
                self.withdrawals.found_registered(reconciling.path)
            return True
        version = version_of(st)
        if not self.is_current(path, version):
            return False
        if reconciling is not None and self.remembered_as(path, version):
            self.found_registered(reconciling)
        return True

    def offer(self, row: Row, version: Version, announce: bool = True) -> bool:
        """A finished file. True if it was queued (new, or a new version of a registered one)."""
        self.waiting.withdrawals.pop(row.path, None)
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
        self.waiting.drop(old.path, is_dir)
        self.waiting.withdrawals.pop(old.path, None)
        if not (self.may_write(self._root_of(old.path)) and self.may_write(new.main_dir)):
            return      # the holder of the other root moves its rows
        if not is_dir and not self.has_row(old.path):
            return
        self.waiting.moves.append(Move(old.path, new.path, new.main_dir, old.url, new.url, is_dir))

    def withdraw(self, path: str, is_dir: bool) -> None:
        """A file or directory left: its rows go if, when they are deleted, it is still gone."""
        self.waiting.drop(path, is_dir)
        if self.forget_removed and self.may_write(self._root_of(path)):
            self.waiting.withdrawals[path] = is_dir

    def begin_reconcile(self, root: Root) -> None:
        self.withdrawals.begin_reconcile(root.path, self.count_below(root.path))

    def found_registered(self, root: Root) -> None:
        self.withdrawals.found_registered(root.path)

    def end_reconcile(self, root: Root, complete: bool) -> None:
        """A walk of the whole root ended: rows whose files it did not meet are checked."""
        if (self.withdrawals.end_reconcile(root.path, complete, self.count_below(root.path))
                and self.forget_removed):
            self.waiting.withdrawals[root.path] = True

    def count_below(self, root: str) -> int:
        return self.memory.count_below(root) if self.memory is not None else 0

    @property
    def store_away(self) -> bool:
        """The store is unavailable (and this is no dry run): nothing offered could be written
        until the reconcile that follows reconnecting, which finds it again anyway."""
        return not self.connected and not self.dry_run

    @property
    def stalled(self) -> bool:
        """An insert has been under way for long (writes.STALL_SECONDS): rows will not be
        written soon."""
        return self.rows.stalled

    @property
    def committing(self) -> bool:
        """A write's commit is under way: the loop comes back shortly to learn how it ended."""
        return self.connected and self.store.busy

    @property
    def pending(self) -> int:
        return len(self.waiting) + len(self.withdrawals)
