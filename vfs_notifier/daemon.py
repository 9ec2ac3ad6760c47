"""The running service: one loop from the kernel's events to rows.

Each turn of the loop reads what inotify has queued, hands every change to the
reconciler, advances any directory walk by one batch, and lets the registrar write
one batch. A single file therefore lands within the same turn (milliseconds), while a
burst or a large tree goes in batches. Housekeeping (database retries, settling files,
missing roots, periodic rescans, status) runs every `poll_interval` seconds and never
delays an event.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import signal
import time
from typing import Callable, Optional

from . import settings as settings_module
from .copier import Copier
from .copy_mode import CopyRegistration
from .logs import Logs
from .reconciler import Reconciler
from .registrar import Registrar
from .settings import ConfigError, Root, Settings
from .store import open_store
from .systemd_notify import SystemdNotifier
from .watcher import (DIR_ARRIVED, DIR_ATTRIB, DIR_LEFT, FILE_DONE, FILE_GONE, FILE_LINKED, OVERFLOW,
                      ROOT_GONE, ROOT_UNMOUNTED, Change, Watcher)

log = logging.getLogger("vfs_notifier")

STOP_FLUSH_SECONDS = 5.0
SETTLE_CHECK_SECONDS = 0.5


class Service:
    """Watches the roots of one Settings; `run` until SIGTERM/SIGINT; SIGHUP reloads."""

    def __init__(self, settings: Settings, logs: Logs, notifier: SystemdNotifier,
                 reload_settings: Callable[[], Settings]) -> None:
        self.logs = logs
        self.notifier = notifier
        self.reload_settings = reload_settings
        self.stop_requested = False
        self.reload_requested = False
        self._setup(settings)

    # --- building and tearing down what one Settings asks for ---------------------

    def _setup(self, settings: Settings) -> None:
        self.settings = settings
        self.watcher = Watcher()
        self.registrar = Registrar(open_store(settings.database), settings.forget_removed,
                                   roots=[root.path for root in settings.roots])
        # Copy mode: copies run beside the loop; a finished file's row is offered once its copy is in place.
        self.copying = (CopyRegistration(Copier(clean_below=settings.copy_to), self.registrar, settings.copy_to)
                        if settings.registration_mode == "copy" else None)
        self.reconciler = Reconciler(settings.roots, settings.extensions, self.registrar,
                                     watch_directory=self._watch_directory, copying=self.copying)
        reconciler = self.reconciler
        self._file_changes = {FILE_DONE: reconciler.file_done, FILE_GONE: reconciler.file_gone,
                              FILE_LINKED: reconciler.file_linked, DIR_ARRIVED: reconciler.directory_arrived,
                              DIR_LEFT: reconciler.directory_left, DIR_ATTRIB: reconciler.directory_changed}
        self.missing_roots: set[Root] = set()
        self.root_ids: dict[Root, tuple[int, int]] = {}   # (st_dev, st_ino) each root was watched as
        self.unwatched: set[str] = set()   # directories inotify refused (watch limit)
        self.limit_warned = False
        self.ready_sent = False
        self.ever_connected = False
        now = time.monotonic()
        self.next_housekeeping = now + settings.poll_interval
        self.next_rescan = now + settings.rescan_interval if settings.rescan_interval else None
        self.next_settle = now
        for warning in settings.warnings:
            log.warning("%s", warning)

    def _start(self) -> None:
        self.registrar.connect()
        self.ever_connected = self.registrar.connected
        for root in self.settings.roots:
            self._adopt_root(root)

    def _adopt_root(self, root: Root) -> None:
        if not os.path.isdir(root.watch_path):
            if root not in self.missing_roots:
                log.warning("watched directory %s does not exist (yet); checking again every %g s",
                            root.watch_path, self.settings.poll_interval)
            self.missing_roots.add(root)
            return
        self.missing_roots.discard(root)
        try:
            st = os.stat(root.watch_path)
            self.root_ids[root] = (st.st_dev, st.st_ino)
        except OSError:
            pass
        problem = self.watcher.watch(root.watch_path, is_root=True)
        if problem is not None:
            self._watch_failed(root.watch_path, problem)
        self.reconciler.reconcile(root)

    def _teardown(self) -> None:
        if self.copying is not None:
            self.copying.close()
        self.registrar.close()
        self.watcher.close()

    # --- watches -------------------------------------------------------------------

    def _watch_directory(self, directory: str) -> Optional[str]:
        problem = self.watcher.watch(directory)
        if problem is None:
            self.unwatched.discard(directory)
            return None
        return self._watch_failed(directory, problem)

    def _watch_failed(self, directory: str, problem: int) -> Optional[str]:
        if problem in (errno.ENOENT, errno.EACCES, errno.ENOTDIR):
            return None  # the listing that follows reports it, once
        if problem == errno.ENOSPC:
            self.unwatched.add(directory)
            if not self.limit_warned:
                self.limit_warned = True
                log.warning("inotify watch limit reached (sysctl fs.inotify.max_user_watches, now %s): "
                            "directories without a watch are rescanned every %g s instead; raise it, "
                            "e.g. sysctl -w fs.inotify.max_user_watches=1048576",
                            _read_sysctl("max_user_watches"), self.settings.poll_interval)
            return None
        return f"cannot watch: {os.strerror(problem)}"

    # --- the loop --------------------------------------------------------------------

    def run(self) -> int:
        wake_read, wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_write)
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_reload)
        self._start()
        poller = select.poll()
        poller.register(wake_read, select.POLLIN)
        watch_fd = self.watcher.fileno()
        poller.register(watch_fd, select.POLLIN)
        copy_fd = self._register_copy_fd(poller)
        try:
            while not self.stop_requested:
                for fd, _ in poller.poll(self._timeout_ms()):
                    if fd == wake_read or fd == copy_fd:
                        _drain(fd)
                    elif fd == watch_fd:
                        for change in self.watcher.read():
                            self._apply(change)
                if self.reload_requested:
                    poller.unregister(watch_fd)
                    if copy_fd is not None:
                        poller.unregister(copy_fd)
                    self._reload()
                    watch_fd = self.watcher.fileno()
                    poller.register(watch_fd, select.POLLIN)
                    copy_fd = self._register_copy_fd(poller)
                self._turn()
            self._stop()
        finally:
            signal.set_wakeup_fd(-1)
            os.close(wake_read)
            os.close(wake_write)
        return 0

    def _register_copy_fd(self, poller: select.poll) -> Optional[int]:
        """Copy mode: a finished copy wakes the loop, so its row goes in at once."""
        if self.copying is None:
            return None
        poller.register(self.copying.fileno(), select.POLLIN)
        return self.copying.fileno()

    def _turn(self) -> None:
        """Everything but reading events: one turn's worth of walking, writing and housekeeping."""
        registrar = self.registrar
        if self.copying is not None:
            self.copying.turn()
        if not registrar.connected and registrar.connect():
            # Also after a start without a database: the walk that ran meanwhile could
            # not tell which registered files are gone, so it is done again now.
            log.info("database is %s: reconciling every root",
                     "back" if self.ever_connected else "reachable")
            self.reconciler.reconcile_all()
            self.ever_connected = True
        if self.reconciler.walking and (len(registrar.queue) < 2000 or not registrar.connected) \
                and not (self.copying is not None and self.copying.busy):
            self.reconciler.step()
        registrar.flush()
        if not self.ready_sent and not self.reconciler.walking:
            self.ready_sent = True
            self.notifier.ready(self._status())
            log.info("watching %d directories below %s", self.watcher.watch_count(),
                     ", ".join(r.watch_path for r in self.settings.roots))
        now = time.monotonic()
        if self.reconciler.settling and now >= self.next_settle:
            self.next_settle = now + SETTLE_CHECK_SECONDS
            self.reconciler.settle()
        if now >= self.next_housekeeping:
            self.next_housekeeping = now + self.settings.poll_interval
            self._housekeeping(now)
        self.notifier.ping_if_due()
        self.notifier.status(self._status(), starting=not self.ready_sent)
        self.logs.flush()

    def _housekeeping(self, now: float) -> None:
        self.logs.retry_file()
        for root in list(self.missing_roots):
            if os.path.isdir(root.watch_path):
                log.info("watched directory %s appeared", root.watch_path)
                self._adopt_root(root)
        for root, identity in list(self.root_ids.items()):
            # A file system mounted on a root (or a root replaced) sends no event to the
            # watch on what was there before: compare what the path is now.
            try:
                st = os.stat(root.watch_path)
            except OSError:
                continue
            if root not in self.missing_roots and (st.st_dev, st.st_ino) != identity:
                log.info("watched directory %s is another directory now (mounted or replaced): "
                         "watching and reconciling it afresh", root.watch_path)
                self.watcher.unwatch_tree(root.watch_path)
                self._adopt_root(root)
        self.unwatched = {d for d in self.unwatched if os.path.isdir(d)}   # deleted ones need nothing
        if self.unwatched and not self.reconciler.walking:
            # Directories inotify could not watch are covered by walking again (which
            # also retries their watches).
            self.reconciler.reconcile_all()
        if self.next_rescan is not None and now >= self.next_rescan:
            self.next_rescan = now + self.settings.rescan_interval
            self.reconciler.reconcile_all()

    def _timeout_ms(self) -> int:
        registrar = self.registrar
        if self.stop_requested or self.reload_requested:
            return 0
        if self.reconciler.walking and not (self.copying is not None and self.copying.busy):
            return 0
        if registrar.connected and registrar.pending:
            return 0
        now = time.monotonic()
        deadlines = [self.next_housekeeping]
        if self.reconciler.settling:
            deadlines.append(self.next_settle)
        if not registrar.connected:
            deadlines.append(now + max(0.0, registrar.retry_at - time.monotonic()))
        watchdog = self.notifier.watchdog_due_in()
        if watchdog is not None:
            deadlines.append(now + watchdog)
        return max(0, int((min(deadlines) - now) * 1000) + 1)

    def _apply(self, change: Change) -> None:
        kind, path = change
        for_files = self._file_changes.get(kind)
        if for_files is not None:
            for_files(path)
        elif kind in (ROOT_GONE, ROOT_UNMOUNTED):
            root = next(r for r in self.settings.roots if r.watch_path == path)
            if kind == ROOT_GONE:
                log.warning("watched directory %s was removed or moved; waiting for it to return", path)
                self.reconciler.root_gone(root)
            else:
                log.warning("the file system of watched directory %s was unmounted; its rows stay, "
                            "and it is watched again when mounted", path)
                self.root_ids.pop(root, None)
            self.missing_roots.add(root)
        elif kind == OVERFLOW:
            log.warning("the kernel dropped file events (queue overflow; sysctl "
                        "fs.inotify.max_queued_events is %s now): reconciling every root",
                        _read_sysctl("max_queued_events"))
            self.reconciler.reconcile_all()

    # --- status, signals, reload, stop -------------------------------------------------

    def _status(self) -> str:
        registrar = self.registrar
        if registrar.connected:
            db = f"{len(registrar.known) if registrar.known is not None else 0} rows"
        else:
            db = f"database unavailable ({registrar.problem or 'connecting'}), retrying"
        parts = []
        if self.reconciler.walking:
            parts.append(f"Scanning: {self.reconciler.counts.found} files seen")
        else:
            parts.append(f"Watching {self.watcher.watch_count()} directories")
        parts.append(f"{registrar.registered} registered since start")
        if registrar.pending:
            parts.append(f"{registrar.pending} waiting")
        if self.copying is not None and self.copying.pending:
            parts.append(f"{self.copying.pending} copies waiting")
            if self.copying.copier.problems:
                parts.append("copies held up (see the log), retrying")
        if self.missing_roots:
            parts.append("waiting for " + ", ".join(sorted(r.watch_path for r in self.missing_roots)))
        if self.unwatched:
            parts.append(f"{len(self.unwatched)} directories rescanned (watch limit)")
        return "; ".join(parts) + "; " + db

    def _on_stop(self, signum: int, frame: object) -> None:
        self.stop_requested = True

    def _on_reload(self, signum: int, frame: object) -> None:
        self.reload_requested = True

    def _reload(self) -> None:
        self.reload_requested = False
        self.notifier.reloading()
        try:
            fresh = self.reload_settings()
        except ConfigError as err:
            log.error("reload refused, the running settings stay: %s", err)
            self.notifier.ready(self._status())
            return
        log.info("reloading settings: every root is watched and reconciled afresh")
        self._drain_queue()
        self._teardown()
        self.logs.configure(fresh.log_directory, fresh.log_level)
        self._setup(fresh)
        self._start()

    def _drain_queue(self) -> None:
        """Write what is queued before letting go of the store (bounded in time)."""
        deadline = time.monotonic() + STOP_FLUSH_SECONDS
        if self.copying is not None:
            self.copying.turn()   # copies already in place get their rows now
        while self.registrar.connected and self.registrar.pending and time.monotonic() < deadline:
            self.registrar.flush()

    def _stop(self) -> None:
        self.notifier.stopping()
        log.info("stopping")
        self._drain_queue()
        self._teardown()


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except BlockingIOError:
        pass


def _read_sysctl(name: str) -> str:
    try:
        with open(f"/proc/sys/fs/inotify/{name}") as handle:
            return handle.read().strip()
    except OSError:
        return "unknown"


def run(cli_config: Optional[str], logs: Logs) -> int:
    """Start the service with the settings it can load now; reloads read them again."""
    settings = settings_module.load(cli_config, os.environ)
    logs.configure(settings.log_directory, settings.log_level)
    service = Service(settings, logs, SystemdNotifier(),
                      lambda: settings_module.load(cli_config, os.environ))
    return service.run()
