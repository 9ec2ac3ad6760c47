"""A NOTIFY_SOCKET of our own: records every sd_notify message the daemon sends, with its time."""
from __future__ import annotations

import os
import re
import socket
import threading
import time


class NotifyListener:
    def __init__(self, path: str) -> None:
        self.path = path
        if os.path.exists(path):
            os.unlink(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.messages: list[tuple[float, str]] = []
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            now = time.time()
            with self._cond:
                for line in data.decode("utf-8", "replace").splitlines():
                    self.messages.append((now, line))
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

    def close(self) -> None:
        self.sock.close()
        if os.path.exists(self.path):
            os.unlink(self.path)
