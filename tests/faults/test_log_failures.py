"""The log file cannot be written (its directory cannot be made, the disk is full): the service
keeps registering, says so once on journald/stderr, and uses the file again once it can."""

from __future__ import annotations

import datetime
import os
import subprocess
import time

import pytest

from tests.faults.helpers import assert_mirrors_disk, burst, mount_tmpfs, umount, wait_until
from tests.support.capabilities import can_mount_tmpfs

SUFFIX = "_vfs_tusker_notifier_videos.log"


def _today_log(directory) -> str:
    return os.path.join(directory, datetime.date.today().strftime("%d-%m-%Y") + SUFFIX)


def test_log_directory_cannot_be_made(db_tree, start_service):
    tree = db_tree
    blocker = tree.work / "not-a-directory"
    blocker.write_text("")
    # At DEBUG every file's registration is a line (a burst is one line a write at INFO).
    daemon = start_service(LOG_BASE_DIRECTORY=str(blocker / "log"), VFS_NOTIFIER_LOG_LEVEL="debug")
    burst(tree.root, 200, subdirs=4)
    rows = assert_mirrors_disk(tree)
    assert len(rows) == 200
    wait_until(lambda: daemon.log().count("registered ") >= 200, timeout=10, what="stderr lines")
    said = daemon.log()
    assert said.count("cannot be opened") == 1, said[:2000]          # once, not per line or retry
    assert "Not a directory" in said
    assert daemon.proc.poll() is None and daemon.stop() == 0


def test_disk_full_for_the_log_file(db_tree, start_service):
    """Today's log file is /dev/full: every write fails with ENOSPC."""
    tree = db_tree
    log_dir = tree.work / "full-log"
    log_dir.mkdir()
    os.symlink("/dev/full", _today_log(log_dir))
    daemon = start_service(LOG_BASE_DIRECTORY=str(log_dir), VFS_NOTIFIER_LOG_LEVEL="debug")
    burst(tree.root, 200, subdirs=4)
    rows = assert_mirrors_disk(tree)
    assert len(rows) == 200
    wait_until(lambda: daemon.log().count("registered ") >= 200, timeout=10, what="stderr lines")
    time.sleep(2.5)                                                  # two housekeeping retries
    said = daemon.log()
    assert said.count("cannot be written") == 1, said[:2000]
    assert "No space left on device" in said
    assert daemon.proc.poll() is None and daemon.stop() == 0


@pytest.mark.skipif(can_mount_tmpfs() is not None, reason=can_mount_tmpfs() or "")
def test_a_real_full_file_system_then_space_again(db_tree, start_service):
    tree = db_tree
    log_dir = tree.work / "small"
    log_dir.mkdir()
    if not mount_tmpfs(log_dir, "256k"):
        pytest.skip(can_mount_tmpfs() or "cannot mount a tmpfs here")
    try:
        filler = log_dir / "filler"
        subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=4k"], capture_output=True)
        daemon = start_service(LOG_BASE_DIRECTORY=str(log_dir))
        burst(tree.root, 300, subdirs=3)
        assert_mirrors_disk(tree)
        wait_until(lambda: "No space left on device" in daemon.log(), timeout=10, what="the warning")
        assert daemon.log().count("cannot be written") == 1
        filler.unlink()                                              # space again
        burst(tree.root / "after", 5)
        assert_mirrors_disk(tree)
        wait_until(lambda: "/after/" in open(_today_log(log_dir), errors="replace").read(),
                   timeout=10, what="the log file to be written again")
        assert daemon.stop() == 0
    finally:
        umount(log_dir)


def test_log_directory_not_writable_by_the_service_user(open_tree, start_as_nobody):
    """The log directory exists but belongs to root (0755): the service, as nobody, cannot
    write there. It says so once and registers everything."""
    tree = open_tree
    log_dir = tree.work / "root-owned-log"
    log_dir.mkdir(mode=0o755)
    daemon = start_as_nobody(LOG_BASE_DIRECTORY=str(log_dir))
    burst(tree.root, 100)
    assert len(assert_mirrors_disk(tree)) == 100
    time.sleep(1.5)                                                   # a housekeeping retry
    said = daemon.log()
    assert said.count("cannot be opened") == 1 and "Permission denied" in said, said[:2000]
    assert list(log_dir.iterdir()) == []
    assert daemon.stop() == 0
