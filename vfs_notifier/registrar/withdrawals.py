"""The one way a row goes: a file or directory that left is withdrawn only if, when its
rows are deleted, its file is still gone (checked on disk, an lstat a row). Directories are
read page by page (sweeps), so that `rm -rf` of a large tree is many bounded turns; and
a reconcile that did not meet every registered file of its root sweeps the root."""

from __future__ import annotations

import logging
import os
from collections import deque
from typing import Callable, Container, Iterable

from ..memory import VersionMemory
from ..rows import printable
from ..store import Fence, Remembered, Store, StoreUnavailable
from .disk import NO_VERSION, is_regular_file

log = logging.getLogger("vfs_notifier")

CHECKS_PER_FLUSH = 100     # withdrawal candidates checked on disk per flush (an lstat each), and deleted in one statement
LOG_EACH_WITHDRAWAL = 10   # more rows withdrawn in one flush are logged as one line
DIRECTORIES_PER_QUERY = 16 # more directories withdrawn at once are read in one query of their parent


class _Reconcile:
    __slots__ = ("hits", "before")

    def __init__(self, before: int) -> None:
        self.hits = 0          # remembered files the walk met, as the very version remembered
        self.before = before   # files remembered below the root when the walk began


class Withdrawals:
    def __init__(self, prefixes: tuple[str, ...]) -> None:
        self.prefixes = prefixes                       # where this instance's rows are
        self.checks: deque[Remembered] = deque()       # withdrawal candidates to check on disk
        self.sweeps: deque[tuple[str, int]] = deque()  # directories whose rows are read page by page
        self.reconciles: dict[str, _Reconcile] = {}    # root path -> the reconcile under way
        self.withdrawn = 0

    def __len__(self) -> int:
        return len(self.checks) + len(self.sweeps)

    # --- reconciles -------------------------------------------------------------------

    def begin_reconcile(self, root: str, remembered: int) -> None:
        self.reconciles[root] = _Reconcile(remembered)

    def found_registered(self, root: str) -> None:
        reconcile = self.reconciles.get(root)
        if reconcile is not None:
            reconcile.hits += 1

    def end_reconcile(self, root: str, complete: bool, remembered: int) -> bool:
        """A walk of the whole root ended. True when rows whose files it did not meet must be
        checked: a sweep of the root, which keeps what is still there."""
        reconcile = self.reconciles.pop(root, None)
        if reconcile is None or not complete:
            return False
        if not reconcile.before:
            # Nothing was remembered when the walk began (a first start): every row below
            # the root was written for a file this walk or an event found, and a file that
            # left since was reported by its own event. A sweep would lstat them all again.
            return False
        # Some registered file was not met again (files registered while the walk went on
        # count on both sides, unless the walk had passed their place already).
        return reconcile.hits != remembered

    def drop_roots(self, roots: Iterable[str], root_of: Callable[[str], str]) -> None:
        dropped = set(roots)
        self.checks = deque(c for c in self.checks if root_of(c.path) not in dropped)
        self.sweeps = deque(s for s in self.sweeps if root_of(s[0]) not in dropped)
        for root in dropped:
            self.reconciles.pop(root, None)

    # --- writing ----------------------------------------------------------------------

    def write(self, store: Store, memory: VersionMemory, requested: dict[str, bool], queued: Container[str],
              fence_of: Callable[[Iterable[str]], Fence]) -> None:
        """Take the requested withdrawals (stored path -> is a directory), then check one
        page of candidates on disk and delete the rows of the files still gone. `queued`:
        paths with a row waiting to be written (a file back already keeps its row)."""
        for path, is_dir in _coalesced(requested, self.prefixes):
            if is_dir:
                # A sweep queued and not begun yet reads this directory's rows anyway (one
                # under way may have passed them while the files were still there).
                if not any(after == 0 and (path == queued_dir or path.startswith(queued_dir + "/"))
                           for queued_dir, after in self.sweeps):
                    self.sweeps.append((path, 0))
            else:
                entry = memory.get(path)
                if entry is not None:
                    self.checks.append(Remembered(entry.video_id, path, NO_VERSION))
        requested.clear()
        if self.sweeps and len(self.checks) < CHECKS_PER_FLUSH:
            # One page of a directory's rows a flush: a sweep of 100,000 rows is fifty
            # bounded turns, not one long one.
            directory, after = self.sweeps.popleft()
            page = list(store.remembered_below(directory, after, CHECKS_PER_FLUSH))
            if len(page) == CHECKS_PER_FLUSH:
                self.sweeps.appendleft((directory, page[-1].video_id))
            prefixes = self.prefixes   # only this instance's rows, whatever the query returns
            self.checks.extend(e for e in page if e.path.startswith(prefixes))
        gone: list[Remembered] = []
        for _ in range(min(CHECKS_PER_FLUSH, len(self.checks))):
            candidate = self.checks.popleft()
            if not is_regular_file(candidate.path) and candidate.path not in queued:
                gone.append(candidate)
        if not gone:
            return
        try:
            store.withdraw([c.video_id for c in gone], fence_of(c.path for c in gone))
        except StoreUnavailable:
            self.checks.extendleft(reversed(gone))   # checked again after reconnecting
            raise
        # Each row by name when a few files went; a tree removed at once (rm -rf of 30,000
        # directories) is said in one line a page, each path at DEBUG: a line per row costs
        # as much as the row's own withdrawal.
        one_by_one = len(gone) <= LOG_EACH_WITHDRAWAL
        level = logging.INFO if one_by_one else logging.DEBUG
        for candidate in gone:
            memory.remove(candidate.path)
            if log.isEnabledFor(level):
                log.log(level, "withdrew the row of %s: the file is gone", printable(candidate.path),
                        extra={"VIDEO_PATH": candidate.path})
        if not one_by_one:
            log.info("withdrew %d rows: their files are gone (%s, ...)", len(gone), printable(gone[0].path))
        self.withdrawn += len(gone)


def _coalesced(requested: dict[str, bool], prefixes: tuple[str, ...]) -> list[tuple[str, bool]]:
    """The directories to read rows below, fewest queries first.

    `rm -rf` of a tree of 30,000 directories reports each one: a query per directory
    would hold the loop for minutes. A directory below another being withdrawn is read
    with it; many directories are read as one query of their common parent (each row
    is checked on disk anyway, so reading more than needed withdraws nothing more).
    """
    directories = sorted(p for p, is_dir in requested.items() if is_dir)
    outer: list[str] = []
    for directory in directories:
        if not outer or not directory.startswith(outer[-1] + "/"):
            outer.append(directory)
    if len(outer) > DIRECTORIES_PER_QUERY:
        parent = os.path.commonpath(outer)
        if (parent + "/").startswith(prefixes) or parent + "/" in prefixes:
            outer = [parent]     # never above a root: other instances' rows live there
    files = [(p, False) for p, is_dir in requested.items()
             if not is_dir and not any(p.startswith(d + "/") for d in outer)]
    return [(d, True) for d in outer] + files
