"""Real video files made by ffmpeg, small or large, for tests that move or copy them.

A large file is a short raw-video Matroska clip repeated with `-stream_loop ... -c copy`:
a real, playable container of any size in about a second per 200 MB, with no encoding.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

FORMATS = {".mp4": "mp4", ".mkv": "matroska", ".avi": "avi", ".mov": "mov"}


def _ffmpeg() -> str:
    found = shutil.which("ffmpeg")
    if not found:
        raise AssertionError("ffmpeg is needed (scripts/test installs it: need_debs ffmpeg)")
    return found


def small_video(path: Path, seconds: float = 1, size: str = "160x120", mtime_ago: float = 0) -> Path:
    """A real MPEG-4 video in the container its suffix names, a few tens of kB."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.making")
    subprocess.run([_ffmpeg(), "-y", "-v", "error", "-f", "lavfi", "-i", f"testsrc=size={size}:rate=25",
                    "-t", str(seconds), "-c:v", "mpeg4", "-pix_fmt", "yuv420p",
                    "-f", FORMATS[path.suffix.lower()], str(temp)], check=True, timeout=120)
    os.rename(temp, path)   # arrives whole, as an upload that renames into place
    if mtime_ago:
        import time
        old = time.time() - mtime_ago
        os.utime(path, (old, old))
    return path


def large_video(path: Path, megabytes: int, mtime_ago: float = 0) -> Path:
    """A real Matroska video of about `megabytes` MB (raw 640x360 frames, 17 MB a 2 s clip)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    clip = path.with_name(f".{path.name}.clip.mkv")
    temp = path.with_name(f".{path.name}.making")
    subprocess.run([_ffmpeg(), "-y", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=640x360:rate=25",
                    "-t", "2", "-c:v", "rawvideo", "-pix_fmt", "yuv420p", "-f", "matroska", str(clip)],
                   check=True, timeout=120)
    loops = max(0, round(megabytes * 1024 * 1024 / clip.stat().st_size) - 1)
    subprocess.run([_ffmpeg(), "-y", "-v", "error", "-stream_loop", str(loops), "-i", str(clip),
                    "-c", "copy", "-f", "matroska", str(temp)], check=True, timeout=600)
    clip.unlink()
    os.rename(temp, path)
    if mtime_ago:
        import time
        old = time.time() - mtime_ago
        os.utime(path, (old, old))
    return path
