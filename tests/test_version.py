"""One notion of a file's version (store.Version, made from a stat result), and the judge's
identity of a file read: that version and its ctime."""

from __future__ import annotations

import os
import time
from pathlib import Path

from tests.support.media import write_video
from vfs_notifier.judge import identity
from vfs_notifier.registrar import version_of
from vfs_notifier.store import Version


def test_version_of_a_stat_result(tmp_path: Path) -> None:
    path = write_video(tmp_path / "a.mp4")
    st = os.lstat(path)
    assert Version.of(st) == Version(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    assert version_of(st) == Version.of(st)


def test_identity_moves_with_the_ctime_where_the_version_stays(tmp_path: Path) -> None:
    path = write_video(tmp_path / "a.mp4")
    before = os.lstat(path)
    time.sleep(0.05)               # past the file system's clock granularity
    os.chmod(path, 0o600)          # the bytes, their size and mtime unchanged; the ctime moves
    after = os.lstat(path)
    assert Version.of(after) == Version.of(before)
    assert after.st_ctime_ns != before.st_ctime_ns
    assert identity(after) != identity(before)
    assert identity(after) == (Version.of(after), after.st_ctime_ns)
