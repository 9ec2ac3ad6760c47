"""inotify_events alone: real events from the kernel, read from the inotify fd here (no
reader thread), parsed into changes."""

from __future__ import annotations

import os
import select
import time

import pytest

from vfs_notifier.inotify_events import (DIR_LEFT, DIR_MOVED, FILE_DONE, FILE_GONE, FILE_MOVED,
                                         OVERFLOW, ROOT_GONE, Change, EventParser)
from vfs_notifier.inotify_watches import Watches
from vfs_notifier.rename_pairs import HOLD_SECONDS, RenamePairs


@pytest.fixture
def world(tmp_path):
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    watches = Watches()
    for directory in (root, root / "sub"):
        assert watches.watch(str(directory), is_root=directory == root) is None
    pairs = RenamePairs()
    yield root, watches, pairs, EventParser(watches, pairs)
    watches.close()


def raw(watches: Watches) -> bytes:
    """Every event the kernel has queued by now, as it gives them."""
    time.sleep(0.05)
    poller = select.poll()
    poller.register(watches.fd(), select.POLLIN)
    data = b""
    while poller.poll(0):
        data += os.read(watches.fd(), 1 << 20)
    return data


def parse(parser: EventParser, *chunks: bytes, now: float, more_waiting: bool = False):
    changes = parser.begin(now)
    for chunk in chunks:
        parser.parse(chunk, changes)
    return parser.end(changes, more_waiting)


def test_a_new_file_closed_is_one_change(world):
    root, watches, _, parser = world
    (root / "sub" / "a.mp4").write_bytes(b"x")            # CREATE, then CLOSE_WRITE
    assert parse(parser, raw(watches), now=1.0) == ([Change(FILE_DONE, str(root / "sub" / "a.mp4"))], None)


def test_a_rename_split_over_two_chunks_is_paired(world):
    root, watches, pairs, parser = world
    (root / "a.mp4").write_bytes(b"x")
    raw(watches)
    os.rename(root / "a.mp4", root / "sub" / "b.mp4")
    data = raw(watches)
    first = 16 + int.from_bytes(data[12:16], "little")    # the MOVED_FROM alone
    assert parse(parser, data[:first], now=1.0, more_waiting=True) == ([], None)
    assert pairs
    assert parse(parser, data[first:], now=2.0) == (
        [Change(FILE_MOVED, str(root / "sub" / "b.mp4"), str(root / "a.mp4"))], None)
    assert not pairs


def test_moved_out_is_gone_once_its_time_is_up(world, tmp_path):
    root, watches, pairs, parser = world
    (root / "a.mp4").write_bytes(b"x")
    raw(watches)
    os.rename(root / "a.mp4", tmp_path / "a.mp4")
    assert parse(parser, raw(watches), now=1.0) == ([], 1.0 + HOLD_SECONDS)
    assert parse(parser, now=1.0 + HOLD_SECONDS) == ([Change(FILE_GONE, str(root / "a.mp4"))], None)


def test_a_directory_renamed_inside_takes_its_watch_along(world):
    root, watches, _, parser = world
    os.rename(root / "sub", root / "moved")
    changes, _ = parse(parser, raw(watches), now=1.0)
    assert changes == [Change(DIR_MOVED, str(root / "moved"), str(root / "sub"))]
    assert sorted(watches.index.paths.values()) == [str(root), str(root / "moved")]


def test_a_directory_deleted_is_left_and_unwatched_and_a_root_deleted_is_gone(world):
    root, watches, _, parser = world
    os.rmdir(root / "sub")
    os.rmdir(root)
    changes, _ = parse(parser, raw(watches), now=1.0)
    assert Change(DIR_LEFT, str(root / "sub")) in changes
    assert changes[-1] == Change(ROOT_GONE, str(root))
    assert len(watches) == 0


def test_an_overflow_releases_held_renames_and_is_said_once_a_read(world, tmp_path):
    root, watches, pairs, parser = world
    (root / "a.mp4").write_bytes(b"x")
    raw(watches)
    os.rename(root / "a.mp4", tmp_path / "a.mp4")
    changes = parser.begin(1.0)
    parser.parse(raw(watches), changes)
    parser.overflow(changes)
    parser.overflow(changes)
    assert parser.end(changes, False) == ([Change(FILE_GONE, str(root / "a.mp4")), Change(OVERFLOW, "")], None)
    assert not pairs


def test_a_name_that_is_not_utf8_keeps_its_bytes(world):
    root, watches, _, parser = world
    name = os.fsencode(str(root)) + b"/caf\xe9.mp4"
    with open(name, "wb") as handle:
        handle.write(b"x")
    changes, _ = parse(parser, raw(watches), now=1.0)
    assert [os.fsencode(c.path) for c in changes] == [name]
