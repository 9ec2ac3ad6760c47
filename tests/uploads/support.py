"""What every upload case needs: tools started and interrupted for real, the table watched
the whole time, and the two promises checked ("no row while unfinished", "exactly one row
once finished").
"""

from __future__ import annotations

import filecmp
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

import pytest

from tests.support.daemon import Daemon
from tests.support.table import Table

# The service today settles a walked file for 2 s (reconciler.SETTLE_SECONDS) and registers
# a closed one at once. "No row while unfinished" is checked after this long, so that the old
# code would certainly have registered the file by then; longer would only slow the suite.
SETTLE = 2.0
HOLD_CHECK = SETTLE + 1.5
# Debian's interpreter, for the small writer processes some cases run.
PYTHON_FOR_TOOLS = "/usr/bin/python3"
# How long a finished file may take to get its row: generous, the machine is shared.
ROW_TIMEOUT = 10.0


def need(*tools: str) -> None:
    """Skip the test, with a one-line reason, when a tool is not installed."""
    packages = {"aria2c": "aria2", "scp": "openssh-client", "sftp": "openssh-client",
                "ssh": "openssh-client", "sshd": "openssh-server"}
    for tool in tools:
        if not shutil.which(tool):
            pytest.skip(f"{tool} not installed (Debian package {packages.get(tool, tool)})")


class Processes:
    """Tools started in their own session, so that a tool and its helpers (rsync's receiver,
    scp's ssh) can be waited for and cleaned up together."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.started: list[subprocess.Popen] = []

    def spawn(self, command: Sequence[str], **kwargs) -> subprocess.Popen:
        log = self.logs / f"{Path(command[0]).name}-{time.monotonic_ns()}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(list(command), stdout=out, stderr=subprocess.STDOUT,
                                    stdin=kwargs.pop("stdin", subprocess.DEVNULL),
                                    start_new_session=True, **kwargs)
        proc.log_path = log   # type: ignore[attr-defined]
        self.started.append(proc)
        return proc

    def run(self, command: Sequence[str], timeout: float = 60, **kwargs) -> subprocess.Popen:
        """Run a tool to completion; it must succeed."""
        proc = self.spawn(command, **kwargs)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.drain(proc, grace=0)
            raise AssertionError(f"{command[0]} did not finish in {timeout} s: {output(proc)}")
        assert code == 0, f"{' '.join(map(str, command))} exited {code}: {output(proc)}"
        self.drain(proc)
        return proc

    def interrupt(self, proc: subprocess.Popen, progress: Callable[[], int], min_bytes: int,
                  timeout: float = 30) -> int:
        """SIGKILL `proc` once `progress()` reaches `min_bytes`, then wait for its helpers to
        end. Fails if the tool finished before it could be interrupted (then the throttle
        did not work and the case would prove nothing). Returns the progress seen at the kill."""
        deadline = time.monotonic() + timeout
        while True:
            seen = progress()
            if seen >= min_bytes:
                break
            if proc.poll() is not None:
                raise AssertionError(f"{proc.args[0]} ended ({proc.returncode}) before it could be "
                                     f"interrupted ({seen} bytes): {output(proc)}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{proc.args[0]} wrote only {seen} bytes in {timeout} s: {output(proc)}")
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        self.drain(proc)
        return seen

    def drain(self, proc: subprocess.Popen, grace: float = 10) -> None:
        """Wait until nothing is left of the tool's session (its helpers react to the kill by
        themselves: rsync's receiver keeps the partial file); SIGKILL what stays longer."""
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if not _session_alive(proc.pid):
                return
            time.sleep(0.02)
        _kill_session(proc.pid)

    def cleanup(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
            _kill_session(proc.pid)


def _session_alive(sid: int) -> bool:
    """Any live (not zombie) process in session `sid`?"""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":   # fields: state ppid pgrp session
            return True
    return False


def _kill_session(sid: int) -> None:
    try:
        os.killpg(sid, signal.SIGKILL)   # the session leader's group: start_new_session made it
    except (ProcessLookupError, PermissionError):
        pass


def output(proc: subprocess.Popen) -> str:
    path = getattr(proc, "log_path", None)
    return path.read_text(errors="replace")[-1500:] if path and path.exists() else ""


def bytes_below(directory: Path) -> int:
    """Bytes in every regular file below `directory`, hidden and temporary ones included."""
    total = 0
    for folder, _, files in os.walk(directory):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except OSError:
                pass
    return total


def files_below(directory: Path) -> dict[str, int]:
    """Every file below `directory` with its size (for messages and checks)."""
    found = {}
    for folder, _, files in os.walk(directory):
        for name in files:
            path = os.path.join(folder, name)
            try:
                found[path] = os.lstat(path).st_size
            except OSError:
                pass
    return found


class RowHistory:
    """Reads the table over and over in a thread and remembers every path it ever held and
    when it first did: a row that appears and vanishes again between two checks of a test
    (rsync --delay-updates' `.~tmp~/x.mp4`) is still caught."""

    def __init__(self, table: Table, interval: float = 0.1) -> None:
        self.table = table
        self.interval = interval
        self.first_seen: dict[str, float] = {}
        self.ids_seen: dict[str, int] = {}   # path -> most rows it had at one time
        # "No row while unfinished" failures of a case that goes on to finish its upload: kept
        # so the finishing half is still exercised, and reported by assert_one_row.
        self.violations: list[str] = []
        self.read_errors: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._poll, name="row-history", daemon=True)

    def start(self) -> "RowHistory":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                self.sample()
            except Exception as err:   # noqa: BLE001 - a failed read must not end the watch
                self.read_errors.append(repr(err))
            self._stop.wait(self.interval)

    def check_watching(self) -> None:
        """The history is only worth something if the table was really read all along."""
        assert self._thread.is_alive(), "the row history stopped reading the table"
        assert len(self.read_errors) < 20, f"the table could not be read: {self.read_errors[-3:]}"

    def sample(self) -> list[str]:
        paths = self.table.paths()
        now = time.monotonic()
        with self._lock:
            for path in paths:
                self.first_seen.setdefault(path, now)
                self.ids_seen[path] = max(self.ids_seen.get(path, 0), paths.count(path))
        return paths

    def seen(self) -> set[str]:
        self.sample()
        with self._lock:
            return set(self.first_seen)


def assert_no_row(history: RowHistory, directory: Path, what: str, wait: float = HOLD_CHECK,
                  allowed: Iterable[str] = (), resumed_later: bool = False) -> None:
    """Wait as long as the old code needed to register a file, then: no row ever appeared
    (other than `allowed` ones) while the upload was unfinished. With `resumed_later`, a
    failure is reported by the assert_one_row that follows, after the resume was tried too."""
    time.sleep(wait)
    history.check_watching()
    unexpected = sorted(history.seen() - {str(p) for p in allowed})
    if unexpected:
        problem = (f"{what}: rows appeared for an unfinished upload: {unexpected}; "
                   f"on disk: {files_below(directory)}")
        if not resumed_later:
            raise AssertionError(problem)
        history.violations.append(problem)


def assert_one_row(history: RowHistory, path: Path, source: Optional[Path] = None,
                   others: Iterable[str] = (), timeout: float = ROW_TIMEOUT) -> None:
    """The finished file has exactly one row, and no other path ever had one (but `others`);
    with `source`, the file really is complete: its bytes are the source's. A "no row while
    unfinished" failure kept by assert_no_row is reported here, with this half's outcome."""
    try:
        _one_row(history, path, source, others, timeout)
    except AssertionError as err:
        if not history.violations:
            raise
        raise AssertionError("; ".join(history.violations) + f"; and once finished: {err}") from None
    if history.violations:
        raise AssertionError("; ".join(history.violations) + " (once finished, it had exactly one row)")


def _one_row(history: RowHistory, path: Path, source: Optional[Path], others: Iterable[str],
             timeout: float) -> None:
    if source is not None:
        assert path.exists(), f"{path} missing after the transfer finished"
        assert filecmp.cmp(source, path, shallow=False), \
            f"{path} ({path.stat().st_size} bytes) differs from {source} ({source.stat().st_size} bytes)"
    want = sorted({str(path), *map(str, others)})
    history.table.wait_for_paths(want, timeout=timeout)
    time.sleep(0.3)   # a second row would come from the same turn or the next one
    history.check_watching()
    rows = history.table.rows()
    assert sorted(r.path for r in rows) == want, f"expected {want}, table has {[r.path for r in rows]}"
    assert all(r.status == 1 for r in rows), rows
    assert history.seen() == set(want), f"other paths had rows on the way: {sorted(history.seen() - set(want))}"
    assert all(history.ids_seen[p] == 1 for p in want), f"a path had two rows at once: {history.ids_seen}"


def assert_interrupted(partial: Path, source: Path) -> None:
    """The tool really stopped part way: the file it left is shorter than the source (and not
    empty), its bytes a prefix of the source's."""
    assert partial.exists(), f"no partial file {partial} was left"
    size, full = partial.stat().st_size, source.stat().st_size
    assert 0 < size < full, f"{partial} has {size} of {full} bytes: not an interrupted transfer"
    with open(partial, "rb") as a, open(source, "rb") as b:
        assert a.read(size) == b.read(size), f"{partial} is not a prefix of {source}"


def assert_preallocated(partial: Path, source: Path) -> None:
    """aria2c's interrupted file: the full length already, zero-filled where it never wrote."""
    assert partial.exists(), f"no partial file {partial} was left"
    size, full = partial.stat().st_size, source.stat().st_size
    assert size == full, f"{partial} has {size} bytes, expected the preallocated {full}"
    with open(partial, "rb") as handle:
        handle.seek(-65536, os.SEEK_END)
        tail = handle.read()
    assert tail == b"\0" * len(tail), f"{partial} ends in data: the download was not interrupted"
    assert not filecmp.cmp(source, partial, shallow=False)


# Cases run on SQLite; a representative subset also on MariaDB, by parametrizing `backend`
# (which overrides the conftest fixture of that name): @BOTH_STORES.
BOTH_STORES = pytest.mark.parametrize("backend", ["sqlite", "mysql"])
needs = pytest.mark.needs


def wait_ready_again(daemon: Daemon, after: int, timeout: float = 30) -> None:
    """After SIGHUP: READY=1 again, sent after the reload's RELOADING=1."""
    assert daemon.notify is not None
    daemon.notify.wait_for("RELOADING=1", timeout=timeout, after=after)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        messages = daemon.notify.collect(0.05)
        reload_at = next(i for i in range(after, len(messages)) if "RELOADING=1" in messages[i])
        if any("READY=1" in m for m in messages[reload_at + 1:]):
            return
    raise AssertionError(f"no READY=1 after the reload: {daemon.notify.messages[-5:]}")
