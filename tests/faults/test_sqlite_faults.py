"""The embedded SQLite store under faults: its file system full, its database locked by
another program. It behaves as the MySQL store does: the service rides it out and catches
up, without doubling and without stalling past the watchdog."""

from __future__ import annotations

import sqlite3
import subprocess

import pytest

from tests.faults.helpers import WatchdogPings, assert_mirrors_disk, burst, mount_tmpfs, umount
from tests.support.capabilities import can_mount_tmpfs


@pytest.mark.skipif(can_mount_tmpfs() is not None, reason=can_mount_tmpfs() or "")
def test_disk_full_under_the_sqlite_file(tree, start_service):
    db_dir = tree.work / "db"
    db_dir.mkdir()
    if not mount_tmpfs(db_dir, "8m"):
        pytest.skip(can_mount_tmpfs() or "cannot mount a tmpfs here")
    try:
        tree.env["VFS_NOTIFIER_SQLITE_PATH"] = str(db_dir / "videos.sqlite3")
        daemon = start_service()
        burst(tree.root / "before", 50)
        assert_mirrors_disk(tree)
        filler = db_dir / "filler"
        subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=4k"], capture_output=True)
        burst(tree.root / "while-full", 2000, subdirs=4)           # far more than fits now
        daemon.notify.wait_for("database unavailable", timeout=20)
        assert daemon.proc.poll() is None
        filler.unlink()
        rows = assert_mirrors_disk(tree, timeout=60)
        assert len(rows) == 2050
        assert daemon.stop() == 0
    finally:
        umount(db_dir)


def test_a_database_locked_by_another_program(tree, start_service):
    """An operator's sqlite3 shell holds a write transaction open for 17 s: the loop keeps
    pinging the watchdog (WatchdogSec=30s: at least every 15 s) and registers everything
    once the lock is gone."""
    daemon = start_service(WATCHDOG_USEC="2000000")
    pings = WatchdogPings(daemon)

    burst(tree.root / "before", 20)
    assert_mirrors_disk(tree)
    pings.listen(2)
    locker = sqlite3.connect(tree.env["VFS_NOTIFIER_SQLITE_PATH"], isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")
    try:
        burst(tree.root / "while-locked", 300)
        pings.listen(17)
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    pings.listen(3)
    pings.assert_never_silent_for(15)
    assert len(assert_mirrors_disk(tree, timeout=60)) == 320
    assert daemon.stop() == 0
