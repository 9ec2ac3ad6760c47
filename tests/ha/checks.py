"""What every high-availability scenario asserts: one row per file, nothing doubled or lost,
and one holder per root, named by the lease table and by the standbys' STATUS."""

from __future__ import annotations

import collections
import time
from pathlib import Path
from typing import Iterable, Sequence

from tests.faults.helpers import wait_until
from tests.ha.backends import LEASE, POLL, Instances, Servers, holder_pid, standing_by
from tests.support.daemon import Daemon
from tests.support.media import write_video

VIDEO_KINDS = ("mp4", "mkv", "mov", "avi")


def write_videos(directory: Path, count: int, prefix: str, pause: float = 0.0) -> list[Path]:
    """`count` real video files (containers made by ffmpeg), in turn mp4, mkv, mov, avi."""
    written = []
    for index in range(count):
        written.append(write_video(directory / f"{prefix}{index:03d}.{VIDEO_KINDS[index % 4]}"))
        if pause:
            time.sleep(pause)
    return written


def one_row_each(servers: Servers, instances: Instances, files: Iterable[Path], timeout: float = 30,
                 hold: float = 1.0) -> None:
    """Every file gets its row within `timeout`, and `hold` seconds later the table still holds
    each exactly once and nothing else (a double written late, by a rescan or a stale holder,
    shows up in that time)."""
    want = sorted(str(p) for p in files)
    deadline = time.monotonic() + timeout
    while set(want) - set(servers.table.paths()) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(hold)
    have = servers.table.paths()
    counts = collections.Counter(have)
    doubled = sorted(p for p, n in counts.items() if n > 1)
    missing = sorted(set(want) - set(have))
    extra = sorted(set(have) - set(want))
    assert not (doubled or missing or extra), (
        f"on {servers}: {len(want)} files, {len(have)} rows: {len(doubled)} doubled {doubled[:3]}, "
        f"{len(missing)} missing {missing[:3]}, {len(extra)} unexpected {extra[:3]}\n{instances.logs()}")


def holder_of(servers: Servers, root: Path) -> tuple[int, int]:
    """(pid, token) of the live lease on `root`; AssertionError if there is none."""
    rows = [r for r in servers.leases() if r[0] == str(root)]
    assert len(rows) == 1, f"on {servers}: lease rows for {root}: {servers.leases()}"
    _, holder, token, live = rows[0]
    assert live, f"on {servers}: the lease on {root} has lapsed: {rows[0]}"
    pid = holder_pid(holder)
    assert pid is not None, f"on {servers}: the lease's holder names no pid: {holder!r}"
    return pid, token


def wait_holder(servers: Servers, instances: Instances, root: Path, among: Sequence[Daemon],
                timeout: float = 15) -> Daemon:
    """The instance (one of `among`) the lease on `root` names, once it names one of them."""
    pids = {d.pid: d for d in among}

    def named():
        try:
            return pids.get(holder_of(servers, root)[0])
        except AssertionError:
            return None
    return wait_until(named, timeout, f"a live lease on {root} held by one of {sorted(pids)} on {servers}",
                      lambda: f"leases {servers.leases()}\n{instances.logs()}")


def exactly_one_writer(servers: Servers, instances: Instances, root: Path, among: Sequence[Daemon],
                       timeout: float = 15) -> Daemon:
    """One of `among` holds `root`'s lease; every other one says it is standing by, and the
    holder does not. Returns the holder."""
    holder = wait_holder(servers, instances, root, among, timeout)
    others = [d for d in among if d is not holder]
    wait_until(lambda: all(standing_by(d) for d in others) and not standing_by(holder), timeout,
               f"{len(others)} instance(s) standing by and the holder (pid {holder.pid}) writing on {servers}",
               instances.logs)
    return holder


def report_seconds(capsys, servers: Servers, what: str, seconds: float, lease: float = LEASE) -> None:
    """A measured time, printed in the test run's output whatever pytest captures."""
    with capsys.disabled():
        print(f"\n[ha] {servers}: {what} {seconds:.2f} s (lease {lease:g} s, poll {POLL:g} s)")


def holder_and_standby(tree, servers: Servers, instances: Instances, files: int) -> tuple[Daemon, Daemon, list[Path]]:
    """Two instances on `tree.root` through two servers (nodes 0 and 1), and `files` videos
    registered once: (the holder, the standby, the files)."""
    first = instances.start(via=0)
    second = instances.start(via=1)
    written = write_videos(tree.root, files, "a")
    one_row_each(servers, instances, written, hold=0.5)
    holder = exactly_one_writer(servers, instances, tree.root, [first, second])
    return holder, (second if holder is first else first), written
