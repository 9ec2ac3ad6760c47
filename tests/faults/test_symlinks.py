"""Symbolic links (to files, to directories, loops, dangling, pointing outside the tree) are
never registered and never followed: nothing outside the tree gets a URL."""

from __future__ import annotations

import os

from tests.conftest import write_file
from tests.faults.helpers import aged_tree, assert_mirrors_disk


def _links(directory, outside, inside_file, inside_dir) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    os.symlink(outside / "secret.mp4", directory / "to-outside-file.mp4")
    os.symlink(outside / "dir", directory / "to-outside-dir")
    os.symlink(outside / "dir", directory / "dir-named-like.mp4")
    os.symlink(inside_file, directory / "to-inside-file.mp4")
    os.symlink(inside_dir, directory / "to-inside-dir")
    os.symlink(".", directory / "loop")
    os.symlink("self.mp4", directory / "self.mp4")
    os.symlink("/nonexistent/x.mp4", directory / "dangling.mp4")
    os.symlink("../../../../../../..", directory / "to-slash")


def test_links_are_never_followed_or_registered(store_tree, start_service, tmp_path):
    tree = store_tree
    outside = tmp_path / "outside"
    write_file(outside / "secret.mp4", mtime_ago=600)
    aged_tree(outside / "dir", 20, subdirs=2)
    real = write_file(tree.root / "real" / "real.mp4", mtime_ago=600)
    _links(tree.root / "at-start", outside, real, real.parent)
    daemon = start_service()
    rows = assert_mirrors_disk(tree)
    assert [r.path for r in rows] == [str(real)]
    # Made while the service runs: created in place, and moved in from elsewhere.
    _links(tree.root / "live", outside, real, real.parent)
    staged = tmp_path / "staged"
    _links(staged, outside, real, real.parent)
    for link in staged.iterdir():
        os.rename(link, tree.root / "real" / ("moved-" + link.name))
    write_file(tree.root / "live" / "after.mp4")
    rows = assert_mirrors_disk(tree)
    assert len(rows) == 2
    assert not [r for r in rows if str(outside) in r.path or "to-" in r.path]
    assert daemon.proc.poll() is None and daemon.stop() == 0


def test_a_registered_file_replaced_by_a_link_loses_its_row(store_tree, start_service, tmp_path):
    tree = store_tree
    outside = write_file(tmp_path / "outside" / "secret.mp4")
    daemon = start_service()
    victim = write_file(tree.root / "victim.mp4")
    keep = write_file(tree.root / "keep.mp4")
    tree.table.wait_for_paths([victim, keep])
    link = tree.root / ".tmp-link"
    os.symlink(outside, link)
    os.rename(link, victim)                        # atomically: the path is now a link outside
    rows = assert_mirrors_disk(tree)
    assert [r.path for r in rows] == [str(keep)]
    assert daemon.stop() == 0
    # ... and a reconcile at start removes such a row too.
    tree.table  # same store
    os.unlink(victim)
    write_file(victim)
    first = start_service()
    tree.table.wait_for_paths([victim, keep])
    assert first.stop() == 0
    os.unlink(victim)
    os.symlink(outside, victim)                    # while the service is not running
    second = start_service()
    assert_mirrors_disk(tree)
    assert second.stop() == 0


def test_a_watched_root_that_is_a_link_is_watched_through_it(tree, start_service):
    """An operator's CLIENT_VIDEO_DIR may itself be a link (/srv/videos -> /mnt/disk1/videos):
    configured, not found inside the tree, so it is followed; rows name the configured path."""
    real = tree.base / "disk1"
    tree.root.rmdir()
    real.mkdir()
    os.symlink(real, tree.root)
    write_file(real / "before.mp4", mtime_ago=600)
    daemon = start_service()
    tree.table.wait_for_paths([tree.root / "before.mp4"])
    write_file(real / "sub" / "after.mp4")
    write_file(tree.root / "through-link.mp4")
    tree.table.wait_for_paths([tree.root / "before.mp4", tree.root / "sub" / "after.mp4",
                               tree.root / "through-link.mp4"], timeout=5)
    assert tree.table.duplicates() == []
    assert daemon.stop() == 0
