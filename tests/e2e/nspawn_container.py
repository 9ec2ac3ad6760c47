"""A booted Debian container (systemd-nspawn) to run commands in, for end-to-end tests.

The container boots a throwaway overlay of a read-only base tree (tests/support/debian_root.py),
so the cached tree is never written to and a run starts from a clean system. It shares the
host's network: a server on the host's 127.0.0.1 is reachable from inside. Commands run inside
through nsenter into the container's PID 1 namespaces. Use it as a context manager: the
container is always powered off and its overlay removed on the way out.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Optional, Sequence, Union

ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "HOME": "/root",
    "TERM": "dumb",
    "SYSTEMD_PAGER": "",
    "SYSTEMD_COLORS": "0",
    "DEBIAN_FRONTEND": "noninteractive",
}


class ContainerError(AssertionError):
    """A command in the container failed; carries its output (an AssertionError, so pytest
    shows it as a test failure with the output)."""


class Container:
    def __init__(self, base: Path, name: str = "vfs-e2e", *, binds: Sequence[str] = (),
                 workdir: Optional[Path] = None) -> None:
        self.base = base
        self.name = name
        self.binds = list(binds)
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="vfs-nspawn-"))
        self.root = self.workdir / "root"
        self.console_log = self.workdir / "console.log"
        self._overlay = False
        self._proc: Optional[subprocess.Popen] = None
        self.pid: Optional[int] = None  # the container's PID 1 (systemd), as the host sees it

    # -- life cycle -------------------------------------------------------------------------
    def prepare(self) -> Path:
        """Make the writable root (overlay on the base tree, else a copy); returns it.
        Files written into it now are there when the container boots."""
        upper, work = self.workdir / "upper", self.workdir / "work"
        for d in (self.root, upper, work):
            d.mkdir(parents=True, exist_ok=True)
        mount = subprocess.run(
            ["mount", "-t", "overlay", "overlay", "-o",
             f"lowerdir={self.base},upperdir={upper},workdir={work}", str(self.root)],
            capture_output=True, text=True, timeout=30)
        if mount.returncode == 0:
            self._overlay = True
        else:  # no overlayfs here: a full copy (a few seconds)
            subprocess.run(["cp", "-a", "--reflink=auto", f"{self.base}/.", str(self.root)],
                           check=True, timeout=300)
        return self.root

    def boot(self, timeout: float = 60) -> None:
        if not self.root.is_dir() or not any(self.root.iterdir()):
            self.prepare()
        cmd = ["systemd-nspawn", "--register=no", "--keep-unit", "--quiet", "-D", str(self.root),
               "--boot", f"--machine={self.name}", "--console=read-only"]
        cmd += [f"--bind={b}" for b in self.binds]
        with open(self.console_log, "wb") as log:
            self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                          stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while self.pid is None:
            if self._proc.poll() is not None:
                raise ContainerError(f"systemd-nspawn exited {self._proc.returncode}:\n"
                                     f"{self.console()}")
            if time.monotonic() > deadline:
                raise ContainerError(f"no systemd in the container after {timeout} s:\n"
                                     f"{self.console()}")
            self.pid = self._find_init()
            time.sleep(0.1)
        state = ""
        while time.monotonic() < deadline:
            state = self.run(["systemctl", "is-system-running"], check=False, timeout=10).stdout.strip()
            if state in ("running", "degraded"):
                break
            time.sleep(0.2)
        else:
            raise ContainerError(f"system state {state!r} after {timeout} s:\n{self.console()}")
        if state == "degraded":  # not fatal, but say which units failed
            failed = self.run(["systemctl", "--failed", "--no-legend"], check=False).stdout
            print(f"container booted degraded; failed units:\n{failed}")

    def poweroff(self, timeout: float = 30) -> None:
        """Shut the container down (cleanly if it lets us), then remove the overlay."""
        try:
            if self._proc is not None and self._proc.poll() is None:
                if self.pid is not None:
                    subprocess.run(["nsenter", "-t", str(self.pid), "-a", "systemctl", "poweroff",
                                    "--no-block"], capture_output=True, timeout=10, env=ENV)
                try:
                    self._proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    # nspawn turns SIGTERM into a shutdown request; SIGKILL ends it all.
                    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
                        os.killpg(self._proc.pid, sig)
                        try:
                            self._proc.wait(timeout=wait)
                            break
                        except subprocess.TimeoutExpired:
                            continue
        finally:
            self._proc = None
            self.pid = None
            if self._overlay:
                if subprocess.run(["umount", str(self.root)], capture_output=True,
                                  timeout=30).returncode != 0:
                    subprocess.run(["umount", "-l", str(self.root)], capture_output=True, timeout=30)
                self._overlay = False
            if self._own_workdir:
                shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> "Container":
        return self

    def __exit__(self, *exc: object) -> None:
        self.poweroff()

    # -- inside -----------------------------------------------------------------------------
    def run(self, cmd: Union[str, Sequence[str]], *, check: bool = True, timeout: float = 60,
            input: Optional[str] = None) -> subprocess.CompletedProcess:
        """Run a command inside (a string goes through sh -c). check: fail on a non-zero exit."""
        assert self.pid is not None, "container not booted"
        argv = ["sh", "-c", cmd] if isinstance(cmd, str) else list(cmd)
        try:
            proc = subprocess.run(
                ["nsenter", "-t", str(self.pid), "-a", "--", "env", "-i",
                 *[f"{k}={v}" for k, v in ENV.items()], *argv],
                input=input, capture_output=True, text=True, timeout=timeout,
                stdin=None if input is not None else subprocess.DEVNULL)
        except subprocess.TimeoutExpired as e:
            raise ContainerError(f"timed out after {timeout} s: {argv}\n"
                                 f"stdout: {e.stdout!r}\nstderr: {e.stderr!r}") from None
        if check and proc.returncode != 0:
            raise ContainerError(f"exit {proc.returncode}: {argv}\n"
                                 f"stdout:\n{proc.stdout[-6000:]}\nstderr:\n{proc.stderr[-6000:]}")
        return proc

    def out(self, cmd: Union[str, Sequence[str]], **kw: object) -> str:
        return self.run(cmd, **kw).stdout  # type: ignore[arg-type]

    def path(self, inside: str) -> Path:
        """Where a path inside the container is on the host (through the overlay)."""
        return self.root / inside.lstrip("/")

    def console(self, tail: int = 4000) -> str:
        try:
            return self.console_log.read_bytes()[-tail:].decode(errors="replace")
        except OSError:
            return ""

    def _find_init(self) -> Optional[int]:
        """The container's systemd: nspawn's child that is PID 1 in its own PID namespace."""
        assert self._proc is not None
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/status") as f:
                    fields = dict(line.split(":", 1) for line in f if ":" in line)
            except OSError:
                continue
            if (fields.get("PPid", "").strip() == str(self._proc.pid)
                    and fields.get("NSpid", "").split()[-1:] == ["1"]):
                return int(entry)
        return None
