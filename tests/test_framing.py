"""framing.check against real containers made by ffmpeg, cut, zero-filled and re-framed.

The promise under test: a file framing.check calls complete is complete. Every truncation
of a real file is incomplete or "cannot tell", never complete.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Iterator

import pytest

from tests.support.media import cut_video, killed_ffmpeg, preallocated_video, video_bytes
from vfs_notifier import framing
from vfs_notifier.framing import Framing


@pytest.fixture
def judge_bytes(tmp_path: Path):
    """check() of `data` as a file named .`extension`, also returning the reader's counts."""

    def run(data: bytes, extension: str, size: int | None = None) -> tuple[Framing, framing.Reader]:
        path = tmp_path / f"probe.{extension}"
        path.write_bytes(data)
        fd = os.open(path, os.O_RDONLY)
        try:
            reader = framing.Reader(fd, len(data) if size is None else size)
            return framing.inspect(reader, extension), reader
        finally:
            os.close(fd)

    return run


def verdict(judge_bytes, data: bytes, extension: str) -> Framing:
    return judge_bytes(data, extension)[0]


# --- complete files -------------------------------------------------------------------

@pytest.mark.parametrize("kind, extension", [
    ("mp4", "mp4"), ("mov", "mov"), ("mkv", "mkv"), ("avi", "avi"), ("faststart", "mp4"),
    ("fragmented", "mp4"), ("mp4", "m4v"), ("mkv", "webm"),
])
def test_complete_files_from_ffmpeg_are_complete_in_a_few_reads(judge_bytes, kind, extension):
    result, reader = judge_bytes(video_bytes(kind), extension)
    assert result.complete is True, result
    assert result.reason.startswith("complete")
    assert reader.preads <= 3, reader.preads


def test_streamed_matroska_of_unknown_size_cannot_be_told(judge_bytes):
    result = verdict(judge_bytes, video_bytes("streamed-mkv"), "mkv")
    assert result.complete is None and "unknown size" in result.reason


def test_empty_file_is_incomplete(judge_bytes):
    for extension in ("mp4", "mov", "mkv", "avi"):
        assert verdict(judge_bytes, b"", extension) == Framing(False, "empty")


def test_unknown_extension_cannot_be_told(judge_bytes):
    assert verdict(judge_bytes, video_bytes("mp4"), "flv").complete is None


@pytest.mark.parametrize("extension", ["mp4", "mov", "mkv", "avi"])
def test_text_and_random_bytes_are_not_containers(judge_bytes, extension):
    assert verdict(judge_bytes, b"hello, this is a text file\n" * 10, extension).complete is False
    noise = bytes((i * 7919 + 13) % 251 for i in range(5000))
    assert verdict(judge_bytes, noise, extension).complete is False
    assert verdict(judge_bytes, b"\0" * 64, extension).complete is False


# --- truncation: never complete ---------------------------------------------------------

def _cuts(size: int) -> Iterator[int]:
    """Every length below 200, then every 3rd: each box/element boundary region is hit."""
    yield from range(1, min(size, 200))
    yield from range(200, size, 3)
    yield size - 1


@pytest.mark.parametrize("kind, extension", [
    ("mp4", "mp4"), ("mov", "mov"), ("mkv", "mkv"), ("avi", "avi"), ("faststart", "mp4"),
    ("fragmented", "mp4"), ("streamed-mkv", "mkv"),
])
def test_every_truncation_is_incomplete_or_cannot_tell_never_complete(tmp_path, kind, extension):
    data = video_bytes(kind)
    path = tmp_path / f"whole.{extension}"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    seen = {False: 0, None: 0}
    try:
        for cut in _cuts(len(data)):
            # A Reader that believes the file is `cut` bytes long reads exactly what a
            # truncated copy would hold.
            result = framing.inspect(framing.Reader(fd, cut), extension)
            assert result.complete is not True, (cut, result)
            assert result.reason, cut
            seen[result.complete] += 1
    finally:
        os.close(fd)
    if kind not in ("fragmented", "streamed-mkv"):
        assert seen[None] == 0, f"{kind}: a cut file must be proven incomplete ({seen})"


def test_truncated_mdat_is_reported_in_words(judge_bytes):
    data = video_bytes("mp4")
    result = verdict(judge_bytes, data[:1000], "mp4")
    assert result == Framing(False, "truncated: mdat declares 1,874 bytes, 960 present")


def test_faststart_file_cut_right_after_moov_tiles_but_is_incomplete(judge_bytes):
    data = video_bytes("faststart")
    moov_end = _box_end(data, b"moov")
    for cut in (moov_end, moov_end + 8):        # after moov; after moov + free
        result = verdict(judge_bytes, data[:cut], "mp4")
        assert result == Framing(False, "no mdat box (no media data)"), cut


def test_faststart_mdat_to_end_of_file_cut_short_is_caught_by_the_chunk_offsets(judge_bytes):
    data = bytearray(video_bytes("faststart"))
    mdat = data.index(b"mdat") - 4
    struct.pack_into(">I", data, mdat, 0)                   # size 0: "to the end of the file"
    assert verdict(judge_bytes, bytes(data), "mp4").complete is True
    result = verdict(judge_bytes, bytes(data[:-100]), "mp4")
    assert result.complete is False and "track 1's media data reaches byte 2,860" in result.reason


def test_size_zero_last_box_runs_to_the_end_of_the_file(judge_bytes):
    data = bytearray(video_bytes("mp4"))
    moov = data.index(b"moov") - 4
    struct.pack_into(">I", data, moov, 0)                   # moov is last: size 0 is legal
    assert verdict(judge_bytes, bytes(data), "mp4").complete is True


def test_64_bit_largesize_mdat(judge_bytes):
    data = bytearray(video_bytes("mp4"))
    # ffmpeg leaves an 8-byte free box before mdat for exactly this upgrade: the media
    # data stays where the chunk offsets point.
    free = data.index(b"free") - 4
    mdat_size = struct.unpack_from(">I", data, free + 8)[0]
    data[free:free + 16] = struct.pack(">I4sQ", 1, b"mdat", mdat_size + 8)
    assert verdict(judge_bytes, bytes(data), "mp4").complete is True
    result = verdict(judge_bytes, bytes(data[:1500]), "mp4")
    assert result == Framing(False, f"truncated: mdat declares {mdat_size + 8:,} bytes, "
                             f"{1500 - free:,} present")
    result = verdict(judge_bytes, bytes(data[:free + 12]), "mp4")
    assert result.complete is False and "64-bit size" in result.reason


def test_chunk_offsets_outside_every_mdat_are_incomplete(judge_bytes):
    data = bytearray(video_bytes("mp4"))
    stco = data.index(b"stco")
    struct.pack_into(">I", data, stco + 12, 4)              # the one chunk now points into ftyp
    result = verdict(judge_bytes, bytes(data), "mp4")
    assert result.complete is False and "outside every mdat" in result.reason


def test_moov_without_samples_is_complete_like_any_finished_file(judge_bytes):
    """No media is no evidence either way (README: files without media): the moov, written
    when the writer finished, decides. tests/test_framing_odd.py has ffmpeg's own."""
    data = bytearray(video_bytes("mp4"))
    stco = data.index(b"stco")
    struct.pack_into(">I", data, stco + 8, 0)               # entry count 0
    result = verdict(judge_bytes, bytes(data), "mp4")
    assert result.complete is True and "lists no samples" in result.reason, result


def test_fragmented_without_its_closing_index_cannot_be_told(judge_bytes):
    data = video_bytes("fragmented")
    mfra = _box_offset(data, b"mfra")
    result = verdict(judge_bytes, data[:mfra], "mp4")
    assert result.complete is None and "fragmented" in result.reason
    # Cut inside a fragment: evidently truncated.
    assert verdict(judge_bytes, data[:mfra - 10], "mp4").complete is False


# --- zero-filled preallocation (aria2c) --------------------------------------------------

@pytest.mark.parametrize("kind, extension, keep", [
    ("mp4", "mp4", 1500), ("mov", "mov", 1500), ("mkv", "mkv", 1200), ("avi", "avi", 5000),
    ("fragmented", "mp4", 2000),
])
def test_zero_filled_tail_is_incomplete(judge_bytes, kind, extension, keep):
    data = video_bytes(kind)
    filled = data[:keep] + b"\0" * (len(data) - keep)
    result = verdict(judge_bytes, filled, extension)
    assert result.complete is False, result


@pytest.mark.parametrize("extension", ["mp4", "mov", "mkv", "avi"])
@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9])
def test_the_suites_interrupted_fixtures_are_incomplete(judge_bytes, extension, fraction):
    """Other tests write cut_video() / preallocated_video() as unfinished uploads."""
    assert verdict(judge_bytes, cut_video(extension, fraction), extension).complete is False
    assert verdict(judge_bytes, preallocated_video(extension, fraction), extension).complete is False


def test_zero_fill_at_a_box_boundary_says_preallocated(judge_bytes):
    data = video_bytes("mp4")
    moov = _box_offset(data, b"moov")
    result = verdict(judge_bytes, data[:moov] + b"\0" * (len(data) - moov), "mp4")
    assert result.complete is False and "zero-filled at byte" in result.reason


# --- Matroska ---------------------------------------------------------------------------

def test_matroska_segment_size_past_the_end_is_truncated(judge_bytes):
    data = video_bytes("mkv")
    result = verdict(judge_bytes, data[:-1], "mkv")
    assert result.complete is False and result.reason.startswith("truncated:"), result


def test_unknown_size_segment_cut_inside_an_element_is_incomplete(judge_bytes):
    data = video_bytes("streamed-mkv")
    result = verdict(judge_bytes, data[:-5], "mkv")
    assert result.complete is False and "Cluster" in result.reason, result


def test_unknown_size_segment_starting_with_a_void_is_ffmpeg_stopped(judge_bytes):
    """ffmpeg writing a file reserves the SeekHead's place with a Void and writes it, and the
    Segment's size, at its end: a killed ffmpeg leaves both unwritten."""
    data = bytearray(video_bytes("mkv"))
    segment = data.index(b"\x18\x53\x80\x67")
    data[segment + 4:segment + 12] = b"\x01\xff\xff\xff\xff\xff\xff\xff"   # unknown size
    seekhead = segment + 12
    assert data[seekhead:seekhead + 4] == b"\x11\x4d\x9b\x74"
    size = data[seekhead + 4] & 0x7F                                      # 1-byte size
    data[seekhead:seekhead + 5 + size] = b"\xec" + bytes([0x80 | (size + 3)]) + b"\0" * (size + 3)
    result = verdict(judge_bytes, bytes(data), "mkv")
    assert result.complete is False and "SeekHead were never written" in result.reason


# --- AVI ---------------------------------------------------------------------------------

def _avix(movi_payload: bytes, size: int | None = None) -> bytes:
    movi = b"LIST" + struct.pack("<I", 4 + len(movi_payload)) + b"movi" + movi_payload
    body = b"AVIX" + movi
    return b"RIFF" + struct.pack("<I", len(body) if size is None else size) + body


def test_opendml_avix_chunks_tile_the_file(judge_bytes):
    data = video_bytes("avi")
    frame = b"00dc" + struct.pack("<I", 6) + b"frame!"
    assert verdict(judge_bytes, data + _avix(frame) + _avix(frame * 3), "avi").complete is True
    unfinished = verdict(judge_bytes, data + _avix(frame) + _avix(frame, 0xFFFFFFFF), "avi")
    assert unfinished.complete is False and "never written" in unfinished.reason
    cut = verdict(judge_bytes, data + _avix(frame * 3)[:-4], "avi")
    assert cut.complete is False and cut.reason.startswith("truncated: RIFF 'AVIX'")


def test_avi_riff_size_that_is_wrong_is_incomplete(judge_bytes):
    data = bytearray(video_bytes("avi"))
    for size in (0, 0xFFFFFFFF, len(data) + 100, len(data) - 200):
        struct.pack_into("<I", data, 4, size)
        assert verdict(judge_bytes, bytes(data), "avi").complete is False, size


# --- killed ffmpeg writing straight into the tree ---------------------------------------

@pytest.mark.parametrize("muxer, extension, options", [
    ("mp4", "mp4", ()), ("matroska", "mkv", ()), ("avi", "avi", ()),
    ("mp4", "mp4", ("-g", "5", "-movflags", "+frag_keyframe+empty_moov")),
], ids=["mp4", "mkv", "avi", "fragmented-mp4"])
def test_killed_ffmpeg_output_is_incomplete(tmp_path, muxer, extension, options):
    path = killed_ffmpeg(tmp_path / f"killed.{extension}", muxer, at_least=40_000, options=options)
    fd = os.open(path, os.O_RDONLY)
    try:
        reader = framing.Reader(fd, os.fstat(fd).st_size)
        result = framing.inspect(reader, extension)
    finally:
        os.close(fd)
    assert result.complete is False, result
    assert reader.bytes_read < 256 * 1024, reader.bytes_read


# --- damaged files: an answer, never an exception ---------------------------------------

@pytest.mark.parametrize("kind, extension", [
    ("mp4", "mp4"), ("mkv", "mkv"), ("avi", "avi"), ("fragmented", "mp4"), ("streamed-mkv", "mkv"),
])
def test_damaged_files_get_an_answer_never_an_exception(tmp_path, kind, extension):
    """Flipped bytes anywhere (sizes, types, table entries), sometimes cut too: check() must
    answer with a reason; the service judges whatever lands in the tree."""
    import random
    rng = random.Random(f"{kind}-9")
    base = video_bytes(kind)
    path = tmp_path / f"damaged.{extension}"
    for _ in range(300):
        data = bytearray(base)
        for _ in range(rng.randint(1, 6)):
            data[rng.randrange(len(data))] = rng.choice([0, 1, 0x7F, 0x80, 0xFF, rng.randrange(256)])
        if rng.random() < 0.3:
            data = data[:rng.randrange(1, len(data))]
        path.write_bytes(data)
        fd = os.open(path, os.O_RDONLY)
        try:
            result = framing.check(fd, len(data), extension)
        finally:
            os.close(fd)
        assert result.complete in (True, False, None) and result.reason


# --- small files walked in memory, large ones read box by box: the same answers ---------

class _BytesReader(framing.Reader):
    """A Reader over bytes in memory: thousands of variants without a file each."""

    def __init__(self, data: bytes, size: int) -> None:
        super().__init__(-1, size)
        self.data = data

    def _pread(self, offset: int, length: int) -> bytes:
        self.preads += 1
        return self.data[offset:offset + length]


def _variants(data: bytes, seed: str) -> Iterator[tuple[str, bytes]]:
    """Every cut, a zero-filled tail from every 4th byte, each of the first bytes of the
    chunk tables (size, type, counts, first entries) set to a few values, and 200 copies with
    a few bytes flipped anywhere, some of them cut too."""
    import random
    for cut in range(1, len(data)):
        yield f"cut at {cut}", data[:cut]
    for keep in range(0, len(data), 4):
        yield f"zero-filled from {keep}", data[:keep] + bytes(len(data) - keep)
    for table in (b"stco", b"co64", b"stsc", b"stsz"):
        start = data.find(table) - 4
        for offset in range(start, start + 32) if start >= 0 else ():
            for value in (0, 1, 2, 0x10, 0x7F, 0xFF):
                damaged = bytearray(data)
                damaged[offset] = value
                yield f"{table.decode()} byte {offset - start} set to {value}", bytes(damaged)
    rng = random.Random(seed)
    for number in range(200):
        damaged = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            damaged[rng.randrange(len(damaged))] = rng.choice([0, 1, 8, 0x7F, 0x80, 0xFF, rng.randrange(256)])
        if rng.random() < 0.3:
            damaged = damaged[:rng.randrange(1, len(damaged))]
        yield f"damaged #{number}", bytes(damaged)


def _clip(kind: str) -> bytes:
    """A fixture; an MP4 whose mdat has a 64-bit size ("mdat-64-bit"); or a faststart MP4
    whose mdat runs "to the end of the file" (size 0), so that only its chunk tables can tell
    a cut copy, in a reason that names the byte their last chunk reaches. "...-constant" also
    has the 20-byte stsz of a constant sample size (as PCM audio has), a free box taking the
    place of its table. That made-up size claims fewer bytes than the file holds: copies cut
    past them are complete."""
    if kind == "mdat-64-bit":
        data = bytearray(video_bytes("mp4"))
        free = data.index(b"free") - 4                      # as in test_64_bit_largesize_mdat
        mdat_size = struct.unpack_from(">I", data, free + 8)[0]
        data[free:free + 16] = struct.pack(">I4sQ", 1, b"mdat", mdat_size + 8)
        return bytes(data)
    if not kind.startswith("mdat-to-end"):
        return video_bytes(kind)
    data = bytearray(video_bytes("faststart"))
    struct.pack_into(">I", data, data.index(b"mdat") - 4, 0)
    if kind.endswith("-constant"):
        stsz = data.index(b"stsz") - 4
        size, count = struct.unpack_from(">I", data, stsz)[0], struct.unpack_from(">I", data, stsz + 16)[0]
        data[stsz:stsz + size] = (struct.pack(">I4sIII", 20, b"stsz", 0, 7, count)
                                  + struct.pack(">I4s", size - 20, b"free") + bytes(size - 28))
    return bytes(data)


@pytest.mark.parametrize("kind, extension", [
    ("mp4", "mp4"), ("mov", "mov"), ("faststart", "mp4"), ("fragmented", "mp4"),
    ("mdat-64-bit", "mp4"), ("mdat-to-end", "mp4"), ("mdat-to-end-constant", "mp4"),
    ("mkv", "mkv"), ("streamed-mkv", "mkv"), ("avi", "avi"),
])
def test_walks_in_memory_and_by_reads_give_the_same_answers(monkeypatch, kind, extension):
    """A file or box of at most SMALL_FILE / SMALL_PARENT bytes is read whole and walked in
    memory (the chunk tables too, read in place); a larger one is read a header at a
    time. The bytes decide the answer, never the way they were read: with both limits at 0
    every variant of a real clip is walked by reads, and must get the same verdict and
    reason. A cut copy is never complete."""
    data = _clip(kind)
    whole = framing.inspect(_BytesReader(data, len(data)), extension)
    assert whole.complete is (None if kind == "streamed-mkv" else True), whole
    variants = list(_variants(data, kind))
    in_memory = [framing.inspect(_BytesReader(v, len(v)), extension) for _, v in variants]
    monkeypatch.setattr(framing.reader, "SMALL_PARENT", 0)
    monkeypatch.setattr(framing.reader, "SMALL_FILE", 0)
    for (what, variant), expected in zip(variants, in_memory):
        assert framing.inspect(_BytesReader(variant, len(variant)), extension) == expected, what
        if what.startswith("cut") and not kind.endswith("-constant"):
            assert expected.complete is not True, (what, expected)


# --- bounded reads ---------------------------------------------------------------------

def test_a_large_file_costs_a_few_small_reads(tmp_path):
    """A faststart MP4 whose mdat is made 1 GB (sparse): the check reads a few KB, and finds
    the media it probes unwritten (zeros: a hole) at its first probe."""
    data = bytearray(video_bytes("faststart"))
    mdat = data.index(b"mdat") - 4
    big = (1 << 30) + 8
    struct.pack_into(">I", data, mdat, big)
    path = tmp_path / "big.mp4"
    with open(path, "wb") as handle:
        handle.write(data)
        handle.truncate(mdat + big)
    fd = os.open(path, os.O_RDONLY)
    try:
        reader = framing.Reader(fd, os.fstat(fd).st_size)
        result = framing.inspect(reader, "mp4")
        assert result.complete is False and result.reason.startswith("unwritten: media in mdat")
        assert reader.preads <= 3 and reader.bytes_read <= 12288, (reader.preads, reader.bytes_read)
        assert framing.check(fd, os.fstat(fd).st_size - 1, "mp4").complete is False
    finally:
        os.close(fd)


# --- helpers ----------------------------------------------------------------------------

def _top_boxes(data: bytes) -> Iterator[tuple[bytes, int, int]]:
    offset = 0
    while offset < len(data):
        size, kind = struct.unpack_from(">I4s", data, offset)
        size = len(data) - offset if size == 0 else size
        yield kind, offset, size
        offset += size


def _box_offset(data: bytes, kind: bytes) -> int:
    return next(offset for k, offset, _ in _top_boxes(data) if k == kind)


def _box_end(data: bytes, kind: bytes) -> int:
    return next(offset + size for k, offset, size in _top_boxes(data) if k == kind)


@pytest.mark.parametrize("kind, extension", [("mp4", "mp4"), ("faststart", "mp4"), ("mov", "mov"),
                                             ("mkv", "mkv"), ("avi", "avi"), ("fragmented", "mp4")])
def test_a_file_that_shrinks_while_it_is_read_gets_an_answer_never_complete(judge_bytes, kind, extension):
    """The size comes from an fstat a moment before the reads: a file truncated in between
    (rewritten in place) reads short. The walk answers, never with "complete", never raises."""
    data = video_bytes(kind)
    for cut in range(0, len(data), 37):
        result, _ = judge_bytes(data[:cut], extension, size=len(data))
        assert isinstance(result, Framing) and result.complete is not True, (cut, result)
