"""Finished files that are merely odd, put into the watched tree of the running service:

- an AVI with 16 stray bytes after its RIFF (as a real one from a public test-data
  repository has, ffmpeg playing it without a warning) gets its row;
- files without media follow one rule: ffmpeg's MP4 of no frames and an HLS init segment
  both get their row (the first at once, the second once settled);
- a file held for good (its framing cut short) that the operator says plays is let through
  by `vfs-notifier release FILE`, and only that file.
"""

from __future__ import annotations

import shutil
import subprocess

from tests.support.daemon import run_cli
from tests.uploads.support import assert_no_row, assert_one_row

STRAY = b"LIST" + b"\0\0\0\0" + b"movi00dc"


def _ffmpeg(*arguments: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *arguments], check=True, timeout=120)


def test_an_avi_with_stray_bytes_after_its_end_gets_its_row(watched, utree, sources, staging):
    daemon, history = watched
    odd = staging / "stray.avi"
    odd.write_bytes(sources["avi"].read_bytes() + STRAY)
    final = utree.root / "stray.avi"
    shutil.move(str(odd), final)
    assert_one_row(history, final)


def test_files_without_media_both_get_their_row(watched, utree, staging):
    daemon, history = watched
    empty, hls = staging / "empty.mp4", staging / "hls"
    _ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=25", "-frames:v", "0", "-c:v", "libx264",
            str(empty))
    hls.mkdir()
    _ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=25", "-t", "2", "-c:v", "libx264",
            "-f", "hls", "-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", "init.mp4",
            str(hls / "x.m3u8"))
    shutil.move(str(empty), utree.root / "empty.mp4")
    shutil.move(str(hls / "init.mp4"), utree.root / "init.mp4")
    assert_one_row(history, utree.root / "init.mp4", others=[str(utree.root / "empty.mp4")])


def test_release_lets_one_held_file_through(watched, utree, sources, staging):
    daemon, history = watched
    data = sources["mp4"].read_bytes()
    held, other = utree.root / "plays anyway.mp4", utree.root / "cut.mp4"
    for path in (held, other):
        part = staging / path.name
        part.write_bytes(data[:len(data) // 2])
        shutil.move(str(part), path)
    assert_no_row(history, utree.root, "cut MP4s", resumed_later=False)
    pending = run_cli("pending", env=utree.env)
    line = next(line for line in pending.stdout.splitlines() if str(held) in line)
    assert line.endswith("if it plays as it is: vfs-notifier release FILE"), line
    released = run_cli("release", str(held), env=utree.env)
    assert released.returncode == 0, released.stderr
    assert "released at" in released.stdout, released.stdout
    assert_one_row(history, held)
    missing = run_cli("release", str(utree.root / "no such.mp4"), env=utree.env)
    assert missing.returncode == 1 and "No such file" in missing.stderr, missing
