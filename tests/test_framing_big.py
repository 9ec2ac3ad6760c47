"""The cost of judging a 2 GB film, written for real (no holes): a few hundred KB read in
about a hundred small reads, whatever the checks of written media add; and a stream's part
left as zeros in its middle is found.

The film is 10 s of H.264 and AAC made by ffmpeg, repeated by ffmpeg (-stream_loop, no
re-encoding) to 2 GB in MP4 (moov last), faststart MP4 and Matroska, one at a time: the
test needs 2.2 GB free where pytest keeps its files (which may be a small tmpfs: then it
is skipped, saying so) and removes each film before making the next.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from vfs_notifier.judge import FINISHED, HELD, Judge, Names

FFMPEG = shutil.which("ffmpeg")
FILM_BYTES = 2_000_000_000
NEEDED = FILM_BYTES + 300_000_000
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(FFMPEG is None, reason="ffmpeg not installed (Debian package ffmpeg)")]


def _ffmpeg(*arguments: str) -> None:
    subprocess.run([FFMPEG, "-nostdin", "-v", "error", "-y", *arguments], check=True, timeout=600)


class _Counting:
    """os.pread counted while the judge runs: its reads, and their bytes."""

    def __init__(self, monkeypatch) -> None:
        self.calls = self.bytes = 0
        real = os.pread

        def pread(fd: int, length: int, offset: int) -> bytes:
            data = real(fd, length, offset)
            self.calls += 1
            self.bytes += len(data)
            return data

        monkeypatch.setattr(os, "pread", pread)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("big")
    free = shutil.disk_usage(directory).free
    if free < NEEDED:
        pytest.skip(f"{free / 1e9:.1f} GB free in {directory}, a 2 GB film needs {NEEDED / 1e9:.1f}")
    path = directory / "clip.mp4"
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25", "-f", "lavfi",
            "-i", "sine=frequency=440:sample_rate=48000", "-t", "10", "-vf", "noise=alls=12:allf=t",
            "-pix_fmt", "yuv420p", "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "8M",
            "-maxrate", "8M", "-bufsize", "4M", "-c:a", "aac", str(path))
    yield path
    path.unlink()


@pytest.mark.parametrize("kind, name, options", [
    ("mp4", "film.mp4", []), ("faststart", "film.mp4", ["-movflags", "+faststart"]),
    ("mkv", "film.mkv", []),
])
def test_a_2_gb_film_is_judged_in_a_few_hundred_kb_and_its_unwritten_middle_is_found(
        clip, kind, name, options, monkeypatch):
    film = clip.with_name(name)
    loops = FILM_BYTES // clip.stat().st_size
    try:
        _ffmpeg("-stream_loop", str(loops), "-i", str(clip), "-c", "copy", *options, str(film))
        size = film.stat().st_size
        assert size > FILM_BYTES * 0.95
        counted = _Counting(monkeypatch)
        began = time.perf_counter()
        verdict = Judge(Names(["mp4", "mkv"])).judge(str(film), name, closed=True)
        took = time.perf_counter() - began
        print(f"{kind}: {verdict.state} in {took * 1000:.1f} ms, {counted.calls} preads, "
              f"{counted.bytes:,} bytes read")
        assert verdict.state == FINISHED, verdict
        assert counted.calls <= 150 and counted.bytes <= 2_000_000, (counted.calls, counted.bytes)

        # Stream 2 of 4 stopped 4 MB before the end of its part, on a file system that does
        # not report holes: zeros written where media was to come.
        part_end = size * 2 // 4
        with open(film, "r+b") as handle:
            handle.seek(part_end - 4_000_000)
            kept = handle.read(4_000_000)
            handle.seek(part_end - 4_000_000)
            handle.write(bytes(4_000_000))
        verdict = Judge(Names(["mp4", "mkv"])).judge(str(film), name, closed=True)
        assert verdict.state == HELD and verdict.reason.startswith("unwritten:"), verdict
        with open(film, "r+b") as handle:
            handle.seek(part_end - 4_000_000)
            handle.write(kept)
        assert Judge(Names(["mp4", "mkv"])).judge(str(film), name, closed=True).state == FINISHED
    finally:
        film.unlink(missing_ok=True)
