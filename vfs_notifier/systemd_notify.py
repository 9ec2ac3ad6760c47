"""Telling systemd how the service is doing: READY, STATUS, WATCHDOG, RELOADING, STOPPING.

Through python-systemd's `systemd.daemon.notify`; without NOTIFY_SOCKET it is all silent.
"""

from __future__ import annotations

import os
import time
from typing import Callable, Mapping, Optional

try:
    from systemd import daemon as _daemon
except ImportError:  # python-systemd absent (a pip install without libsystemd): stay silent
    _daemon = None

STATUS_INTERVAL = 1.0
START_EXTENSION = 30.0  # seconds granted per status message while starting


class SystemdNotifier:
    def __init__(self, env: Mapping[str, str] = os.environ,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.enabled = bool(env.get("NOTIFY_SOCKET")) and _daemon is not None
        self.clock = clock
        self.watchdog_interval: Optional[float] = None
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        if self.enabled and usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            # Half the timeout, as sd_watchdog_enabled(3) advises.
            self.watchdog_interval = int(usec) / 2e6
        self._next_ping = 0.0
        self._next_status = 0.0
        self._last_status = ""

    def _send(self, message: str) -> None:
        if self.enabled:
            _daemon.notify(message)

    def ready(self, status: str) -> None:
        self._last_status = status
        self._send(f"READY=1\nSTATUS={status}")

    @property
    def status_due(self) -> bool:
        """Whether status() may send now: the caller need not build the line otherwise."""
        return self.clock() >= self._next_status

    def status(self, status: str, starting: bool = False) -> None:
        """Say what the service is doing; at most once a second, since counts change every turn.

        While `starting` (the first walk of a large tree, before READY=1), each message also
        extends systemd's start timeout, so that millions of files do not hit TimeoutStartSec.
        """
        now = self.clock()
        if (status != self._last_status or starting) and now >= self._next_status:
            self._last_status, self._next_status = status, now + STATUS_INTERVAL
            extend = f"\nEXTEND_TIMEOUT_USEC={int(START_EXTENSION * 1e6)}" if starting else ""
            self._send(f"STATUS={status}{extend}")

    def reloading(self) -> None:
        # systemd >= 253 wants MONOTONIC_USEC with RELOADING=1; older ones ignore it.
        self._send(f"RELOADING=1\nMONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")

    def stopping(self) -> None:
        self._send("STOPPING=1\nSTATUS=Stopping")

    def watchdog_due_in(self) -> Optional[float]:
        """Seconds until the next watchdog ping is due (None: no watchdog)."""
        if self.watchdog_interval is None:
            return None
        return max(0.0, self._next_ping - self.clock())

    def ping_if_due(self) -> None:
        if self.watchdog_interval is not None and self.clock() >= self._next_ping:
            self._send("WATCHDOG=1")
            self._next_ping = self.clock() + self.watchdog_interval
