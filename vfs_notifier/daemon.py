"""The loop: from the kernel's events to rows, until SIGTERM/SIGINT; SIGHUP reloads.

Each pass waits for events (or for the next deadline), lets the service do one bounded
turn, runs housekeeping when it is due, and tells systemd how things stand. Signals only
set flags (through a wake-up pipe), so that every change of state happens here, between
turns.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import time
from typing import Callable, Optional

from . import settings as settings_module
from .housekeeping import Housekeeping
from .logs import Logs
from .service import Service
from .settings import ConfigError, Settings
from .status import describe
from .systemd_notify import SystemdNotifier

log = logging.getLogger("vfs_notifier")

# While a write's commit is under way the loop looks again this soon (not at once: that
# would spin a core the database needs).
COMMIT_POLL_SECONDS = 0.002


class Loop:
    def __init__(self, service: Service, notifier: SystemdNotifier,
                 reload_settings: Callable[[], Settings]) -> None:
        self.service = service
        self.notifier = notifier
        self.reload_settings = reload_settings
        self.housekeeping = Housekeeping(service, time.monotonic())
        self.stop_requested = False
        self.reload_requested = False
        self.ready_sent = False

    def run(self) -> int:
        wake_read, wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_write)
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_reload)
        self.service.start()
        poller = select.poll()
        poller.register(wake_read, select.POLLIN)
        watch_fd = self.service.watcher.fileno()
        poller.register(watch_fd, select.POLLIN)
        copy_fd = self._register_copy_fd(poller)
        try:
            while not self.stop_requested:
                for fd, _ in poller.poll(self._timeout_ms()):
                    if fd == wake_read or fd == copy_fd:
                        _drain(fd)
                if self.reload_requested:
                    poller.unregister(watch_fd)
                    if copy_fd is not None:
                        poller.unregister(copy_fd)
                    self._reload()
                    watch_fd = self.service.watcher.fileno()
                    poller.register(watch_fd, select.POLLIN)
                    copy_fd = self._register_copy_fd(poller)
                self._pass()
            self._stop()
        finally:
            signal.set_wakeup_fd(-1)
            os.close(wake_read)
            os.close(wake_write)
        return 0

    def _register_copy_fd(self, poller: select.poll) -> Optional[int]:
        """Copy mode: a finished copy wakes the loop, so its row goes in at once."""
        copying = self.service.copying
        if copying is None:
            return None
        poller.register(copying.fileno(), select.POLLIN)
        return copying.fileno()

    def _pass(self) -> None:
        service = self.service
        service.turn()
        # Ready once every watch is in place; or at once while the database is away: walks
        # wait for it (and place their watches then), and STATUS says what is wrong.
        if not self.ready_sent and (not service.gate.walking or not service.registrar.connected):
            self.ready_sent = True
            self.notifier.ready(describe(service))
            log.info("watching %d directories below %s", service.watcher.watch_count(),
                     ", ".join(r.path for r in service.settings.roots))
        self.housekeeping.warn_watch_limit(service)
        self.housekeeping.run_if_due(service, time.monotonic())
        self.notifier.ping_if_due()
        if self.notifier.status_due:
            # Built at most once a second: it counts the held files (100,000 settling at a
            # cold start with the framing check off), which every pass cannot afford.
            self.notifier.status(describe(service), starting=not self.ready_sent)
        service.logs.flush()

    def _timeout_ms(self) -> int:
        service = self.service
        if self.stop_requested or self.reload_requested or service.busy:
            return 0
        now = time.monotonic()
        deadlines = [self.housekeeping.due_at()]
        judged_next = service.judge.next_due()
        if judged_next is not None:
            deadlines.append(judged_next)
        if service.heap.due is not None:
            deadlines.append(service.heap.due)
        registrar = service.registrar
        if not registrar.connected:
            deadlines.append(registrar.retry_at)
        if registrar.committing:
            deadlines.append(now + COMMIT_POLL_SECONDS)
        watchdog = self.notifier.watchdog_due_in()
        if watchdog is not None:
            deadlines.append(now + watchdog)
        if not self.ready_sent:
            deadlines.append(now + 1.0)   # STATUS while starting extends the start timeout
        return max(0, int((min(deadlines) - now) * 1000) + 1)

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
            self.notifier.ready(describe(self.service))
            return
        log.info("reloading settings: every root is watched and reconciled afresh")
        old = self.service
        old.drain()
        old.close()
        old.logs.configure(fresh.log_directory, fresh.log_level)
        self.service = Service(fresh, old.logs)
        self.housekeeping = Housekeeping(self.service, time.monotonic())
        self.service.start()
        self.ready_sent = False

    def _stop(self) -> None:
        self.notifier.stopping()
        log.info("stopping")
        self.service.drain()
        self.service.close()


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except BlockingIOError:
        pass


def run(cli_config: str | None, logs: Logs) -> int:
    """Start the service with the settings it can load now; reloads read them again."""
    settings = settings_module.load(cli_config, os.environ)
    logs.configure(settings.log_directory, settings.log_level)
    service = Service(settings, logs)
    loop = Loop(service, SystemdNotifier(), lambda: settings_module.load(cli_config, os.environ))
    return loop.run()
