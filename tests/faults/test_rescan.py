"""File systems that deliver no inotify events (NFS, SMB, FUSE: changes made on another
machine): `rescan_interval` makes periodic reconciling cover them.

A tmpfs mounted over a watched subdirectory stands in for such a mount: the service's watch
sits on the directory underneath, so files written into the mount raise no event at all, and
unmounting takes them away without one either."""

from __future__ import annotations

import time

import pytest

from tests.conftest import write_file
from tests.faults.helpers import assert_mirrors_disk, mount_tmpfs, umount
from tests.support.capabilities import can_mount_tmpfs

pytestmark = pytest.mark.skipif(can_mount_tmpfs() is not None, reason=can_mount_tmpfs() or "")


@pytest.fixture
def mounts():
    made = []

    def mount(target):
        target.mkdir(parents=True, exist_ok=True)
        if not mount_tmpfs(target):
            pytest.skip(can_mount_tmpfs() or "cannot mount a tmpfs here")
        made.append(target)
        return target
    yield mount
    for target in reversed(made):
        umount(target)


def test_without_rescan_a_silent_file_system_is_missed(db_tree, start_service, mounts):
    """The limitation the setting exists for (rescan_interval = 0, the default)."""
    tree = db_tree
    (tree.root / "remote").mkdir()
    daemon = start_service()
    write_file(tree.root / "local.mp4")
    remote = mounts(tree.root / "remote")
    write_file(remote / "from-elsewhere.mp4", mtime_ago=600)
    tree.table.wait_for_paths([tree.root / "local.mp4"])
    time.sleep(3)                                   # three housekeeping rounds: nothing
    assert tree.table.paths() == [str(tree.root / "local.mp4")]
    assert daemon.stop() == 0


def test_rescan_interval_covers_a_silent_file_system(db_tree, start_service, mounts):
    tree = db_tree
    (tree.root / "remote").mkdir()
    (tree.root / "remote2").mkdir()
    daemon = start_service(VFS_NOTIFIER_RESCAN_INTERVAL="1")
    remote = mounts(tree.root / "remote")
    write_file(remote / "show" / "a.mp4", mtime_ago=600)
    write_file(remote / "show" / "b.mkv")           # fresh: also waits to settle (2 s)
    started = time.monotonic()
    assert_mirrors_disk(tree, timeout=15)
    assert len(tree.table.paths()) == 2
    first = time.monotonic() - started
    # Periodic, not once: a second silent mount later is covered as well ...
    remote2 = mounts(tree.root / "remote2")
    write_file(remote2 / "c.mov", mtime_ago=600)
    assert_mirrors_disk(tree, timeout=15)
    assert len(tree.table.paths()) == 3
    # ... and files that vanish without an event (unmounted) are forgotten at the next one.
    umount(remote2)
    assert_mirrors_disk(tree, timeout=15)
    assert len(tree.table.paths()) == 2
    assert first < 12, first
    assert daemon.stop() == 0


def test_a_root_that_is_an_unmounted_mount_point_keeps_its_rows(db_tree, start_service, mounts):
    """The root is a mount point (not advised: docs/RELIABILITY.md). When the share is
    unmounted, the empty directory left behind is not taken for a tree whose files were all
    deleted: rows stay, the log says why; remounted, nothing is doubled."""
    tree = db_tree
    mounts(tree.root)
    for index in range(5):
        write_file(tree.root / f"share{index}.mp4", mtime_ago=600)
    daemon = start_service(VFS_NOTIFIER_RESCAN_INTERVAL="1")
    registered = sorted(map(str, tree.root.glob("*.mp4")))
    tree.table.wait_for_paths(registered)
    umount(tree.root)
    time.sleep(3.5)                                 # several rescans of the empty mount point
    assert sorted(tree.table.paths()) == registered
    assert "unmounted" in daemon.log()
    mounts(tree.root)                               # back, with the same files and one more
    for index in range(5):
        write_file(tree.root / f"share{index}.mp4", mtime_ago=600)
    write_file(tree.root / "new.mp4", mtime_ago=600)
    rows = assert_mirrors_disk(tree, timeout=15)
    assert len(rows) == 6
    assert daemon.stop() == 0
