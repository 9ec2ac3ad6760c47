"""Real video containers for the whole suite: small files made by ffmpeg once and committed.

The service registers only finished videos, judged by their container framing, so fixtures
must be real containers (never random bytes named .mp4). Each kind is a file under
tests/media/ (a one-second 64x48 test pattern, a few KB), made by Debian 12's ffmpeg with
tests/media/regenerate and read from there: no test runs ffmpeg to get one, so the tests the
package runs at build time need nothing beyond its Build-Depends. A burst of 20,000 files
costs one read and 20,000 plain writes. Only killed_ffmpeg() runs ffmpeg itself (what a
killed writer leaves cannot be committed as one file); without ffmpeg its tests skip.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import time
from pathlib import Path
from typing import Optional, Union

# The containers the service knows; m4v and friends are MP4 inside.
CONTAINERS = ("mp4", "mov", "mkv", "avi")
ALIASES = {"m4v": "mp4", "3gp": "mp4", "m4a": "mp4", "webm": "mkv", "qt": "mov"}
MEDIA = Path(__file__).resolve().parent.parent / "media"
# Kind -> its file in MEDIA (tests/media/regenerate says how each was made). "faststart" has
# moov before mdat, "fragmented" is a fragmented MP4, "streamed-mkv" was written to a pipe
# as a live muxer writes: its Segment has no size.
FILES = {
    "mp4": "clip.mp4",
    "mov": "clip.mov",
    "mkv": "clip.mkv",
    "avi": "clip.avi",
    "faststart": "faststart.mp4",
    "fragmented": "fragmented.mp4",
    "streamed-mkv": "streamed.mkv",
}
TEXT = b"not a video: a plain text file\n"

_read: dict[str, bytes] = {}


def _ffmpeg() -> str:
    path = shutil.which("ffmpeg")
    if not path:
        import pytest
        pytest.skip("ffmpeg is not installed: this test runs and kills a real ffmpeg "
                    "(scripts/test installs it as root; or: apt-get install ffmpeg)")
    return path


def video_bytes(kind: str) -> bytes:
    """A small, complete, real container: `kind` is an extension (mp4, mov, mkv, avi, m4v ...,
    any case, with or without a dot) or a variant ("faststart", "fragmented" MP4,
    "streamed-mkv")."""
    kind = kind.lower().lstrip(".")
    kind = ALIASES.get(kind, kind)
    if kind not in _read:
        if kind not in FILES:
            raise ValueError(f"no video fixture for {kind!r}: one of {', '.join(FILES)}")
        _read[kind] = (MEDIA / FILES[kind]).read_bytes()
    return _read[kind]


def container_of(name: str) -> Optional[str]:
    """Which container a file named `name` should hold: the last video ending among its
    dot-separated parts, so temporary names keep their video ("movie.mp4.part",
    ".clip.mp4.Xa81Qz" hold MP4); None for other names ("readme.txt")."""
    for part in reversed(name.lower().split(".")[1:]):
        part = ALIASES.get(part, part)
        if part in CONTAINERS:
            return part
    return None


def content_for(path: Union[str, Path]) -> bytes:
    """What a fixture file named like `path` holds: a real video, or plain text."""
    kind = container_of(os.path.basename(os.fsdecode(path)))
    return video_bytes(kind) if kind else TEXT


def write_video(path: Union[str, Path], mtime_ago: Optional[float] = None, kind: Optional[str] = None,
                data: Optional[bytes] = None) -> Path:
    """Write (and close) a real video at `path`, its container from its name unless `kind`
    says; optionally aged `mtime_ago` seconds (negative: in the future)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if data is None:
        data = video_bytes(kind) if kind else content_for(path)
    with open(path, "wb") as handle:
        handle.write(data)
    if mtime_ago is not None:
        then = time.time() - mtime_ago
        os.utime(path, (then, then))
    return path



def cut_video(kind: str, fraction: float = 0.5) -> bytes:
    """The first `fraction` of a real video: what an interrupted copy leaves (incomplete)."""
    data = video_bytes(kind)
    return data[:max(1, int(len(data) * fraction))]


def preallocated_video(kind: str, fraction: float = 0.5) -> bytes:
    """A real video at its full length whose tail is still zeros, as aria2c leaves it."""
    data = video_bytes(kind)
    keep = max(1, int(len(data) * fraction))
    return data[:keep] + b"\0" * (len(data) - keep)

def tagged_video(kind: str, tag: bytes) -> bytes:
    """A complete video of `kind` that also carries `tag`, so that files can be told apart by
    their bytes (a web server test compares what it serves). The tag sits where players skip
    it: a trailing `free` box (MP4/MOV), a Void element at the end of the Segment (Matroska),
    a JUNK chunk at the end of the RIFF (AVI)."""
    kind = ALIASES.get(kind.lower().lstrip("."), kind.lower().lstrip("."))
    data = video_bytes(kind)
    if kind in ("mp4", "mov"):
        # ffmpeg writes moov last (no faststart): a box after it changes no offset.
        return data + struct.pack(">I4s", 8 + len(tag), b"free") + tag
    if kind == "mkv":
        return _mkv_with_void(data, tag)
    if kind == "avi":
        chunk = b"JUNK" + struct.pack("<I", len(tag)) + tag + b"\0" * (len(tag) % 2)
        riff_size = struct.unpack_from("<I", data, 4)[0]
        assert riff_size + 8 == len(data), "one RIFF chunk expected"
        return data[:4] + struct.pack("<I", riff_size + len(chunk)) + data[8:] + chunk
    raise ValueError(f"cannot tag {kind!r}")


def _mkv_with_void(data: bytes, tag: bytes) -> bytes:
    # EBML header (ID 1A45DFA3 + size), then the Segment (ID 18538067 + size) running to EOF.
    header_size, header_len = _vint(data, 4)
    segment = 4 + header_len + header_size
    assert data[segment:segment + 4] == b"\x18\x53\x80\x67", "Segment expected after the EBML header"
    size, length = _vint(data, segment + 4)
    assert segment + 4 + length + size == len(data), "a Segment of known size expected"
    void = b"\xec" + _encode_vint(len(tag), 8) + tag
    new_size = _encode_vint(size + len(void), length)
    return data[:segment + 4] + new_size + data[segment + 4 + length:] + void


def _vint(data: bytes, offset: int) -> tuple[int, int]:
    first = data[offset]
    length = 1
    while not first & (0x80 >> (length - 1)):
        length += 1
    value = first & ((0x80 >> (length - 1)) - 1)
    for byte in data[offset + 1:offset + length]:
        value = (value << 8) | byte
    return value, length


def _encode_vint(value: int, length: int) -> bytes:
    assert value < (1 << (7 * length)) - 1
    return ((1 << (7 * length)) | value).to_bytes(length, "big")


def killed_ffmpeg(path: Union[str, Path], muxer: str, at_least: int = 100_000,
                  timeout: float = 30, options: tuple[str, ...] = ()) -> Path:
    """What ffmpeg leaves behind when it is killed (SIGKILL) while writing `path` directly:
    it is killed once the file holds `at_least` bytes. MPEG-4 part 2 at 320x240 gets bytes to
    the disk within a fraction of a second (libx264 would buffer for seconds first)."""
    path = Path(path)
    path.unlink(missing_ok=True)        # an old file's size must not stop the writer at once
    process = subprocess.Popen(
        [_ffmpeg(), "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
         "testsrc=size=320x240:rate=25", "-t", "600", "-c:v", "mpeg4", "-q:v", "2", *options,
         "-f", muxer, str(path)], stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if path.stat().st_size >= at_least:
                    break
            except FileNotFoundError:
                pass
            time.sleep(0.01)
        else:
            raise RuntimeError(f"ffmpeg wrote less than {at_least} bytes to {path} in {timeout} s")
    finally:
        process.kill()
        process.wait()
    return path
