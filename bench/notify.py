"""A NOTIFY_SOCKET of our own: records every sd_notify message the daemon sends, with its time.

Each message also keeps the sender's pid (SCM_CREDENTIALS, as systemd itself reads it) and the
kernel's arrival time (SO_TIMESTAMPNS): watchdog pings are timed by the kernel, not by when this
Python thread got the GIL back, so the gaps between them measure the daemon's loop.
"""
from __future__ import annotations

import os
import re
import socket
import struct
import threading
import time
from typing import Callable

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)


class NotifyListener:
    def __init__(self, path: str) -> None:
        self.path = path
        if os.path.exists(path):
            os.unlink(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sock.bind(path)
        self.messages: list[tuple[float, str]] = []
        self.senders: list[int] = []    # the pid of each message, in step with `messages`
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                data, ancillary, _, _ = self.sock.recvmsg(65536, 256)
            except OSError:
                return
            now, pid = time.time(), 0
            for level, kind, payload in ancillary:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(payload) >= 16:
                    sec, nsec = struct.unpack("qq", payload[:16])
                    now = sec + nsec / 1e9
                elif level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("iII", payload[:12])[0]
            with self._cond:
                for line in data.decode("utf-8", "replace").splitlines():
                    self.messages.append((now, line))
                    self.senders.append(pid)
                self._cond.notify_all()

    def mark(self) -> int:
        """An index to wait from: only messages after this call count."""
        with self._cond:
            return len(self.messages)

    def wait_for(self, pattern: str, since: int, timeout: float) -> tuple[float, str] | None:
        """The first message at or after index `since` matching the regex, with its arrival time."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            i = since
            while True:
                while i < len(self.messages):
                    if rx.search(self.messages[i][1]):
                        return self.messages[i]
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)

    def ready_at(self, since: int, alive: Callable[[], bool], timeout: float) -> float | None:
        """When READY=1 arrived at or after index `since`; None if the process (`alive`)
        died first or `timeout` seconds passed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and alive():
            got = self.wait_for(r"^READY=1", since, 0.2)
            if got:
                return got[0]
        return None

    def times(self, line: str, pid: int, since: int = 0) -> list[float]:
        """Arrival times of every message from `pid` equal to `line` (e.g. "WATCHDOG=1"),
        from index `since` on."""
        with self._cond:
            return [t for (t, text), sender in zip(self.messages[since:], self.senders[since:])
                    if sender == pid and text == line]

    def close(self) -> None:
        self.sock.close()
        if os.path.exists(self.path):
            os.unlink(self.path)
