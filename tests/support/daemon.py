"""The real service as a child process, with a real NOTIFY_SOCKET the test reads."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Mapping, Optional

REPO = Path(__file__).resolve().parents[2]
PYTHON = os.environ.get("VFS_TEST_PYTHON", "/usr/bin/python3")


class NotifySocket:
    """A datagram socket bound where the service's NOTIFY_SOCKET points.

    A thread reads it all the time, as systemd does: a full socket would block the service.
    """

    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.messages: list[str] = []
        self._closed = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while not self._closed:
            try:
                self.messages.append(self.sock.recv(65536).decode())
            except socket.timeout:
                continue
            except OSError:
                return

    def collect(self, timeout: float = 0.0) -> list[str]:
        if timeout > 0:
            time.sleep(timeout)
        return self.messages

    def wait_for(self, needle: str, timeout: float = 30, after: int = 0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.collect(0.05)
            for message in self.messages[after:]:
                if needle in message:
                    return message
        raise AssertionError(f"no {needle!r} from the service in {timeout} s; got {self.messages[-5:]}")

    def close(self) -> None:
        self._closed = True
        self._reader.join(timeout=2)
        self.sock.close()


class Daemon:
    def __init__(self, workdir: Path, env: Mapping[str, str], args: tuple[str, ...] = ("run",)) -> None:
        self.workdir = workdir
        self.env = dict(env)
        self.args = args
        self.proc: Optional[subprocess.Popen] = None
        self.notify: Optional[NotifySocket] = None
        self.output = workdir / f"daemon-{time.monotonic_ns()}.log"

    def start(self, wait_ready: bool = True, timeout: float = 60) -> "Daemon":
        self.notify = NotifySocket(self.workdir / f"notify-{time.monotonic_ns()}.sock")
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(REPO),
               "NOTIFY_SOCKET": self.notify.path, **self.env}
        with open(self.output, "ab") as out:
            self.proc = subprocess.Popen([PYTHON, "-m", "vfs_notifier", *self.args], env=env,
                                         stdout=out, stderr=subprocess.STDOUT, cwd=self.workdir)
        if wait_ready:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 60) -> str:
        assert self.notify is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.notify.collect(0.05)
            if any("READY=1" in m for m in self.notify.messages):
                return next(m for m in self.notify.messages if "READY=1" in m)
            if self.proc and self.proc.poll() is not None:
                raise AssertionError(f"service exited {self.proc.returncode} before READY:\n{self.log()}")
        raise AssertionError(f"service not READY in {timeout} s:\n{self.log()}")

    def log(self) -> str:
        return self.output.read_text(errors="replace") if self.output.exists() else ""

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM and wait: the exit code."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self._close()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self._close()

    def wait_exit(self, timeout: float = 30) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def _close(self) -> None:
        if self.notify is not None:
            self.notify.close()
            self.notify = None


def run_cli(*args: str, env: Mapping[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    """Run `python3 -m vfs_notifier ARGS` to completion; stdout and stderr as text."""
    full_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(REPO), **env}
    return subprocess.run([PYTHON, "-m", "vfs_notifier", *args], env=full_env, capture_output=True,
                          text=True, timeout=timeout, cwd=str(REPO))
