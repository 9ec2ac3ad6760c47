"""framing.check on finished files that are merely odd, and on full-size files whose media
was never written: real files made by ffmpeg here, changed only where the case says.

- Stray bytes after complete framing (AVI, MP4, Matroska) are no proof of an unfinished file:
  complete, with the bytes named; zeros there are (the space a preallocating download has
  not written yet).
- Files without media: ffmpeg's MP4 of no frames (its moov, written last, lists no samples)
  is complete at once; an HLS init segment (ftyp + moov with mvex, no fragments) cannot be
  told, and settles. One rule: no media proves nothing either way (README).
- Media never written: zeros (as written by a tool on a file system without holes) where the
  chunk tables place media, and holes (SEEK_HOLE), make a whole-framed file incomplete;
  PCM silence, which is zeros, does not.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from vfs_notifier import framing
from vfs_notifier.framing import Framing, written
from vfs_notifier.judge import FINISHED, HELD, Judge, Names

FFMPEG = shutil.which("ffmpeg")
pytestmark = pytest.mark.skipif(FFMPEG is None, reason="ffmpeg not installed (Debian package ffmpeg)")
CLIP = ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-f", "lavfi",
        "-i", "sine=frequency=440:sample_rate=48000", "-t", "8", "-vf", "noise=alls=12:allf=t",
        "-pix_fmt", "yuv420p", "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "1M", "-g", "25"]


def _ffmpeg(*arguments: str) -> None:
    subprocess.run([FFMPEG, "-nostdin", "-v", "error", "-y", *arguments], check=True, timeout=120)


@pytest.fixture(scope="module")
def films(tmp_path_factory) -> dict[str, Path]:
    """8 s of H.264 and AAC (about 1 MB) in MP4 (moov last), faststart MP4, Matroska and AVI;
    a MOV whose sound is PCM silence; ffmpeg's MP4 of no frames; an HLS init segment."""
    d = tmp_path_factory.mktemp("films")
    made = {"mp4": d / "film.mp4"}
    _ffmpeg(*CLIP, "-c:a", "aac", str(made["mp4"]))
    for kind, name, options in (("faststart", "faststart.mp4", ["-movflags", "+faststart"]),
                                ("mkv", "film.mkv", []),
                                ("avi", "film.avi", ["-bsf:v", "h264_mp4toannexb"])):
        made[kind] = d / name
        _ffmpeg("-i", str(made["mp4"]), "-c", "copy", *options, str(made[kind]))
    made["pcm-silence"] = d / "silence.mov"
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-f", "lavfi",
            "-i", "anullsrc=r=48000:cl=stereo", "-t", "8", "-pix_fmt", "yuv420p", "-c:v", "libx264",
            "-preset", "ultrafast", "-c:a", "pcm_s16le", str(made["pcm-silence"]))
    made["pcm-silence-avi"] = d / "silence.avi"
    _ffmpeg("-i", str(made["pcm-silence"]), "-c", "copy", "-bsf:v", "h264_mp4toannexb",
            str(made["pcm-silence-avi"]))
    made["no-frames"] = d / "empty.mp4"
    _ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=25", "-frames:v", "0", "-c:v", "libx264",
            str(made["no-frames"]))
    hls = d / "hls"
    hls.mkdir()
    _ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=25", "-t", "2", "-c:v", "libx264",
            "-f", "hls", "-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", "init.mp4",
            str(hls / "x.m3u8"))
    made["init-segment"] = hls / "init.mp4"
    return made


def _check(path: Path, extension: str, data: bytes | None = None) -> tuple[Framing, framing.Reader]:
    """check() of `data` (else the file itself) written as a plain file, and inspect()'s reads."""
    if data is not None:
        path = path.with_name(f"probe-{os.getpid()}.{extension}")
        path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    try:
        reader = framing.Reader(fd, os.fstat(fd).st_size)
        framing.inspect(reader, extension)
        return framing.check(fd, os.fstat(fd).st_size, extension), reader
    finally:
        os.close(fd)
        if data is not None:
            path.unlink()


def test_the_films_are_complete_in_a_few_small_reads(films):
    for kind, extension in (("mp4", "mp4"), ("faststart", "mp4"), ("mkv", "mkv"), ("avi", "avi"),
                            ("pcm-silence", "mov")):
        result, reader = _check(films[kind], extension)
        assert result.complete is True, (kind, result)
        assert reader.bytes_read <= 320 * 1024, (kind, reader.bytes_read)


# --- stray bytes after the end -----------------------------------------------------------

# The start of a second movi list header: 16 bytes, 4 of them zeros (the AVI of the issue).
STRAY = b"LIST" + b"\0\0\0\0" + b"movi00dc"


@pytest.mark.parametrize("kind, extension", [("avi", "avi"), ("mp4", "mp4"), ("faststart", "mp4"),
                                             ("mkv", "mkv")])
def test_stray_bytes_after_complete_framing_are_named_not_held(films, kind, extension):
    data = films[kind].read_bytes()
    result, _ = _check(films[kind], extension, data + STRAY)
    assert result.complete is True, result
    assert f"16 stray bytes after its end (at byte {len(data):,}, starting b'LIST\\x00\\x00\\x00\\x00')" \
        in result.reason, result


@pytest.mark.parametrize("kind, extension", [("avi", "avi"), ("mp4", "mp4"), ("mkv", "mkv")])
def test_zeros_after_complete_framing_are_space_not_yet_written(films, kind, extension):
    data = films[kind].read_bytes()
    result, _ = _check(films[kind], extension, data + bytes(70_000))
    assert result.complete is False, result
    assert result.reason.startswith(f"zero-filled after its end: the framing ends at byte {len(data):,}")


@pytest.mark.parametrize("kind, extension", [("avi", "avi"), ("mp4", "mp4"), ("mkv", "mkv")])
def test_a_file_cut_short_is_still_truncated_not_stray(films, kind, extension):
    """What follows complete framing must start no element to be stray: a next element of
    the container cut short (OpenDML's RIFF AVIX, an MP4 box of a known type, a Segment) is
    a truncated file."""
    data = films[kind].read_bytes()
    follow = {"avi": b"RIFF" + struct.pack("<I", 5000) + b"AVIXLIST",
              "mp4": struct.pack(">I", 5000) + b"free" + bytes(8),
              "mkv": b"\x18\x53\x80\x67\x01" + (5000).to_bytes(7, "big") + b"\x1f\x43\xb6\x75"}[kind]
    result, _ = _check(films[kind], extension, data + follow)
    assert result.complete is False and "truncated" in result.reason, result


# --- files without media: one rule -------------------------------------------------------

def test_files_without_media_are_judged_by_their_closing_evidence(films, tmp_path):
    """ffmpeg's MP4 of no frames has its moov, written when it finished: complete at once. An
    HLS init segment's moov (with mvex) is written first, fragments may follow: cannot tell,
    so stability decides. Neither is held for want of media; both get their row."""
    empty, _ = _check(films["no-frames"], "mp4")
    assert empty.complete is True and "lists no samples" in empty.reason, empty
    init, _ = _check(films["init-segment"], "mp4")
    assert init.complete is None and "fragmented" in init.reason, init

    clock = [100.0]
    judge = Judge(Names(["mp4"]), settle_seconds=2.0, clock=lambda: clock[0])
    for name in ("no-frames", "init-segment"):
        shutil.copyfile(films[name], tmp_path / f"{name}.mp4")
    assert judge.judge(str(tmp_path / "no-frames.mp4"), "no-frames.mp4", closed=True).state == FINISHED
    first = judge.judge(str(tmp_path / "init-segment.mp4"), "init-segment.mp4", closed=True)
    assert first.state == HELD and first.reason.startswith("settling"), first
    clock[0] += 2.5
    again = judge.judge(str(tmp_path / "init-segment.mp4"), "init-segment.mp4", closed=False)
    assert again.state == FINISHED, again


# --- media never written -----------------------------------------------------------------

def _zero(data: bytes, start: float, end: float) -> bytes:
    a, b = int(len(data) * start), int(len(data) * end)
    return data[:a] + bytes(b - a) + data[b:]


@pytest.mark.parametrize("kind, extension", [("mp4", "mp4"), ("faststart", "mp4"), ("mkv", "mkv")])
def test_zeros_where_the_tables_place_media_are_unwritten(films, kind, extension):
    """Four streams, each stopped 70% through its quarter (as `lftp pget -n 4` leaves a file,
    on a file system that does not report holes): the index and every size are in place."""
    data = films[kind].read_bytes()
    moov = data.find(b"moov") - 4 if extension == "mp4" else len(data)
    moov_end = moov + struct.unpack(">I", data[moov:moov + 4])[0] if extension == "mp4" else moov
    for quarter in range(4):
        start, end = quarter / 4 + 0.7 / 4, (quarter + 1) / 4
        cut = _zero(data, start, end)
        if int(len(data) * start) < moov_end and int(len(data) * end) > moov:   # keep the index
            cut = cut[:moov] + data[moov:moov_end] + cut[moov_end:]
        result, _ = _check(films[kind], extension, cut)
        assert result.complete is False, (quarter, result)
        assert result.reason.startswith("unwritten:") or "zero" in result.reason, (quarter, result)


@pytest.mark.parametrize("kind, extension", [("faststart", "mp4"), ("mkv", "mkv"), ("avi", "avi")])
def test_a_part_ending_in_zeros_at_a_split_point_is_unwritten(films, kind, extension):
    """The last 8 KB of a stream's part unwritten, whichever of 2 to 8 parts: found by the
    page before each split point, though no chunk or element starts there."""
    data = films[kind].read_bytes()
    for streams in (2, 3, 5, 8):
        point = len(data) // streams
        cut = data[:point - 8192] + bytes(8192) + data[point:]
        result, _ = _check(films[kind], extension, cut)
        assert result.complete is False and result.reason.startswith("unwritten:"), (streams, result)


@pytest.mark.parametrize("kind, extension", [("pcm-silence", "mov"), ("pcm-silence-avi", "avi")])
def test_pcm_silence_is_media_not_unwritten(films, kind, extension):
    """The sound of this file is all zeros, as silence in PCM is: its chunks and split points
    are not probed for zeros (the holes and the framing still are)."""
    data = films[kind].read_bytes()
    assert data.count(0) > len(data) // 4
    result, _ = _check(films[kind], extension)
    assert result.complete is True, result


def test_a_hole_in_a_complete_file_is_unwritten(films, tmp_path):
    """The bytes of a finished film, with a range never written (a hole, as lftp pget and
    rclone leave): the file system says so, whatever the framing read."""
    data = films["faststart"].read_bytes()
    path = tmp_path / "holed.mp4"
    with open(path, "wb") as handle:
        handle.write(data[:300_000])
        handle.seek(600_000)
        handle.write(data[600_000:])
    fd = os.open(path, os.O_RDONLY)
    try:
        hole = written.first_hole(fd, len(data))
        if hole is None:
            pytest.skip(f"{tmp_path} does not report holes")
        result = framing.check(fd, len(data), "mp4")
    finally:
        os.close(fd)
    assert 296_000 <= hole[0] <= 304_096 and 596_000 <= hole[1] <= 600_000, hole
    assert result.complete is False and result.reason.startswith("unwritten:"), result


def test_holes_are_found_in_one_lseek_and_none_in_a_written_file(films):
    fd = os.open(films["mkv"], os.O_RDONLY)
    try:
        assert written.first_hole(fd, os.fstat(fd).st_size) is None
    finally:
        os.close(fd)


def test_a_released_stray_mark_is_not_needed_for_stray_bytes(films, tmp_path):
    """The judge registers a film with stray bytes at once (no release needed)."""
    path = tmp_path / "stray.avi"
    path.write_bytes(films["avi"].read_bytes() + STRAY)
    judge = Judge(Names(["avi"]))
    verdict = judge.judge(str(path), "stray.avi", closed=True)
    assert verdict.state == FINISHED and "stray bytes" in verdict.reason, verdict


def test_split_points_are_where_lftp_and_rclone_split_a_file():
    """lftp pget -n 4 split 1,762,024 bytes at 440,506 (its status file said 1.pos=440506);
    rclone 1.60 splits in parts rounded up to 64 KiB (its log: "2 parts of size 896Ki")."""
    points = written.split_points(1_762_024)
    assert {440_506, 881_012, 1_321_518, 1_762_024} <= set(points)
    assert 896 * 1024 in points
    assert all(0 < point <= 1_762_024 for point in points) and list(points) == sorted(points)


def test_a_codec_that_pads_frames_with_zeros_is_not_taken_for_unwritten(tmp_path):
    """DNxHD pads each frame to a constant size with zeros: black frames are mostly pages of
    zeros (1,500 of 2,300 here). Its sample entry (AVdn) turns the zero probes off."""
    path = tmp_path / "black.mov"
    _ffmpeg("-f", "lavfi", "-i", "color=black:size=1920x1080:rate=25", "-t", "1", "-c:v", "dnxhd",
            "-b:v", "36M", "-pix_fmt", "yuv422p", str(path))
    data = path.read_bytes()
    assert sum(data[at:at + 4096].count(0) == 4096 for at in range(0, len(data) - 4096, 4096)) > 100
    result, _ = _check(path, "mov")
    assert result.complete is True, result
