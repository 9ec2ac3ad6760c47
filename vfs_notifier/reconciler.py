"""Candidates in, rows out: the gate between what was seen on disk and the registrar.

Kernel events and directory walks both end here. For each candidate path the
reconciler finds its root, checks that it is a finished regular video file whose row
the table can hold, and offers the row to the registrar. A reconcile is nothing but a
walk of a root fed through the same gate, followed by forgetting the registered
files the walk no longer found.
"""

from __future__ import annotations

import logging
import os
import stat
import time
from collections import deque
from typing import Callable, Iterator, Optional

from .copy_mode import CopyRegistration
from .registrar import Registrar
from .rows import Row, RowMaker, Unstorable, is_video, printable
from .settings import Root
from .walker import Found, WalkProblem, walk

log = logging.getLogger("vfs_notifier")

# A file a walk finds that changed this recently may still be open for writing: it
# waits until it has been left alone this long (or its close event comes first).
SETTLE_SECONDS = 2.0
WARNED_MAX = 10000


class Counts:
    def __init__(self) -> None:
        self.found = self.new = self.already = self.skipped = 0


class _Job:
    """One walk in progress."""

    __slots__ = ("root", "maker", "full", "files", "problems", "hits", "registered_before")

    def __init__(self, root: Root, maker: RowMaker, full: bool, files: Iterator[Found],
                 problems: list[WalkProblem]) -> None:
        self.root, self.maker, self.files, self.problems = root, maker, files, problems
        self.full = full    # a whole-root reconcile: forget what it did not find
        self.hits = 0       # registered files this walk found again
        # Rows below the root when the walk began: if the walk finds as many of them again,
        # none is stale, and no check of each row's file is needed.
        self.registered_before: Optional[int] = None


class Reconciler:
    def __init__(self, roots: tuple[Root, ...], extensions: tuple[str, ...], registrar: Registrar,
                 watch_directory: Optional[Callable[[str], Optional[str]]] = None,
                 clock: Callable[[], float] = time.time,
                 copying: Optional[CopyRegistration] = None) -> None:
        # Copy mode: rows (and the paths the registrar dedups on) name the copies.
        self.copying = copying
        self.makers = [(root, RowMaker(root, copying.copy_to if copying else "")) for root in roots]
        self.extensions = frozenset(extensions)
        self.registrar = registrar
        self.watch_directory = watch_directory or (lambda directory: None)
        self.clock = clock
        self.jobs: deque[_Job] = deque()
        self.counts = Counts()
        self.settling: dict[str, tuple[float, int, float]] = {}   # path -> (mtime, size, seen at)
        self._warned: set[str] = set()
        self.unreadable: set[str] = set()   # directories a walk could not list

    # --- candidates from events ------------------------------------------------------

    def file_done(self, path: str) -> None:
        """A file was closed after writing or moved in."""
        self.settling.pop(path, None)
        found = self._root_of(path)
        if found is None:
            return
        root, maker = found
        directory, _, name = path.rpartition("/")
        if not is_video(name, self.extensions):
            return
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            log.warning("skipped %s: gone before it could be registered", printable(path))
            return
        except OSError as err:
            log.warning("skipped %s: cannot stat (%s)", printable(path), err.strerror)
            return
        if stat.S_ISREG(st.st_mode):
            self._offer(maker, directory, name, announce=True)
        else:
            # A link (or anything else) renamed over a registered file: the path keeps no row.
            self.file_gone(path)

    def file_linked(self, path: str) -> None:
        """A file appeared: only a hard link (more than one name) is complete already."""
        found = self._root_of(path)
        directory, _, name = path.rpartition("/")
        if found is None or not is_video(name, self.extensions):
            return
        try:
            st = os.lstat(path)
        except OSError:
            return
        if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
            try:
                row = found[1].row(directory, name)
            except Unstorable as err:
                self._skip(path, str(err))
                return
            self._consider(row, path, announce=True)

    def directory_changed(self, path: str) -> None:
        """A directory's mode changed: one a walk could not read is walked again."""
        if path in self.unreadable:
            self.unreadable.discard(path)
            self.directory_arrived(path)

    def file_gone(self, path: str) -> None:
        self.settling.pop(path, None)
        found = self._root_of(path)
        # Copy mode: a copy and its row outlive the file they were made from.
        if found is not None and self.copying is None and is_video(path.rpartition("/")[2], self.extensions):
            try:
                self.registrar.withdraw(found[1].row_for_path(path).path)
            except Unstorable:
                pass

    def directory_left(self, path: str) -> None:
        for waiting in [p for p in self.settling if p.startswith(path + "/")]:
            del self.settling[waiting]
        found = self._root_of(path)
        if found is not None:
            root = found[0]
            self.registrar.withdraw_tree(root.path + path[len(root.watch_path):])

    def root_gone(self, root: Root) -> None:
        self.directory_left(root.watch_path)

    def directory_arrived(self, path: str) -> None:
        """A directory was created or moved in: walk it now, before other queued walks."""
        found = self._root_of(path)
        if found is not None:
            self.jobs.appendleft(self._job(found[0], found[1], path, full=False))

    # --- walks -----------------------------------------------------------------------

    def reconcile(self, root: Root) -> None:
        """Queue a full walk of a root, unless one is queued and not started yet."""
        if any(job.full and job.root == root for job in list(self.jobs)[1:]):
            return
        maker = next(m for r, m in self.makers if r == root)
        self.jobs.append(self._job(root, maker, root.watch_path, full=True))

    def reconcile_all(self) -> None:
        for root, _ in self.makers:
            self.reconcile(root)

    def _job(self, root: Root, maker: RowMaker, directory: str, full: bool) -> _Job:
        problems: list[WalkProblem] = []
        files = walk(directory, self.extensions, self.watch_directory, problems)
        return _Job(root, maker, full, files, problems)

    @property
    def walking(self) -> bool:
        return bool(self.jobs)

    def step(self, budget: int = 1000) -> None:
        """Advance the current walk by up to `budget` files."""
        if not self.jobs:
            return
        job = self.jobs[0]
        registrar = self.registrar
        if job.full and job.registered_before is None:
            job.registered_before = registrar.count_below(job.root.path)
            registrar.added_meanwhile = set() if job.registered_before else None
        offered = 0
        for found in job.files:
            self.counts.found += 1
            try:
                path = job.maker.stored_path(found.directory, found.name)
            except Unstorable as err:
                self._skip(os.path.join(found.directory, found.name), str(err))
                offered += 1
                continue
            if registrar.is_registered(path):
                # Most files of a warm restart: no row, no URL, no stat.
                self.counts.already += 1
                if job.full and registrar.was_registered_before(path):
                    job.hits += 1
                continue
            offered += 1
            try:
                row = job.maker.row(found.directory, found.name)
            except Unstorable as err:
                self._skip(os.path.join(found.directory, found.name), str(err))
            else:
                self._consider(row, found.directory + "/" + found.name, announce=not job.full)
            if offered >= budget:
                return
        self.jobs.popleft()
        for problem in job.problems:
            if problem.problem.startswith("cannot read"):
                self.unreadable.add(problem.path)
            log.warning("%s: %s", printable(problem.path), problem.problem)
        if job.full:
            self._forget_missing(job)
            registrar.added_meanwhile = None

    def _consider(self, row: Row, path: str, announce: bool) -> None:
        """A file a walk found at `path`: offer its row, unless it may still be being written."""
        try:
            st = os.lstat(path)
        except OSError:
            return  # gone since the listing: nothing to register
        if not stat.S_ISREG(st.st_mode):
            return
        if self.clock() - st.st_mtime < SETTLE_SECONDS:
            self.settling[path] = (st.st_mtime, st.st_size, self.clock())
            return
        self._register(row, path, announce)
        self.counts.new += 1

    def settle(self) -> None:
        """Register the walk-found files that have now been left alone long enough."""
        now = self.clock()
        for path, (mtime, size, _) in list(self.settling.items()):
            try:
                st = os.lstat(path)
            except OSError:
                del self.settling[path]
                continue
            if (st.st_mtime, st.st_size) != (mtime, size):
                self.settling[path] = (st.st_mtime, st.st_size, now)
            elif now - st.st_mtime >= SETTLE_SECONDS:
                del self.settling[path]
                found = self._root_of(path)
                if found is not None:
                    directory, _, name = path.rpartition("/")
                    self._offer(found[1], directory, name, announce=True)

    def _offer(self, maker: RowMaker, directory: str, name: str, announce: bool) -> None:
        try:
            row = maker.row(directory, name)
        except Unstorable as err:
            self._skip(directory + "/" + name, str(err))
            return
        if self._register(row, directory + "/" + name, announce):
            self.counts.new += 1
        else:
            self.counts.already += 1

    def _register(self, row: Row, source: str, announce: bool) -> bool:
        """Offer a finished file's row; in copy mode copy the file first (the row names the copy)."""
        if self.copying is None:
            return self.registrar.offer(row, announce)
        self.copying.offer(row, source, announce)
        return True

    def _skip(self, path: str, why: str) -> None:
        self.counts.skipped += 1
        # Overlapping walks (nested directories created at once) and periodic rescans meet
        # the same file again: it is named once, not at every meeting.
        if path in self._warned:
            return
        if len(self._warned) >= WARNED_MAX:
            self._warned.clear()
        self._warned.add(path)
        log.warning("skipped %s: %s", printable(path), why)

    def _forget_missing(self, job: _Job) -> None:
        """After a whole-root walk: forget registered files that are no longer there."""
        registrar = self.registrar
        if not registrar.forget_removed or registrar.known is None or not registrar.connected:
            return
        root = job.root
        if not os.path.isdir(root.watch_path) or _is_empty(root.watch_path):
            return  # a vanished root, or an empty one (an unmounted mount point), is no proof
        if job.hits >= (job.registered_before or 0):
            return  # every file registered before the walk was found again: nothing to forget
        unreadable = tuple(root.path + p.path[len(root.watch_path):] + "/" for p in job.problems)
        gone = []
        for path in registrar.registered_below(root.path):
            if path.startswith(unreadable):
                continue
            if not _is_regular_file(root.watch_path + path[len(root.path):]):
                gone.append(path)
        for path in gone:   # once the store's answer is read to its end
            registrar.withdraw(path)

    def _root_of(self, path: str) -> Optional[tuple[Root, RowMaker]]:
        for root, maker in self.makers:
            if path == root.watch_path or path.startswith(root.watch_path + "/"):
                return root, maker
        return None


def _is_regular_file(path: str) -> bool:
    """True for a regular file (not a link to one): a row's path must still be one."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError:
        return True  # cannot tell (a permission problem): keep the row


def _is_empty(directory: str) -> bool:
    try:
        with os.scandir(directory) as entries:
            return next(entries, None) is None
    except OSError:
        return True
