"""Directories deleted, recreated and renamed under the watcher; the watched root itself
removed, moved away and brought back; an unreadable subdirectory; files gone before the
service gets to them. After each, the table mirrors the disk."""

from __future__ import annotations

import os
import shutil
import signal
import time

from tests.conftest import write_file
from tests.faults.helpers import aged_tree, assert_mirrors_disk, burst


def test_directories_deleted_recreated_and_renamed(db_tree, start_service):
    tree = db_tree
    aged_tree(tree.root / "keep", 50, subdirs=5)
    daemon = start_service()
    assert_mirrors_disk(tree)
    for round_ in range(15):
        work = tree.root / "work"
        burst(work / "a" / "b", 20, prefix=f"r{round_}-")
        os.rename(work, tree.root / f"renamed-{round_}")           # renamed under the watcher
        if round_ % 3 == 0:
            shutil.rmtree(tree.root / f"renamed-{round_}")          # deleted soon after
        elif round_ % 3 == 1:
            os.rename(tree.root / f"renamed-{round_}", tree.work / f"out-{round_}")   # moved out
    (tree.root / "again").mkdir()
    burst(tree.root / "again", 10, prefix="one-")
    shutil.rmtree(tree.root / "again")
    (tree.root / "again").mkdir()                                   # recreated, other files
    burst(tree.root / "again", 10, prefix="two-")
    os.rename(tree.work / "out-1", tree.root / "back-in")           # and one moved back in
    rows = assert_mirrors_disk(tree)
    assert not [r for r in rows if "/out-" in r.path or "/again/one-" in r.path]
    assert daemon.proc.poll() is None and daemon.stop() == 0


def test_watched_root_removed_and_recreated(db_tree, start_service):
    tree = db_tree
    aged_tree(tree.root, 40, subdirs=4)
    daemon = start_service()
    assert_mirrors_disk(tree)
    shutil.rmtree(tree.root)
    tree.table.wait_for_paths([], timeout=10)                       # its rows are forgotten
    tree.root.mkdir()
    burst(tree.root / "fresh", 30)
    rows = assert_mirrors_disk(tree, timeout=20)                    # adopted at housekeeping
    assert len(rows) == 30
    assert "was removed or moved" in daemon.log() and "appeared" in daemon.log()
    assert daemon.proc.poll() is None and daemon.stop() == 0


def test_watched_root_moved_away_and_back(db_tree, start_service):
    tree = db_tree
    aged_tree(tree.root, 40, subdirs=4)
    daemon = start_service()
    assert_mirrors_disk(tree)
    parked = tree.base / "parked"
    os.rename(tree.root, parked)
    tree.table.wait_for_paths([], timeout=10)
    burst(parked / "while-away", 5)                                 # must not be watched there
    time.sleep(1.5)
    assert tree.table.paths() == []
    os.rename(parked, tree.root)
    rows = assert_mirrors_disk(tree, timeout=20)
    assert len(rows) == 45
    assert daemon.stop() == 0


def test_unreadable_subdirectory(open_tree, start_as_nobody):
    """The service (as `nobody`) cannot read one subdirectory: one warning naming it, the rest
    registered, and the rows it had for files in there are kept, not forgotten."""
    tree = open_tree
    aged_tree(tree.root / "open", 20, subdirs=2)
    aged_tree(tree.root / "closed", 5)
    for directory in [tree.root / "open", tree.root / "closed", *(tree.root / "open").iterdir()]:
        directory.chmod(0o755)
    first = start_as_nobody()
    assert_mirrors_disk(tree)
    assert first.stop() == 0
    (tree.root / "closed").chmod(0o700)                             # root's own, nobody's not
    write_file(tree.root / "closed" / "new.mp4", mtime_ago=60)
    daemon = start_as_nobody()
    burst(tree.root / "open" / "d000", 5, prefix="later")
    visible = [p for p in map(str, tree.root.rglob("*.mp4")) if not p.endswith("closed/new.mp4")]
    rows = tree.table.wait_for_paths(visible, timeout=20)
    assert tree.table.duplicates() == []
    log = daemon.log()
    assert log.count("closed: cannot read: Permission denied") == 1, log
    assert daemon.proc.poll() is None
    # Readable again: a reload (or a restart, or rescan_interval) walks it again.
    (tree.root / "closed").chmod(0o755)
    daemon.signal(signal.SIGHUP)
    assert_mirrors_disk(tree, timeout=20)
    assert len(rows) == 20 + 5 + 5


def test_files_gone_before_they_are_handled(db_tree, start_service):
    tree = db_tree
    daemon = start_service()
    keep = []
    for index in range(300):
        path = write_file(tree.root / "flash" / f"f{index}.mp4")
        if index % 3:
            path.unlink()                                            # gone right after closing
        else:
            keep.append(path)
    for index in range(20):                                          # a whole new tree, gone at once
        burst(tree.root / f"brief{index}" / "x", 10)
        shutil.rmtree(tree.root / f"brief{index}")
    rows = assert_mirrors_disk(tree)
    assert len(rows) == len(keep)
    time.sleep(1.5)                                                  # nothing comes back later
    assert sorted(tree.table.paths()) == sorted(map(str, keep))
    assert daemon.proc.poll() is None and daemon.stop() == 0


def test_a_directory_made_readable_later_is_picked_up_at_once(open_tree, start_as_nobody):
    """rsync -a creates a directory 0700 and opens it up at the end: the chmod alone (no
    reload, no rescan) brings its files in."""
    tree = open_tree
    closed = tree.root / "incoming"
    closed.mkdir(mode=0o700)
    write_file(closed / "early.mp4", mtime_ago=600)
    daemon = start_as_nobody()
    write_file(closed / "later.mp4", mtime_ago=600)                 # while still unreadable
    time.sleep(1.5)
    assert tree.table.paths() == []                                 # nothing visible yet
    closed.chmod(0o755)
    tree.table.wait_for_paths([closed / "early.mp4", closed / "later.mp4"], timeout=5)
    write_file(closed / "after.mp4")                                # and it is watched now
    assert_mirrors_disk(tree, timeout=5)
    assert daemon.stop() == 0


def test_hard_links_into_the_tree_are_registered_by_their_event(db_tree, start_service, tmp_path):
    """`ln` and rsync --link-dest make a complete file appear with only IN_CREATE."""
    tree = db_tree
    old = write_file(tmp_path / "elsewhere" / "old.mp4", mtime_ago=600)
    fresh = write_file(tmp_path / "elsewhere" / "fresh.mkv")
    daemon = start_service()
    os.link(old, tree.root / "old-linked.mp4")
    tree.table.wait_for_paths([tree.root / "old-linked.mp4"], timeout=2)
    os.link(fresh, tree.root / "fresh-linked.mkv")                  # changed just now: settles 2 s
    assert_mirrors_disk(tree, timeout=6)
    assert daemon.stop() == 0
