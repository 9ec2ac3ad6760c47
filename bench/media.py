"""Real, small, complete video files for everything the benchmark writes.

The service is gaining a structure check ("is this MP4/MKV/AVI complete?"), so a file of random
bytes named .mp4 would be held as unfinished and never become a row: the benchmark would measure
the hold, not the service. ffmpeg makes one short clip per container once per run; every file the
benchmark writes is a copy of the clip whose container matches the file's extension.
Self-contained on purpose: the test suite has its own helper (tests/support/media.py).
"""
from __future__ import annotations

import os
import subprocess

# extension (lower case) -> ffmpeg's name of the container
CONTAINERS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska", ".avi": "avi"}
# Half a second of 64x48 test picture: 2-8 kB a file, so that trees of 100,000 files stay cheap.
SOURCE = ["-f", "lavfi", "-i", "testsrc=size=64x48:rate=10", "-t", "0.5", "-pix_fmt", "yuv420p"]


class Clips:
    """The bytes of one clip per container, read from a directory `prepare` filled."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.by_ext: dict[str, bytes] = {}
        for ext in CONTAINERS:
            with open(os.path.join(directory, "clip" + ext), "rb") as f:
                self.by_ext[ext] = f.read()

    def payload(self, name: str) -> bytes:
        """The clip for a file name, by its extension (any case); MP4 for anything else."""
        return self.by_ext.get(os.path.splitext(name)[1].lower(), self.by_ext[".mp4"])

    def write(self, path: str, dir_fd: int | None = None) -> None:
        """Create `path` (it must not exist) holding the clip for its extension."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644, dir_fd=dir_fd)
        try:
            os.write(fd, self.payload(path))
        finally:
            os.close(fd)


def prepare(directory: str) -> Clips:
    """Make one clip per container with ffmpeg into `directory` (once per run) and load them."""
    os.makedirs(directory, exist_ok=True)
    for ext, fmt in CONTAINERS.items():
        path = os.path.join(directory, "clip" + ext)
        if os.path.exists(path) and os.path.getsize(path) > 0:
            continue
        tmp = path + ".tmp"
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *SOURCE, "-f", fmt, tmp],
                       check=True, stdin=subprocess.DEVNULL)
        os.rename(tmp, path)
    return Clips(directory)


_clips: Clips | None = None


def clips() -> Clips:
    """The run's clips, for modules that write files (the tree, the writers, the probes).

    The directory comes from BENCH_MEDIA_DIR, which `python3 -m bench` sets for itself and
    for the writer processes it starts."""
    global _clips
    if _clips is None:
        directory = os.environ.get("BENCH_MEDIA_DIR")
        if not directory:
            raise RuntimeError("BENCH_MEDIA_DIR is not set: call bench.media.use() first")
        _clips = Clips(directory)
    return _clips


def use(directory: str) -> Clips:
    """Prepare the clips in `directory` and make them the run's (also for child processes)."""
    global _clips
    _clips = prepare(directory)
    os.environ["BENCH_MEDIA_DIR"] = directory
    return _clips
