"""Out of inotify watches (fs.inotify.max_user_watches): the service says which sysctl to
raise, and the directories it could not watch are walked every poll interval instead, so
nothing in them is missed.

The limit is per user. The service runs as `nobody` here, with the limit set just above what
`nobody` already holds, so the rest of the machine (root's processes) is not the one short
of watches for long; the old value comes back in a `finally`."""

from __future__ import annotations

import time

import pytest

from tests.faults.helpers import (NOBODY, aged_tree, assert_mirrors_disk, burst, inotify_watches_of,
                                  sysctl, wait_until)
from tests.support.capabilities import can_write_sysctl

_MISSING = can_write_sysctl("fs.inotify.max_user_watches")
pytestmark = pytest.mark.skipif(_MISSING is not None, reason=_MISSING or "")

DIRECTORIES = 30
WATCHES = 8


def test_directories_without_a_watch_are_rescanned(open_tree, start_as_nobody):
    tree = open_tree
    aged_tree(tree.root, DIRECTORIES * 2, subdirs=DIRECTORIES)
    for directory in tree.root.iterdir():
        directory.chmod(0o755)
    limit = inotify_watches_of(NOBODY) + WATCHES
    with sysctl("fs.inotify.max_user_watches", limit):
        daemon = start_as_nobody()
        assert_mirrors_disk(tree)
        log = daemon.log()
        assert "fs.inotify.max_user_watches" in log and "inotify watch limit reached" in log
        assert log.count("inotify watch limit reached") == 1          # said once, not per directory
        # The status once the first walk is over (one sent while it still runs says
        # "Scanning" and no count of watched directories).
        status = daemon.notify.wait_for(f"({WATCHES} directories)", timeout=10)
        assert "rescanned (watch limit)" in status
        # New files in every directory, watched or not; a deletion in an unwatched one.
        started = time.monotonic()
        for index, directory in enumerate(sorted(tree.root.iterdir())):
            burst(directory, 3, prefix=f"new{index}-")
        victim = sorted(tree.root.iterdir())[-1]
        next(victim.glob("old*.mp4")).unlink()
        assert_mirrors_disk(tree, timeout=20)
        took = time.monotonic() - started
        # a poll interval (1 s) for the walk, the settling time (2 s) for fresh files, slack
        assert took < 15, took
        assert daemon.proc.poll() is None
        assert daemon.stop() == 0
    wait_until(lambda: inotify_watches_of(NOBODY) < limit, timeout=5, what="the watches to go")
