"""The gate: every change seen on disk passes here on its way to the registrar.

Kernel events and directory walks both end here. For each candidate path the gate finds
its root, asks the judge whether it is a finished video, and hands what the judge
finished to the registrar; renames become row moves and removals become withdrawals.
A reconcile is nothing but a walk of a root fed through the same gate. The gate makes no
store calls, and every unit of work it does (an event, a walked entry, a re-judged file)
is charged to the turn's budget, so that a walk of any size is resumable and the loop
stays responsive.
"""

from __future__ import annotations

import errno
import logging
import os
import time
from collections import deque
from typing import Iterator, Optional

from .copy_mode import CopyRegistration
from .judge import FINISHED, HELD, HELD_SETTLING, Judge, Verdict, download_target, whole_on_creation
from .looker import Looker
from .registrar import Registrar, version_of
from .rows import RowMaker, Unstorable, printable
from .settings import Root
from .walker import Found, WalkProblem, walk
from .watcher import (DIR_ARRIVED, DIR_ATTRIB, DIR_LEFT, DIR_MOVED, FILE_ATTRIB, FILE_DONE, FILE_GONE,
                      FILE_LINKED, FILE_MOVED, Change, Watcher)

log = logging.getLogger("vfs_notifier")

WARNED_MAX = 10000
CLEAN_DIRECTORIES_MAX = 4096
# With a looker: files asked of it and not answered, at most (past that the judge reads
# files itself), and how many changes must be waiting for a closed file to be asked (a lone
# file is read by the judge at once: a round trip to the looker would only add to its lag).
# The helper shares its core with the database server and wakes per request: 64 files
# ahead, the loop caught up with it and read a third of a cold start's files itself; 512
# ahead cut the cold start's CPU by 9 % and its time by 13 % (docs/PERFORMANCE-STRESS.md).
LOOK_AHEAD = 512
ASK_FROM = 16


class Budget:
    """How much one loop turn may still do; checked by the clock every few units."""

    def __init__(self, seconds: float, clock=time.monotonic) -> None:
        self.clock = clock
        self.deadline = clock() + seconds
        self._units = 0
        self.spent = False      # a walk step was taken this turn

    def spend(self, units: int = 1) -> bool:
        """Charge work; False once the turn's time is up."""
        self._units += units
        if self._units >= 32:
            self._units = 0
            return self.clock() < self.deadline
        return True

    @property
    def left(self) -> bool:
        return self.clock() < self.deadline

    @property
    def remaining(self) -> float:
        """Seconds left in the turn (negative once it ran over)."""
        return self.deadline - self.clock()


class Counts:
    def __init__(self) -> None:
        self.found = self.new = self.already = self.skipped = 0


class _Job:
    """One walk in progress."""

    __slots__ = ("root", "maker", "located", "full", "files", "problems", "started", "ahead")

    def __init__(self, root: Root, maker: RowMaker, full: bool, files: Iterator[Found],
                 problems: list[WalkProblem]) -> None:
        self.root, self.maker, self.files, self.problems = root, maker, files, problems
        self.located = (root, maker)    # where every file the walk finds is, for the gate
        self.full = full    # a whole-root reconcile: rows it does not meet are checked
        self.started = False
        # Files found and asked of the looker, judged LOOK_AHEAD files later: across turns,
        # so that the looker stays ahead of the judge. Walked already; not yet judged.
        self.ahead: deque[tuple[str, os.stat_result, bool, int]] = deque()


class Gate:
    def __init__(self, roots: tuple[Root, ...], extensions: tuple[str, ...], judge: Judge,
                 registrar: Registrar, watcher: Optional[Watcher] = None,
                 copying: Optional[CopyRegistration] = None, looker: Optional[Looker] = None) -> None:
        # Copy mode: rows name the copies, which the service owns: a rename or a deletion
        # in the watched tree leaves them (and their rows) alone, and a renamed file is new.
        self.copying = copying
        self.mirror = copying is None
        self.makers = [(root, RowMaker(root, copying.copy_to if copying else "")) for root in roots]
        self.extensions = frozenset(extensions)
        self.judge = judge
        self.registrar = registrar
        self.watcher = watcher
        self.looker = looker        # reads files on another core, ahead of their judging
        self.ask_from = ASK_FROM
        self.steps = 0              # step() calls: tells a walk what happened since it looked
        # Closed files of a burst asked of the looker, to judge once read (lstat taken then).
        self.closed_ahead: deque[str] = deque()
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
        self.steps += 1
        changes, closed_ahead = self.changes, self.closed_ahead
        while changes and budget.spend():
            change = changes.popleft()
            handler = self._handlers.get(change.kind)
            if handler is not None:
                handler(change)
            self._judge_read_closed()
        if closed_ahead:
            # Sent now, judged when read: a later turn (the loop looks again within
            # milliseconds, see `reading`), so that the loop reads new events meanwhile.
            self.looker.send()
            self._judge_read_closed()
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

    # --- events ---------------------------------------------------------------------

    @property
    def reading(self) -> bool:
        """Closed files wait for the looker to read them: the loop looks again soon."""
        return bool(self.closed_ahead)

    def finish_reading(self) -> None:
        """Judge every closed file asked of the looker (before a stop or a reload)."""
        closed_ahead = self.closed_ahead
        if closed_ahead:
            assert self.looker is not None
            self.looker.send()
        while closed_ahead:
            self.looker.wait_for(closed_ahead[0])
            self._judge_and_offer(closed_ahead.popleft(), closed=True, announce=True)

    def _judge_read_closed(self) -> None:
        """Judge the closed files the looker has read by now, in the order asked."""
        closed_ahead, looker = self.closed_ahead, self.looker
        while closed_ahead and looker.answered(closed_ahead[0]):
            self._judge_and_offer(closed_ahead.popleft(), closed=True, announce=True)

    def _file_done(self, change: Change) -> None:
        """Closed after writing: judge it now, or soon, read by the looker."""
        self._note_control_file(change.path)
        self._judge_closed(change.path)

    def _judge_closed(self, path: str) -> None:
        """In a burst (ask_from changes or more waiting) the file is asked of the looker and
        judged once read, its lstat taken then (other changes may be handled meanwhile); where
        the looker already has LOOK_AHEAD files under way, the judge reads it here, so that
        both CPUs read and neither waits on the other."""
        looker = self.looker
        # Not while the store is away or stalled (an outage): reading ahead would only make
        # rows that cannot be written sooner, and start a process for it.
        registrar = self.registrar
        if (looker is not None and len(self.changes) >= self.ask_from and registrar.connected
                and not registrar.stalled and looker.backlog < LOOK_AHEAD and looker.ask(path)):
            self.closed_ahead.append(path)
        else:
            self._judge_and_offer(path, closed=True, announce=True)

    def _file_attrib(self, change: Change) -> None:
        if change.path in self.judge.held:
            self._judge_and_offer(change.path, closed=False, announce=True)

    def _note_control_file(self, path: str) -> None:
        """A download tool's control file arrived: its directory's files are looked at for theirs."""
        if download_target(path) is not None:
            self._clean.discard(path.rpartition("/")[0])

    def _listed(self, directory: str, controls: bool) -> None:
        if controls:
            self._clean.discard(directory)
            return
        if len(self._clean) >= CLEAN_DIRECTORIES_MAX:
            self._clean.clear()
        self._clean.add(directory)

    def _file_linked(self, change: Change) -> None:
        self._note_control_file(change.path)
        if not whole_on_creation(change.path):
            return
        self._judge_and_offer(change.path, closed=False, announce=True)

    def _file_gone(self, change: Change) -> None:
        path = change.path
        self.judge.forget(path)
        download = download_target(path)
        if download is not None:
            # aria2c and lftp pget remove their control file when the download is complete.
            if download in self.judge.held:
                self._judge_and_offer(download, closed=True, announce=True)
            return
        found = self._root_of(path)
        if found is None or not self.mirror:
            return
        try:
            row = found[1].row_for_path(path)
        except Unstorable:
            return
        self.registrar.withdraw(row.path, is_dir=False)

    def _file_moved(self, change: Change) -> None:
        self._note_control_file(change.path)
        self.judge.forget(change.source)
        self._move_rows(change.source, change.path, is_dir=False)
        self._judge_closed(change.path)

    def _directory_moved(self, change: Change) -> None:
        self.judge.forget_below(change.source)
        self._move_rows(change.source, change.path, is_dir=True)
        # Walk it: files below that were held or never registered are judged again there.
        self.directory_arrived(Change(DIR_ARRIVED, change.path))

    def _move_rows(self, old: str, new: str, is_dir: bool) -> None:
        """A rename within the roots moves rows; out of them, it withdraws them (mirror only)."""
        source, target = self._root_of(old), self._root_of(new)
        if not self.mirror or source is None:
            return
        if target is None:
            if is_dir:
                self.directory_left(Change(DIR_LEFT, old))
            else:
                self._file_gone(Change(FILE_GONE, old))
            return
        try:
            if is_dir:
                old_row, new_row = source[1].directory_row(old), target[1].directory_row(new)
            else:
                old_row, new_row = source[1].row_for_path(old), target[1].row_for_path(new)
        except Unstorable:
            return
        self.registrar.move(old_row, new_row, is_dir)

    def _directory_attrib(self, change: Change) -> None:
        """A directory's mode changed: one a walk could not read is walked again."""
        if change.path in self.unreadable:
            self.unreadable.discard(change.path)
            self.directory_arrived(change)

    def directory_left(self, change: Change) -> None:
        path = change.path
        self.judge.forget_below(path)
        found = self._root_of(path)
        if found is not None and self.mirror:
            root = found[0]
            self.registrar.withdraw(root.path + path[len(root.watch_path):], is_dir=True)

    def directory_arrived(self, change: Change) -> None:
        """A directory was created or moved in: walk it now, before other queued walks."""
        found = self._root_of(change.path)
        if found is not None:
            self.jobs.appendleft(self._job(found[0], found[1], change.path, full=False))

    # --- walks -----------------------------------------------------------------------

    def reconcile(self, root: Root) -> None:
        """Queue a full walk of a root, unless one is queued and not started yet."""
        if not self.registrar.may_write(root.path) or any(job.full and job.root == root and not job.started for job in self.jobs):
            return
        maker = next(m for r, m in self.makers if r == root)
        self.jobs.append(self._job(root, maker, root.watch_path, full=True))

    def reconcile_all(self) -> None:
        for root, _ in self.makers:
            self.reconcile(root)

    def drop_root(self, root: Root) -> None:
        """Another instance holds the root now: stop everything under way there (the
        registrar's may_write, which every walk and verdict asks, keeps it stopped)."""
        self.jobs = deque(job for job in self.jobs if job.root != root)
        self.closed_ahead = deque(p for p in self.closed_ahead if not p.startswith(root.watch_path + "/"))
        self.judge.forget_below(root.watch_path)
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
        looker, ahead = self.looker, job.ahead
        for found in job.files:
            self.counts.found += 1
            path = found.directory + "/" + found.name
            try:
                stored = job.maker.stored_path(found.directory, found.name)
                st = os.lstat(path)
            except Unstorable as err:
                self._skip(path, str(err))
            except OSError:
                pass   # gone since the listing
            else:
                version = version_of(st)
                if registrar.is_current(stored, version):
                    # Most files of a warm restart: registered as this very version.
                    self.counts.already += 1
                    if job.full and registrar.remembered_as(stored, version):
                        registrar.found_registered(job.root)
                elif looker is not None and looker.backlog < LOOK_AHEAD and looker.ask(path):
                    ahead.append((path, st, found.beside_control, self.steps))
                else:
                    # The looker is LOOK_AHEAD files behind (or absent): this one is read by
                    # the judge here, so that both CPUs read and neither waits on the other.
                    self._judge_and_offer(path, closed=False, announce=not job.full, st=st,
                                          control=found.beside_control, located=job.located)
                # The files the looker has read by now (or, past LOOK_AHEAD, the oldest anyway).
                while ahead and (len(ahead) > LOOK_AHEAD or looker.answered(ahead[0][0])):
                    self._judge_ahead(job, *ahead.popleft())
            if not budget.spend() or not self.accepting:
                if looker is not None:
                    looker.send()   # the looker reads on while the loop does the rest of the turn
                return
        while ahead:
            # The walk's last files: the looker has them under way, the walk nothing else to
            # do. Charged to the turn like the rest: up to LOOK_AHEAD files may be waiting.
            if not budget.spend():
                return
            looker.wait_for(ahead[0][0])
            self._judge_ahead(job, *ahead.popleft())
        self.jobs.popleft()
        for problem in job.problems:
            if problem.problem.startswith("cannot read"):
                self.unreadable.add(problem.path)
            log.warning("%s: %s", printable(problem.path), problem.problem)
        if job.full:
            registrar.end_reconcile(job.root, complete=_proves_absence(job.root.watch_path))

    def _judge_ahead(self, job: _Job, path: str, st: os.stat_result, beside_control: bool,
                     step: int) -> None:
        """Judge a file walked a moment ago. Walked in an earlier step, events were handled
        since: its lstat is taken again, and a control file that came since is looked for,
        not assumed absent."""
        if step == self.steps:
            self._judge_and_offer(path, closed=False, announce=not job.full, st=st,
                                  control=beside_control, located=job.located)
        else:
            self._judge_and_offer(path, closed=False, announce=not job.full,
                                  control=True if beside_control else None, located=job.located)

    # --- the judge's verdict ------------------------------------------------------------

    def _judge_and_offer(self, path: str, closed: bool, announce: bool,
                         st: Optional[os.stat_result] = None, control: Optional[bool] = None,
                         located: Optional[tuple[Root, RowMaker]] = None) -> None:
        """Ask the judge about `path` and route its verdict; `st`: an lstat the caller just took,
        `control`: whether its listing showed a download tool's control file beside it,
        `located`: its root and row maker, if the caller knows them (a walk does)."""
        if located is None:
            located = self._root_of(path)
            if located is None:
                return
        root, maker = located
        if not self.registrar.may_write(root.path):
            return      # a standby judges nothing: the holder registers it
        if self.copying is None and self.registrar.store_away:
            # Nothing judged could be written: the walk of every root on reconnecting judges
            # this file there. Judging now would only let the loop fall behind a writer and
            # its unread events pile up in memory (an outage must leave memory flat).
            return
        relative = path[len(root.watch_path) + 1:]
        if self.judge.names.not_candidate(relative):
            return
        directory, _, name = path.rpartition("/")
        if closed and st is None and path not in self.judge.held:
            # A burst into a new directory: its walk judged the file before its close event
            # was read. The same version, queued or registered, needs no second judgement
            # (nor its row made again: quoting its URL costs more than this test).
            try:
                st = os.lstat(path)
                if self.registrar.is_current(maker.stored_path(directory, name), version_of(st)):
                    self.counts.already += 1
                    return
            except (OSError, Unstorable):
                st = None
        try:
            row = maker.row(directory, name)   # a name no row can hold is said before anything else
        except Unstorable as err:
            self._skip(path, str(err))
            return
        was_held = self.judge.held.get(path)
        was_kind = self.judge.kind_of(path)
        if control is None and directory in self._clean:
            control = False
        look = self.looker.take(path) if self.looker is not None else None
        verdict = self.judge.judge_file(path, relative, closed, st, control, look)
        if verdict.state == HELD:
            if was_held != verdict.reason:
                self._tell_held(path, verdict, was_kind)
            return
        if verdict.state != FINISHED:
            if self.mirror and self.registrar.has_row(row.path):
                # A registered path that is no video file now (a link renamed over it, a
                # directory): the one withdrawal, which checks the disk when it deletes.
                self.registrar.withdraw(row.path, is_dir=False)
            return
        assert verdict.stat is not None
        version = version_of(verdict.stat)
        if self.copying is not None:
            if self.registrar.is_current(row.path, version):
                self.counts.already += 1
            else:
                self.copying.offer(row, version, path, announce)   # registered once copied
                self.counts.new += 1
            return
        if self.registrar.offer(row, version, announce):
            self.counts.new += 1
            if was_held is not None:
                log.info("%s is finished now (was held: %s)", printable(path), was_held)
        else:
            self.counts.already += 1

    def _tell_held(self, path: str, verdict: Verdict, before: Optional[str]) -> None:
        """`before`: the kind the path was held as, None if it was not held."""
        # Settling is the normal way of a file without proof in its framing: said quietly.
        # A file the judge found incomplete is said once, loud, with the reason in words.
        if verdict.kind == HELD_SETTLING:
            log.debug("holding %s: %s", printable(path), verdict.reason)
        elif before is None or before == HELD_SETTLING:
            log.warning("holding %s as incomplete: %s", printable(path), verdict.reason,
                        extra={"VIDEO_PATH": path})

    def _skip(self, path: str, why: str) -> None:
        self.counts.skipped += 1
        # Overlapping walks and periodic rescans meet the same file again: it is named once.
        if path in self._warned:
            return
        if len(self._warned) >= WARNED_MAX:
            self._warned.clear()
        self._warned.add(path)
        log.warning("skipped %s: %s", printable(path), why)

    def _root_of(self, path: str) -> Optional[tuple[Root, RowMaker]]:
        for root, maker in self.makers:
            if path == root.watch_path or path.startswith(root.watch_path + "/"):
                return root, maker
        return None


def _proves_absence(directory: str) -> bool:
    """A vanished root, or an empty one (an unmounted mount point), is no proof that files went."""
    try:
        with os.scandir(directory) as entries:
            return next(entries, None) is not None
    except OSError:
        return False
