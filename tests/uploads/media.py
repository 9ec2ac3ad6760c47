"""Real videos for the upload cases, made by ffmpeg once per test session.

Every source is a genuine container (H.264 in MP4, Matroska, QuickTime and AVI), a few MB
large so that a throttled transfer can be interrupted part way. The noise filter keeps
x264 from compressing the test pattern to almost nothing: without it 20 s is about 2 MB.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import NamedTuple

SECONDS = 20
CONTAINERS = ("mp4", "mkv", "mov", "avi")


class Sources(NamedTuple):
    directory: Path
    files: dict[str, Path]        # container ending -> finished source file

    def __getitem__(self, ending: str) -> Path:   # type: ignore[override]
        return self.files[ending]


def ffmpeg() -> str | None:
    return shutil.which("ffmpeg")


def make_sources(directory: Path) -> Sources:
    """Encode once into Matroska and remux (no re-encoding) into the other three containers."""
    binary = ffmpeg()
    assert binary, "make_sources needs ffmpeg"
    directory.mkdir(parents=True, exist_ok=True)
    files = {"mkv": directory / "source.mkv"}
    _run([binary, "-v", "error", "-y", "-f", "lavfi",
          "-i", "testsrc2=size=640x360:rate=25", "-t", str(SECONDS),
          "-vf", "noise=alls=12:allf=t", "-pix_fmt", "yuv420p", "-c:v", "libx264",
          "-preset", "ultrafast", "-b:v", "2M", "-maxrate", "2M", "-bufsize", "1M",
          str(files["mkv"])])
    for ending in ("mp4", "mov", "avi"):
        files[ending] = directory / f"source.{ending}"
        # AVI carries H.264 in Annex B form; MP4/MOV keep the length-prefixed form.
        extra = ["-bsf:v", "h264_mp4toannexb"] if ending == "avi" else []
        _run([binary, "-v", "error", "-y", "-i", str(files["mkv"]), "-c", "copy", *extra,
              str(files[ending])])
    for path in files.values():
        assert path.stat().st_size > 3_000_000, f"{path} is only {path.stat().st_size} bytes"
    return Sources(directory, files)


def live_ffmpeg_command(output: Path, seconds: int = SECONDS, readrate: float = 1.0) -> list[str]:
    """ffmpeg encoding a test pattern straight into `output` at `readrate` x real time, as a
    recorder or a live re-muxer writing into the watched tree does."""
    binary = ffmpeg()
    assert binary
    pace = ["-readrate", str(readrate)] if readrate else []   # 0: as fast as it encodes
    return [binary, "-v", "error", "-nostdin", "-y", *pace, "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25", "-t", str(seconds), "-vf", "noise=alls=12:allf=t",
            "-pix_fmt", "yuv420p", "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "2M",
            str(output)]


def _run(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}): {result.stderr[-2000:]}")
