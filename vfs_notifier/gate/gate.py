"""The gate: every change seen on disk passes here on its way to the registrar.

Kernel events and directory walks both end here. For each candidate path the gate finds
its root, asks the judge whether it is a finished video, and hands what the judge
finished to the registrar; renames become row moves and removals become withdrawals.
A reconcile is nothing but a walk of a root fed through the same gate. The gate makes no
store calls, and every unit of work it does (an event, a walked entry, a re-judged file)
is charged to the turn's budget, so that a walk of any size is resumable and the loop
stays responsive.

Its parts, one job each: events.py (the kernel's changes), walks.py (reconcile jobs),
routing.py (a verdict to the registrar or the copier).
"""

from __future__ import annotations

from collections import deque
from typing import Optional

from ..budget import Budget
from ..copy_mode import CopyRegistration
from ..judge import Judge
from ..registrar import Registrar
from ..rows import RowMaker
from ..settings import Root
from ..watcher import (DIR_ARRIVED, DIR_ATTRIB, DIR_LEFT, DIR_MOVED, FILE_ATTRIB, FILE_DONE, FILE_GONE,
                       FILE_LINKED, FILE_MOVED, Change, Watcher)
from .events import Events
from .routing import Counts, Routing
from .walks import Walks, _Job


class Gate(Events, Walks, Routing):
    def __init__(self, roots: tuple[Root, ...], extensions: tuple[str, ...], judge: Judge,
                 registrar: Registrar, watcher: Optional[Watcher] = None,
                 copying: Optional[CopyRegistration] = None) -> None:
        # Copy mode: rows name the copies, which the service owns: a rename or a deletion
        # in the watched tree leaves them (and their rows) alone, and a renamed file is new.
        self.copying = copying
        self.mirror = copying is None
        self.makers = [(root, RowMaker(root, copying.copy_to if copying else "")) for root in roots]
        self.extensions = frozenset(extensions)
        self.judge = judge
        self.registrar = registrar
        self.watcher = watcher
        self.changes: deque[Change] = deque()
        self.rejudge: deque[str] = deque()     # held files the judge wants to look at again
        self.jobs: deque[_Job] = deque()
        self.counts = Counts()
        self._warned: set[str] = set()
        self.unreadable: set[str] = set()    # directories a walk could not list
        # Directories a walk listed without a download tool's control file, none seen arriving
        # since (events of a directory come after its listing: its watch is placed before):
        # the judge need not look for NAME.aria2 or NAME.lftp-pget-status beside their files.
        # Bounded; a directory not here is looked at.
        self._clean: set[str] = set()
        self._handlers = {FILE_DONE: self._file_done, FILE_ATTRIB: self._file_attrib,
                          FILE_LINKED: self._file_linked, FILE_GONE: self._file_gone,
                          FILE_MOVED: self._file_moved, DIR_ARRIVED: self.directory_arrived,
                          DIR_LEFT: self.directory_left, DIR_MOVED: self._directory_moved,
                          DIR_ATTRIB: self._directory_attrib}

    # --- the turn's work ------------------------------------------------------------

    def accept(self, changes: list[Change]) -> None:
        self.changes.extend(changes)

    @property
    def busy(self) -> bool:
        """Work is waiting that the next turn should do at once."""
        return bool(self.changes or self.rejudge) or (bool(self.jobs) and self.accepting)

    @property
    def accepting(self) -> bool:
        """Whether walks may go on: not while the store is away or the copies are behind."""
        return self.registrar.accepting and (self.copying is None or not self.copying.busy)

    def step(self, budget: Budget) -> None:
        """Handle queued changes, re-judge what is due, advance walks: as the budget allows."""
        changes = self.changes
        while changes and budget.spend():
            change = changes.popleft()
            handler = self._handlers.get(change.kind)
            if handler is not None:
                handler(change)
        rejudge = self.rejudge
        rejudge.extend(self.judge.due())
        while rejudge and budget.spend():
            self._judge_and_offer(rejudge.popleft(), closed=False, announce=True)
        # While the store is away, walks wait: every file they find would only queue a
        # row in memory, and the reconcile after reconnecting walks again anyway.
        # While events wait to be read, a walk would run ahead of them (it sees the disk as
        # it is now; a rename those events report happened before): it takes a few steps
        # only, so that it still ends under a flood of events.
        if self.watcher is not None and self.watcher.backlog:
            budget = Budget(0, clock=budget.clock)   # one step of 32 entries
        while self.jobs and self.accepting and (budget.left or not budget.spent):
            self._walk(budget)
            budget.spent = True
