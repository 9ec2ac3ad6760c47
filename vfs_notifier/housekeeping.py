"""Housekeeping: what the service checks every `poll_interval`, never delaying an event.

Leases on the roots (renewed; taking over from an instance that stopped, letting go of one lost),
roots that appeared, roots that are another directory now (a file system mounted on
them), directories the watch limit left unwatched, periodic rescans, the log file.
"""

from __future__ import annotations

import logging
import os

from .service import Service, read_sysctl

log = logging.getLogger("vfs_notifier")


class Housekeeping:
    def __init__(self, service: Service, now: float) -> None:
        settings = service.settings
        self.next_round = now + settings.poll_interval
        self.next_rescan = now + settings.rescan_interval if settings.rescan_interval else None
        self.limit_warned = False

    def due_at(self) -> float:
        return self.next_round

    def run_if_due(self, service: Service, now: float) -> None:
        if now < self.next_round:
            return
        settings = service.settings
        self.next_round = now + settings.poll_interval
        service.logs.retry_file()
        self._leases(service)
        self._roots(service)
        self._watch_limit(service)
        if self.next_rescan is not None and now >= self.next_rescan:
            self.next_rescan = now + settings.rescan_interval
            service.gate.reconcile_all()

    def _leases(self, service: Service) -> None:
        registrar = service.registrar
        if not registrar.connected:
            return
        registrar.renew_leases()
        # Every round, not only on a change the renewal saw: a write's fence may have found
        # a root lost since the last one.
        service.settle_roots()

    def _roots(self, service: Service) -> None:
        for root in list(service.missing):
            if os.path.isdir(root.path) and (service.registrar.may_write(root.path)
                                                   or not service.ever_connected):
                service.adopt(root)
        for root, identity in list(service.root_ids.items()):
            # A file system mounted on a root (or a root replaced) sends no event to the
            # watch on what was there before: compare what the path is now.
            try:
                st = os.stat(root.path)
            except OSError:
                continue
            if root in service.active and (st.st_dev, st.st_ino) != identity:
                log.info("watched directory %s is another directory now (mounted or replaced): "
                         "watching and reconciling it afresh", root.path)
                service.watcher.unwatch_tree(root.path)
                service.active.discard(root)
                service.adopt(root)

    def warn_watch_limit(self, service: Service) -> None:
        """Said once, in the pass that met the limit (not at the next round)."""
        if self.limit_warned or not service.watcher.refused:
            return
        self.limit_warned = True
        log.warning("inotify watch limit reached (sysctl fs.inotify.max_user_watches, now %s): "
                    "directories without a watch are rescanned every %g s instead; raise it, "
                    "e.g. sysctl -w fs.inotify.max_user_watches=1048576",
                    read_sysctl("max_user_watches"), service.settings.poll_interval)

    def _watch_limit(self, service: Service) -> None:
        watcher = service.watcher
        refused = watcher.refused
        if not refused:
            return
        for directory in [d for d in refused if not os.path.isdir(d)]:
            refused.discard(directory)   # deleted ones need nothing
        if refused and not service.gate.walking:
            # Directories inotify could not watch are covered by walking again (which
            # also retries their watches).
            service.gate.reconcile_all()
