"""Finished files whose mtime lies in the future (a clock ahead on the machine that made
them; `touch -d 2030-01-01`) or in 1970 (`rsync -t` of an old file) are registered,
whether the service sees them written, finds them at start, or they arrive by `tar -x`."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.uploads.support import assert_one_row, RowHistory

FUTURE = "2030-01-01 00:00:00"
PAST = "1970-01-02 00:00:00"


def _copy_with_mtime(source, path, when: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, path)
    subprocess.run(["touch", "-d", when, str(path)], check=True)


def test_future_and_1970_mtimes_are_registered(utree, sources, start_service):
    found_at_start = [utree.root / "old camera" / "future.mov", utree.root / "old camera" / "1970.avi"]
    _copy_with_mtime(sources["mov"], found_at_start[0], FUTURE)
    _copy_with_mtime(sources["avi"], found_at_start[1], PAST)
    start_service()
    history = RowHistory(utree.table).start()
    try:
        written = [utree.root / "future.mp4", utree.root / "1970.mkv"]
        _copy_with_mtime(sources["mp4"], written[0], FUTURE)
        _copy_with_mtime(sources["mkv"], written[1], PAST)
        assert os.stat(written[0]).st_mtime > 1.8e9 and os.stat(written[1]).st_mtime < 1e6
        assert_one_row(history, written[0], sources["mp4"], others=[*written[1:], *found_at_start])
    finally:
        history.stop()


@pytest.mark.parametrize("when", ["while running", "before start"])
def test_tar_x_of_videos_with_future_mtimes(when, utree, sources, start_service, staging, procs):
    """tar creates the directory, writes each file, then sets its recorded (future) mtime: the
    files land in a directory that is new to the service, or (a restore before the service
    starts) are found by the first walk with mtimes years ahead of the clock."""
    album = staging / "album" / "day 1"
    for ending in ("mp4", "mkv", "mov", "avi"):
        _copy_with_mtime(sources[ending], album / f"clip.{ending}", FUTURE)
    archive = staging / "album.tar"
    procs.run(["tar", "-cf", str(archive), "-C", str(staging), "album"])
    extract = ["tar", "-xf", str(archive), "-C", str(utree.root)]
    if when == "before start":
        procs.run(extract)
    start_service()
    history = RowHistory(utree.table).start()
    try:
        if when == "while running":
            procs.run(extract)
        extracted = sorted((utree.root / "album" / "day 1").iterdir())
        assert len(extracted) == 4 and all(p.stat().st_mtime > 1.8e9 for p in extracted)
        assert_one_row(history, extracted[0], album / extracted[0].name, others=extracted[1:])
    finally:
        history.stop()
