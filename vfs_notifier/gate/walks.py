"""The gate's walks: reconcile jobs over walker.walk, each a resumable generator charged to
the turn's budget; what a walk finds goes through the same routing as a kernel event."""

from __future__ import annotations

import errno
import logging
import os
from collections import deque
from typing import TYPE_CHECKING, Iterator, Optional

from ..budget import Budget
from ..rows import RowMaker, Unstorable, printable
from ..settings import Root
from ..walker import Found, WalkProblem, walk

if TYPE_CHECKING:
    from ..judge import Judge
    from ..registrar import Registrar
    from ..watcher import Change, Watcher
    from .routing import Counts

log = logging.getLogger("vfs_notifier")

CLEAN_DIRECTORIES_MAX = 4096


class _Job:
    """One walk in progress."""

    __slots__ = ("root", "maker", "located", "full", "files", "problems", "started")

    def __init__(self, root: Root, maker: RowMaker, full: bool, files: Iterator[Found],
                 problems: list[WalkProblem]) -> None:
        self.root, self.maker, self.files, self.problems = root, maker, files, problems
        self.located = (root, maker)    # where every file the walk finds is, for the gate
        self.full = full    # a whole-root reconcile: rows it does not meet are checked
        self.started = False



class Walks:
    """Walks in progress, oldest first (a mixin of Gate)."""

    judge: "Judge"
    registrar: "Registrar"
    watcher: "Optional[Watcher]"
    extensions: frozenset[str]
    makers: list[tuple[Root, RowMaker]]
    jobs: deque[_Job]
    changes: "deque[Change]"
    counts: "Counts"
    unreadable: set[str]
    _clean: set[str]

    def _listed(self, directory: str, controls: bool) -> None:
        if controls:
            self._clean.discard(directory)
            return
        if len(self._clean) >= CLEAN_DIRECTORIES_MAX:
            self._clean.clear()
        self._clean.add(directory)

    def reconcile(self, root: Root) -> None:
        """Queue a full walk of a root, unless one is queued and not started yet."""
        if not self.registrar.may_write(root.path) or any(job.full and job.root == root and not job.started for job in self.jobs):
            return
        maker = next(m for r, m in self.makers if r == root)
        self.jobs.append(self._job(root, maker, root.path, full=True))

    def reconcile_all(self) -> None:
        for root, _ in self.makers:
            self.reconcile(root)

    def drop_root(self, root: Root) -> None:
        """Another instance holds the root now: stop everything under way there (the
        registrar's may_write, which every walk and verdict asks, keeps it stopped)."""
        self.jobs = deque(job for job in self.jobs if job.root != root)
        self.judge.forget_below(root.path)
        self.changes = deque(c for c in self.changes if self._root_of(c.path) is None
                             or self._root_of(c.path)[0] != root)

    def _job(self, root: Root, maker: RowMaker, directory: str, full: bool) -> _Job:
        problems: list[WalkProblem] = []
        files = walk(directory, self.extensions, self._watch, problems, self._listed)
        return _Job(root, maker, full, files, problems)

    def _watch(self, directory: str) -> Optional[str]:
        if self.watcher is None:
            return None
        problem = self.watcher.watch(directory)
        if problem is None or problem in (errno.ENOENT, errno.EACCES, errno.ENOTDIR, errno.ENOSPC):
            return None   # the listing that follows reports the first three; the limit is the watcher's
        return f"cannot watch: {os.strerror(problem)}"

    @property
    def walking(self) -> bool:
        return bool(self.jobs)

    def _walk(self, budget: Budget) -> None:
        job = self.jobs[0]
        registrar = self.registrar
        if not job.started:
            job.started = True
            if job.full:
                # Counted now, not when queued: the memory may have been read meanwhile.
                registrar.begin_reconcile(job.root)
        maker, counts = job.maker, self.counts
        unchanged, reconciling = registrar.unchanged, (job.root if job.full else None)
        last_directory, stored_directory = "", ""
        for directory, name, control in job.files:
            counts.found += 1
            path = directory + "/" + name
            try:
                if directory is not last_directory:       # a walk yields a directory's files together
                    stored_directory, last_directory = maker.stored_directory(directory), directory
                # In place, the very string: its hash, which the memory asks, is made once.
                stored = path if stored_directory is directory else stored_directory + "/" + name
                st = os.lstat(path)
            except Unstorable as err:
                last_directory = ""
                self._skip(path, str(err))
            except OSError:
                pass   # gone since the listing
            else:
                if unchanged(stored, st, reconciling):
                    # Most files of a warm restart: registered as this very version.
                    counts.already += 1
                else:
                    self._judge_and_offer(path, closed=False, announce=not job.full, st=st,
                                          control=control, located=job.located)
                    if not self.accepting:    # only an offer fills the queue or the copies
                        return
            if not budget.spend():
                return
        self.jobs.popleft()
        for problem in job.problems:
            if problem.problem.startswith("cannot read"):
                self.unreadable.add(problem.path)
            log.warning("%s: %s", printable(problem.path), problem.problem)
        if job.full:
            registrar.end_reconcile(job.root, complete=_proves_absence(job.root.path))


def _proves_absence(directory: str) -> bool:
    """A vanished root, or an empty one (an unmounted mount point), is no proof that files went."""
    try:
        with os.scandir(directory) as entries:
            return next(entries, None) is not None
    except OSError:
        return False

