"""The service's parts, wired for one Settings; one turn of work; reload and stop.

A turn reads what the kernel reported, lets the gate judge and route it within the
turn's budget, and lets the registrar write one batch. A single file therefore lands in
the same turn (milliseconds), while a burst or a large tree goes in bounded turns
between which the loop reads events and pings the watchdog. Anything unexpected in a
turn is logged and survived: the service never dies of one file or one query.
"""

from __future__ import annotations

import logging
import os
import time

from .budget import Budget
from .copier import Copier
from .copy_mode import CopyRegistration
from .gate import Gate
from .heap import ReleaseWhenIdle
from .judge import Judge, Names
from .logs import Logs
from .registrar import BATCH, Registrar
from .settings import Root, Settings
from .store_factory import open_store
from .watcher import OVERFLOW, ROOT_GONE, ROOT_UNMOUNTED, Change, Watcher

log = logging.getLogger("vfs_notifier")

# A turn reads and handles events for this long, then writes at most ROWS_PER_TURN rows: the
# loop pings the watchdog and reads the kernel's queue at least every ~100 ms. Each write is
# one transaction, and a durable commit waits for the disk: 2,000 rows a write took a
# 100,000-file cold start 9 % less time than 500 did (the loop's side of a write: ~10 ms).
TURN_SECONDS = 0.035
ROWS_PER_TURN = BATCH       # one write: walks pause while that many rows wait
CHANGES_HELD_MAX = 20000     # parsed changes waiting for the gate; past it the kernel side buffers
STOP_FLUSH_SECONDS = 5.0
# Idle this long after a walk or a burst, the freed heap goes back to the system (once).
RELEASE_AFTER_IDLE_SECONDS = 2.0
# A failing turn (a bug) is said with its traceback once per distinct error in this long, and
# answered by a walk of every root at most this often: a bug met every turn must not fill
# the journal or keep the service walking.
TURN_ERROR_SECONDS = 60.0


class Service:
    """What one Settings asks for: a watcher, a judge, a gate and a registrar, and the roots' state."""

    def __init__(self, settings: Settings, logs: Logs) -> None:
        self.logs = logs
        self.settings = settings
        self.watcher = Watcher()
        self.registrar = Registrar(open_store(settings.database), settings.roots, settings.forget_removed,
                                   copy_to=settings.copy_to, lease_seconds=settings.database.lease_seconds)
        self.judge = Judge(Names(settings.extensions, settings.ignore),
                           check_structure=settings.check_structure,
                           settle_seconds=settings.settle_seconds)
        # Copy mode: copies run beside the loop; a finished file's row is offered once its copy is in place.
        self.copying = (CopyRegistration(Copier(clean_below=settings.copy_to), self.registrar, settings.copy_to)
                        if settings.registration_mode == "copy" else None)
        self.gate = Gate(settings.roots, settings.extensions, self.judge, self.registrar, self.watcher,
                         self.copying)
        self.active: set[Root] = set()        # watched and fed to the gate
        self.missing: set[Root] = set()       # not there (yet)
        self.root_ids: dict[Root, tuple[int, int]] = {}   # (st_dev, st_ino) each root was watched as
        self.ever_connected = False
        self.heap = ReleaseWhenIdle(RELEASE_AFTER_IDLE_SECONDS)
        self.started_at = time.monotonic()
        self.turn_errors = 0
        self._error_said: dict[str, float] = {}   # an error's text -> when its traceback was logged
        self._walk_after_error_at = 0.0           # the next walk a failing turn may start
        self._walk_owed = False                   # a failing turn's walk waits for that time
        for warning in settings.warnings:
            log.warning("%s", warning)

    # --- roots ---------------------------------------------------------------------------

    def start(self) -> None:
        if self.registrar.connect():
            self.ever_connected = True
        self.settle_roots()

    def settle_roots(self) -> None:
        """Watch each root that exists and is ours to write; let go of those another instance
        holds. Before the database was ever reached every root is watched (nothing can be
        written until it is, and then this is asked again)."""
        registrar = self.registrar
        for root in self.settings.roots:
            ours = registrar.may_write(root.path) or not self.ever_connected
            if root in self.active and not ours:
                log.warning("%s: another instance registers it now; this one stands by", root.path)
                self.watcher.unwatch_tree(root.path)
                self.gate.drop_root(root)
                self.active.discard(root)
            elif root not in self.active and ours:
                self.adopt(root)

    def adopt(self, root: Root) -> None:
        if not os.path.isdir(root.path):
            if root not in self.missing:
                log.warning("watched directory %s does not exist (yet); checking again every %g s",
                            root.path, self.settings.poll_interval)
            self.missing.add(root)
            return
        if root in self.missing:
            log.info("watched directory %s appeared", root.path)
        self.missing.discard(root)
        try:
            st = os.stat(root.path)
            self.root_ids[root] = (st.st_dev, st.st_ino)
        except OSError:
            pass
        problem = self.watcher.watch(root.path, is_root=True)
        if problem is not None and problem != 28:   # ENOSPC is the watcher's to report
            log.warning("%s: cannot watch: %s", root.path, os.strerror(problem))
        self.active.add(root)
        self.gate.reconcile(root)

    def root_left(self, root: Root) -> None:
        self.active.discard(root)
        self.missing.add(root)

    # --- one turn --------------------------------------------------------------------------

    def turn(self) -> None:
        try:
            self._turn()
        except Exception as err:   # a bug must cost one turn, not the service (and is said loudly)
            self._turn_failed(err)
        if self._walk_owed and time.monotonic() >= self._walk_after_error_at:
            self._walk_owed = False
            self._walk_after_error_at = time.monotonic() + TURN_ERROR_SECONDS
            self.gate.reconcile_all()    # what the failed turn dropped is found by walking

    def _turn_failed(self, err: Exception) -> None:
        self.turn_errors += 1
        now = time.monotonic()
        text = f"{type(err).__name__}: {err}"
        if now - self._error_said.get(text, -TURN_ERROR_SECONDS) >= TURN_ERROR_SECONDS:
            self._error_said[text] = now
            if len(self._error_said) > 100:   # bounded, whatever the errors' texts
                self._error_said = {text: now}
            log.exception("unexpected error in the service loop (recovering; please report it)")
        else:
            log.debug("unexpected error in the service loop again: %s", text)
        self._walk_owed = True

    def _turn(self) -> None:
        registrar, gate = self.registrar, self.gate
        if not registrar.connected and registrar.connect():
            # Also after a start without a database: what happened meanwhile is found by walking.
            log.info("database is %s: reconciling every root",
                     "back" if self.ever_connected else "reachable")
            self.ever_connected = True
            self.settle_roots()
            gate.reconcile_all()
        # One budget for the whole turn (reading events, handling them, a page of withdrawals):
        # the loop pings the watchdog between turns, so the turn is what must stay short.
        budget = Budget(TURN_SECONDS)
        if self.copying is not None:
            self.copying.turn()
        if len(gate.changes) < CHANGES_HELD_MAX:
            self.apply(self.watcher.read())
        gate.step(budget)
        registrar.flush(ROWS_PER_TURN, time_left=budget.remaining)
        if gate.busy or gate.walking or registrar.pending:
            self.heap.worked(time.monotonic())
        else:
            self.heap.idle(time.monotonic())    # a walk or a burst is over: its heap goes back
        if registrar.reconcile_needed and registrar.connected and not registrar.queue:
            registrar.reconcile_needed = False
            log.info("reconciling every root: changes were set aside while the database was away")
            gate.reconcile_all()

    def apply(self, changes: list[Change]) -> None:
        """Changes about the roots themselves are the service's; the rest go to the gate."""
        for_gate = []
        for change in changes:
            if change.kind in (ROOT_GONE, ROOT_UNMOUNTED):
                self._root_changed(change)
            elif change.kind == OVERFLOW:
                log.warning("the kernel dropped file events (queue overflow; sysctl "
                            "fs.inotify.max_queued_events is %s now): reconciling every root",
                            read_sysctl("max_queued_events"))
                self.gate.reconcile_all()
            else:
                for_gate.append(change)
        self.gate.accept(for_gate)

    def _root_changed(self, change: Change) -> None:
        root = next((r for r in self.settings.roots if r.path == change.path), None)
        if root is None:
            return
        if change.kind == ROOT_GONE:
            log.warning("watched directory %s was removed or moved; waiting for it to return", change.path)
            self.gate.directory_left(change)
        else:
            log.warning("the file system of watched directory %s was unmounted; its rows stay, "
                        "and it is watched again when mounted", change.path)
            self.root_ids.pop(root, None)
        self.root_left(root)

    @property
    def busy(self) -> bool:
        registrar = self.registrar
        # Rows waiting while a commit is under way wait for it: the loop polls (daemon.py).
        return self.gate.busy or (registrar.connected and registrar.pending > 0 and not registrar.committing)

    # --- reload and stop -------------------------------------------------------------------

    def drain(self) -> None:
        """Write what is queued before letting go of the store (bounded in time)."""
        deadline = time.monotonic() + STOP_FLUSH_SECONDS
        if self.copying is not None:
            self.copying.turn()   # copies already in place get their rows now
        while self.registrar.connected and self.registrar.pending and time.monotonic() < deadline:
            self.registrar.flush(wait=True)

    def close(self) -> None:
        if self.copying is not None:
            self.copying.close()
        self.registrar.close()
        self.watcher.close()


def read_sysctl(name: str) -> str:
    try:
        with open(f"/proc/sys/fs/inotify/{name}") as handle:
            return handle.read().strip()
    except OSError:
        return "unknown"
