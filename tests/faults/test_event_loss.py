"""The kernel drops events: a burst larger than the kernel's inotify queue
(fs.inotify.max_queued_events) overflows it while the service is paused. The service says so
and walks every root again: every file is still registered, once.

The first test overflows the queue at its default size (16,384 on Debian), so it needs no
capability and runs anywhere, as root or not, in a container too. The second lowers the limit
to a few events, which only root on a host may do (/proc/sys is read-only in a container)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.faults.helpers import assert_mirrors_disk, burst, sysctl
from tests.support.capabilities import can_write_sysctl

_TINY_QUEUE = can_write_sysctl("fs.inotify.max_queued_events")

QUEUE_LIMIT = Path("/proc/sys/fs/inotify/max_queued_events")
# Writing this many files takes about 7 s here; a queue larger than that is an odd machine.
MOST_FILES = 100_000


def test_queue_overflow_during_a_burst_loses_nothing(db_tree, start_service):
    tree = db_tree
    queue = int(QUEUE_LIMIT.read_text())
    # Each new file queues at least two events (IN_CREATE, IN_CLOSE_WRITE), never merged since
    # their names differ: as many files as the queue has room for events overflow it twice over.
    files = queue + 1000
    if files > MOST_FILES:
        pytest.skip(f"fs.inotify.max_queued_events is {queue} here: overflowing it takes more "
                    f"than {MOST_FILES} files; as root: sysctl fs.inotify.max_queued_events=16384")
    daemon = start_service()
    burst(tree.root / "early", 50)
    for index in range(20):              # watched before the pause: their events overflow
        (tree.root / "stopped" / f"d{index:03d}").mkdir(parents=True)
    assert_mirrors_disk(tree)
    time.sleep(0.3)
    daemon.signal(signal.SIGSTOP)        # the service reads nothing while the kernel queues
    try:
        burst(tree.root / "stopped", files, subdirs=20)
        (tree.root / "new-dir" / "deeper").mkdir(parents=True)
        burst(tree.root / "new-dir" / "deeper", 30)
        os.rename(tree.root / "early", tree.root / "early-renamed")
        (tree.root / "early-renamed" / "f00003.mp4").unlink()
    finally:
        daemon.signal(signal.SIGCONT)
    rows = assert_mirrors_disk(tree, timeout=120)
    assert len(rows) == files + 30 + 49
    log = daemon.log()
    assert log.count("queue overflow") >= 1
    assert "fs.inotify.max_queued_events" in log
    assert daemon.stop() == 0


@pytest.mark.skipif(_TINY_QUEUE is not None, reason=_TINY_QUEUE or "")
def test_overflow_while_running_a_live_burst(db_tree, start_service):
    """No pause: the service reads as fast as it can from a tiny queue during a live burst."""
    tree = db_tree
    with sysctl("fs.inotify.max_queued_events", 16):
        daemon = start_service()
    for index in range(30):
        (tree.root / f"d{index:03d}").mkdir()
    time.sleep(0.3)
    burst(tree.root, 3000, subdirs=30)
    assert_mirrors_disk(tree, timeout=60)
    # Whether the tiny queue overflowed depends on how fast the service drained it; the
    # paused test above is the one that always overflows. Either way nothing is lost.
    assert daemon.proc.poll() is None
