"""inotify_watches alone: real inotify watches on real directories, no reader thread."""

from __future__ import annotations

import errno
import os

import pytest

from vfs_notifier.inotify_watches import Watches


@pytest.fixture
def watches():
    made = Watches()
    yield made
    made.close()


def watched(w: Watches) -> dict[int, str]:
    """What pyinotify's own table says (it must agree with the index)."""
    return {wd: watch.path for wd, watch in w.manager.watches.items()}


def test_a_tree_watched_then_removed_leaves_no_watch(watches, tmp_path):
    for sub in ("a", "a/b", "a/b/c", "z"):
        (tmp_path / sub).mkdir()
    for directory in (tmp_path, tmp_path / "a", tmp_path / "a" / "b", tmp_path / "a" / "b" / "c", tmp_path / "z"):
        assert watches.watch(str(directory), is_root=directory == tmp_path) is None
    assert len(watches) == 5 and watches.roots == {watches.index.wd(str(tmp_path)): str(tmp_path)}
    watches.unwatch_tree(str(tmp_path / "a"))
    assert len(watches) == 2
    assert sorted(watched(watches).values()) == [str(tmp_path), str(tmp_path / "z")]
    watches.unwatch_tree(str(tmp_path))
    assert len(watches) == 0 and watches.roots == {} and watched(watches) == {}


def test_watching_twice_is_one_watch(watches, tmp_path):
    assert watches.watch(str(tmp_path) + "/") is None
    assert watches.watch(str(tmp_path)) is None
    assert len(watches) == 1 and list(watched(watches).values()) == [str(tmp_path)]


def test_a_failure_is_an_errno_not_an_exception(watches, tmp_path):
    assert watches.watch(str(tmp_path / "missing")) == errno.ENOENT
    (tmp_path / "file").write_bytes(b"x")
    assert watches.watch(str(tmp_path / "file")) == errno.ENOTDIR    # IN_ONLYDIR
    assert len(watches) == 0 and not watches.refused and not watches.limit_reached


def test_a_link_is_followed_for_a_root_only(watches, tmp_path):
    (tmp_path / "real").mkdir()
    os.symlink(tmp_path / "real", tmp_path / "link")
    assert watches.watch(str(tmp_path / "link")) == errno.ENOTDIR       # below a root: never followed
    assert watches.watch(str(tmp_path / "link"), is_root=True) is None


def test_a_renamed_tree_keeps_its_watches_under_the_new_path(watches, tmp_path):
    for sub in ("a", "a/b"):
        (tmp_path / sub).mkdir()
    for directory in (tmp_path, tmp_path / "a", tmp_path / "a" / "b"):
        watches.watch(str(directory))
    wds = dict(watches.index.paths)
    os.rename(tmp_path / "a", tmp_path / "n")
    watches.refused.add(str(tmp_path / "a" / "b" / "x"))      # as if the kernel had refused it
    watches.move_tree(str(tmp_path / "a"), str(tmp_path / "n"))
    assert set(watches.index.paths) == set(wds)                # the same descriptors
    assert sorted(watched(watches).values()) == [str(tmp_path), str(tmp_path / "n"), str(tmp_path / "n" / "b")]
    assert watches.refused == {str(tmp_path / "n" / "b" / "x")}
    watches.unwatch_tree(str(tmp_path / "n"))
    assert watches.refused == set()


def test_forget_drops_a_watch_the_kernel_removed(watches, tmp_path):
    (tmp_path / "gone").mkdir()
    watches.watch(str(tmp_path / "gone"), is_root=True)
    wd = watches.index.wd(str(tmp_path / "gone"))
    os.rmdir(tmp_path / "gone")
    watches.forget(wd)
    assert len(watches) == 0 and watches.roots == {} and watched(watches) == {}
    watches.forget(wd)                                          # twice is harmless
