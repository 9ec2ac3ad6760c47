"""copy_file.py on real files: byte-identical copies, the temporary name, stale temporaries, a stop."""

from __future__ import annotations

import filecmp
import os
import threading
from pathlib import Path

import pytest

from tests.support.video_files import small_video
from vfs_notifier.copy_file import TEMP_PREFIX, SourceGone, Stopped, copy_file, remove_stale_temporaries, temp_name


def temporaries(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if p.name.startswith(TEMP_PREFIX)]


def test_a_copy_is_byte_identical_keeps_the_mtime_and_leaves_no_temporary(tmp_path):
    source = small_video(tmp_path / "in" / "a.mp4", mtime_ago=3600)
    destination = tmp_path / "out" / "deep" / "a.mp4"
    old_umask = os.umask(0o077)     # the unit's UMask=: nginx must still read the copy
    try:
        how = copy_file(str(source), str(destination))
    finally:
        os.umask(old_umask)
    assert how in ("reflink", "copy_file_range", "sendfile", "read/write")
    assert filecmp.cmp(source, destination, shallow=False)
    assert destination.stat().st_mtime_ns == source.stat().st_mtime_ns
    assert destination.stat().st_mode & 0o777 == 0o644
    assert all((tmp_path / p).stat().st_mode & 0o777 == 0o755 for p in ("out", "out/deep"))
    assert temporaries(tmp_path) == []


def test_a_copy_with_the_same_size_and_mtime_is_done_already(tmp_path):
    source = small_video(tmp_path / "a.mkv")
    destination = tmp_path / "out" / "a.mkv"
    copy_file(str(source), str(destination))
    inode = destination.stat().st_ino
    assert copy_file(str(source), str(destination)) == "done already"
    assert destination.stat().st_ino == inode
    os.utime(source, ns=(source.stat().st_atime_ns, source.stat().st_mtime_ns + 10**9))  # overwritten
    assert copy_file(str(source), str(destination)) != "done already"
    assert destination.stat().st_ino != inode   # replaced by a rename, never rewritten in place


def test_a_vanished_or_linked_source_is_gone(tmp_path):
    with pytest.raises(SourceGone):
        copy_file(str(tmp_path / "none.mp4"), str(tmp_path / "out.mp4"))
    real = small_video(tmp_path / "real.mp4")
    (tmp_path / "link.mp4").symlink_to(real)
    with pytest.raises(SourceGone):
        copy_file(str(tmp_path / "link.mp4"), str(tmp_path / "out.mp4"))
    assert not (tmp_path / "out.mp4").exists()


def test_the_temporary_name_is_hidden_and_fits_one_file_name():
    name = "é" * 127 + ".mp4"          # 258 bytes: longer than the temporary name may be
    temp = temp_name(name)
    assert temp.startswith(TEMP_PREFIX) and len(os.fsencode(temp)) <= 255
    assert temp_name("a.mp4") != temp_name("a.mp4")


def test_stale_temporaries_are_removed_and_nothing_else(tmp_path):
    keep = small_video(tmp_path / "sub" / "keep.mp4")
    stale = tmp_path / "sub" / "deeper" / (TEMP_PREFIX + "keep.mp4.0a1b2c3d")
    stale.parent.mkdir()
    stale.write_bytes(keep.read_bytes()[:100])
    assert remove_stale_temporaries(str(tmp_path)) == 1
    assert keep.exists() and not stale.exists()


def test_a_stop_already_requested_copies_nothing_and_leaves_no_temporary(tmp_path):
    source = small_video(tmp_path / "in" / "a.mp4")
    destination = tmp_path / "out" / "a.mp4"
    stop = threading.Event()
    stop.set()
    try:
        how = copy_file(str(source), str(destination), stop)
    except Stopped:
        assert not destination.exists()
    else:
        # Sharing blocks moves no bytes, so there is nothing to stop: the copy is whole.
        assert how == "reflink" and filecmp.cmp(source, destination, shallow=False)
    assert temporaries(tmp_path) == []
