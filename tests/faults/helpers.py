"""What every fault scenario needs: the disk's truth, bursts of files, and a service run as
another user or with a kernel limit changed for a while."""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
import time
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Optional
from urllib.parse import unquote

from tests.support import daemon as daemon_module
from tests.support.media import content_for
from tests.support.table import Table

VIDEO_ENDINGS = ("mp4", "avi", "mov", "mkv")
COLUMN_CHARS = 1024


def eligible(root: Path, base: Path, base_url: str) -> list[str]:
    """Every path below `root` that must have a row: the disk's truth, by a rule written here,
    independent of the service (regular files, not links, not empty; a video ending in any
    case; nothing hidden: no name or directory below the root starting with "."; no aria2c
    control file beside it; a name that is UTF-8; path and URL within the column). The
    fixtures write complete containers, so their framing needs no second opinion here."""
    from urllib.parse import quote

    found = []
    for directory, dirs, files in os.walk(root, followlinks=False):
        below = os.path.relpath(directory, root)
        if below != "." and any(part.startswith(".") for part in below.split(os.sep)):
            continue
        for name in files:
            path = os.path.join(directory, name)
            if "." not in name or name.rsplit(".", 1)[1].lower() not in VIDEO_ENDINGS:
                continue
            if name.startswith(".") or name + ".aria2" in files:
                continue
            try:
                st = os.lstat(path)
                path.encode("utf-8")
            except (OSError, UnicodeEncodeError):
                continue
            if not stat.S_ISREG(st.st_mode) or st.st_size == 0:
                continue
            relative = os.path.relpath(path, base)
            url = base_url + "/" + "/".join(quote(s, safe="") for s in relative.split("/"))
            if len(path) <= COLUMN_CHARS and len(url) <= COLUMN_CHARS:
                found.append(path)
    return sorted(found)


def assert_mirrors_disk(tree, timeout: float = 30, env: Optional[Mapping[str, str]] = None) -> list:
    """The promise: the table holds every eligible file on disk exactly once, and nothing else."""
    table = Table(env or tree.env)
    want = eligible(tree.root, tree.base, tree.env["NGINX_BASE_URL"])
    try:
        rows = table.wait_for_paths(want, timeout=timeout)
    except AssertionError:
        have = table.paths()
        missing, extra = sorted(set(want) - set(have)), sorted(set(have) - set(want))
        raise AssertionError(f"table != disk: {len(want)} on disk, {len(have)} rows; "
                             f"missing {len(missing)} {missing[:5]}; extra {len(extra)} {extra[:5]}; "
                             f"duplicates {table.duplicates()[:5]}") from None
    assert table.duplicates() == []
    base_url = tree.env["NGINX_BASE_URL"]
    for row in rows:
        assert row.status == 1
        assert unquote(row.url[len(base_url) + 1:]) == os.path.relpath(row.path, tree.base), row
    return rows


def burst(directory: Path, count: int, prefix: str = "f", subdirs: int = 1,
          ending: str = "mp4") -> list[Path]:
    """Write `count` small video files as fast as one process can, spread over `subdirs`.
    Each holds a real container of its `ending` (made once by ffmpeg, then only copied)."""
    written = []
    payload = content_for(f"x.{ending}")
    for index in range(count):
        sub = directory / f"d{index % subdirs:03d}" if subdirs > 1 else directory
        if index < subdirs:
            sub.mkdir(parents=True, exist_ok=True)
        path = sub / f"{prefix}{index:05d}.{ending}"
        with open(path, "wb") as handle:
            handle.write(payload)
        written.append(path)
    return written


def aged_tree(root: Path, count: int, subdirs: int = 10, age: float = 3600) -> list[Path]:
    """A tree of files written long ago (no settling wait when a walk finds them)."""
    files = burst(root, count, prefix="old", subdirs=subdirs)
    then = time.time() - age
    for path in files:
        os.utime(path, (then, then))
    return files


def wait_until(predicate, timeout: float = 20, what: str = "condition", explain=lambda: "",
               interval: float = 0.05):
    """`explain`: called on a time-out, for what to add to the failure (a daemon's log)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            said = explain()
            raise AssertionError(f"timed out after {timeout} s waiting for {what}" + (f"\n{said}" if said else ""))
        time.sleep(interval)


def log_text(daemon, tree) -> str:
    """Everything the service said: its stderr and its log files."""
    parts = [daemon.log()]
    log_dir = Path(tree.env.get("LOG_BASE_DIRECTORY", ""))
    if log_dir.is_dir():
        for path in sorted(log_dir.glob("*.log")):
            with contextlib.suppress(OSError):
                parts.append(path.read_text(errors="replace"))
    return "\n".join(parts)


# --- kernel limits --------------------------------------------------------------------

@contextlib.contextmanager
def sysctl(name: str, value: int) -> Iterator[int]:
    """Set /proc/sys/<name> for the duration (as root), and always put the old value back."""
    path = Path("/proc/sys") / name.replace(".", "/")
    old = int(path.read_text())
    path.write_text(str(value))
    try:
        yield old
    finally:
        path.write_text(str(old))


def inotify_watches_of(uid: int) -> int:
    """inotify watches held by processes of `uid` (the count max_user_watches limits)."""
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            if os.stat(f"/proc/{pid}").st_uid != uid:
                continue
            for fd in os.listdir(f"/proc/{pid}/fdinfo"):
                with open(f"/proc/{pid}/fdinfo/{fd}") as handle:
                    total += sum(1 for line in handle if line.startswith("inotify wd:"))
        except OSError:
            continue
    return total


# --- running the service as another user ------------------------------------------------

NOBODY = 65534


@contextlib.contextmanager
def service_as(uid: int, gid: int, tmp: Path) -> Iterator[None]:
    """Make the `start_service` fixture start the service as another user (as root only):
    the interpreter the harness runs becomes a wrapper that drops to uid/gid first."""
    wrapper = tmp / "python-as-user"
    wrapper.write_text(f"#!/bin/sh\nexec setpriv --reuid={uid} --regid={gid} --clear-groups "
                       f"{daemon_module.PYTHON} \"$@\"\n")
    wrapper.chmod(0o755)
    old = daemon_module.PYTHON
    daemon_module.PYTHON = str(wrapper)
    try:
        yield
    finally:
        daemon_module.PYTHON = old


def package_copy(destination: Path) -> str:
    """A copy of vfs_notifier/ that any user can import (the checkout may sit below a 0700
    home directory in CI); returns the directory to put on PYTHONPATH."""
    import shutil
    target = destination / "pkg"
    shutil.copytree(daemon_module.REPO / "vfs_notifier", target / "vfs_notifier",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for directory, dirs, files in os.walk(target):
        os.chmod(directory, 0o755)
        for name in files:
            os.chmod(os.path.join(directory, name), 0o644)
    return str(target)


def open_up(paths: Iterable[Path], mode: int = 0o777) -> None:
    """Let another user into the test's directories (pytest makes them 0700)."""
    for path in paths:
        path.chmod(mode)


def mount_tmpfs(target: Path, size: str = "4m") -> bool:
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(target)],
                            capture_output=True)
    return result.returncode == 0


def umount(target: Path) -> None:
    subprocess.run(["umount", "-l", str(target)], capture_output=True)


class WatchdogPings:
    """When the service pinged the watchdog, recorded while a test listens."""

    def __init__(self, daemon) -> None:
        self.daemon = daemon
        self.times: list[float] = []
        self._seen = len(daemon.notify.messages)

    def listen(self, seconds: float) -> None:
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            self.daemon.notify.collect(0.05)
            new = self.daemon.notify.messages[self._seen:]
            self._seen += len(new)
            self.times.extend([time.monotonic()] * sum("WATCHDOG=1" in m for m in new))

    def assert_never_silent_for(self, limit: float) -> None:
        gaps = [b - a for a, b in zip(self.times, self.times[1:])]
        assert len(self.times) > 3 and max(gaps) < limit, \
            f"{len(self.times)} pings, longest gap {max(gaps, default=0):.1f} s"
