"""ffmpeg writing straight into the tree, as a recorder or a transcoder does: a finished
file gets one row; a killed one (no moov in MP4; an unknown-size Segment in Matroska, cut
inside a Cluster) gets none, and writing it again to the end gives one."""

from __future__ import annotations

import struct

import pytest

from tests.uploads.media import live_ffmpeg_command
from tests.uploads.support import assert_no_row, assert_one_row, needs

KILL_AT = 100_000


def top_level_boxes(path) -> list[bytes]:
    """ISO BMFF top-level box types, walked here independently of the service."""
    types, data = [], path.read_bytes()
    offset = 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset:offset + 8])
        types.append(kind)
        if size == 1:
            size = struct.unpack(">Q", data[offset + 8:offset + 16])[0]
        if size == 0:
            break
        offset += size
    return types


def segment_size_is_unknown(path) -> bool:
    """Matroska: the EBML header, then a Segment whose 8-byte size is 'unknown' (all ones)."""
    data = path.read_bytes()[:64]
    assert data[:4] == b"\x1a\x45\xdf\xa3", "not an EBML file"
    header_size = data[4] & 0x7f if data[4] & 0x80 else None
    assert header_size is not None, "unexpected EBML header size width"
    segment = 5 + header_size
    assert data[segment:segment + 4] == b"\x18\x53\x80\x67", "no Segment after the EBML header"
    return data[segment + 4:segment + 12] == b"\x01\xff\xff\xff\xff\xff\xff\xff"


@pytest.mark.parametrize("ending, extra", [("mp4", []), ("mkv", []), ("mp4", ["-movflags", "+faststart"])],
                         ids=["mp4", "mkv", "mp4-faststart"])
@needs("ffmpeg")
def test_ffmpeg_finished_gets_one_row(ending, extra, watched, utree, procs):
    daemon, history = watched
    final = utree.root / f"recording.{ending}"
    command = live_ffmpeg_command(final, seconds=3, readrate=0)
    procs.run([*command[:-1], *extra, command[-1]])
    if ending == "mp4":
        boxes = top_level_boxes(final)
        assert b"moov" in boxes and b"mdat" in boxes, boxes
    if extra:   # faststart rewrote the file in a second pass, moov now before the media
        assert boxes.index(b"moov") < boxes.index(b"mdat"), boxes
    assert_one_row(history, final)


@pytest.mark.parametrize("ending", ["mp4", "mkv"])
@needs("ffmpeg")
def test_ffmpeg_killed_midway_gets_no_row(ending, watched, utree, procs):
    daemon, history = watched
    final = utree.root / f"live.{ending}"
    # 4x real time: Matroska writes its first 5 s Cluster after about 1.3 s.
    proc = procs.spawn(live_ffmpeg_command(final, seconds=20, readrate=4))
    procs.interrupt(proc, lambda: final.stat().st_size if final.exists() else 0, KILL_AT)
    if ending == "mp4":
        assert b"moov" not in top_level_boxes(final), "the killed MP4 has a moov: not interrupted"
    else:
        assert segment_size_is_unknown(final), "the killed Matroska file has its final Segment size"
    assert_no_row(history, utree.root, f"ffmpeg {ending}, killed", resumed_later=True)
    procs.run(live_ffmpeg_command(final, seconds=3, readrate=0))   # recorded again, to the end
    assert_one_row(history, final)
