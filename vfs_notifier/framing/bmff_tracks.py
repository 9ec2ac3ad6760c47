"""ISO BMFF sample tables: where a track's media lies, from stco/co64, stsc and stsz.

Only the chunk at the highest offset of each track is located (its offset, plus its
samples' sizes where the tables allow it cheaply): the file is complete only if it lies
inside an mdat. That chunk, and chunks spread over the table, are noted as media that must
not be zeros (written.unwritten_media), for video and sound that is never zeros when written.
"""

from __future__ import annotations

import bisect
import operator
import struct
from typing import Optional

from .bmff_boxes import Box, read, walk
from .reader import Decided, Reader, fourcc_name, incomplete, n
from .written import MIN_SPLIT_FILE, PROBE_BYTES

MAX_TABLE_BYTES = 1 << 20      # a chunk-offset table larger than this: only its last entry is read
MAX_SAMPLES_PER_CHUNK = 1 << 16
_U32 = struct.Struct(">I")
_U32_PAIR = struct.Struct(">II")


def _full_box(reader: Reader, data: Optional[bytes], base: int, box: Box,
              fields: struct.Struct) -> tuple[int, ...]:
    """The `fields` after a full box's version and flags; malformed if the box is shorter."""
    kind, offset, header, size = box
    at, length = offset + header + 4, fields.size
    if data is not None and base <= at and at + length <= base + len(data):
        if at + length > offset + size:
            raise _too_short(kind, offset)
        return fields.unpack_from(data, at - base)
    got = reader.read(at, length)
    if len(got) < length or at + length > offset + size:
        raise _too_short(kind, offset)
    return fields.unpack(got)


def _too_short(kind: bytes, offset: int) -> Decided:
    return incomplete(f"{fourcc_name(kind)} at byte {n(offset)} is too short")


def _table(reader: Reader, data: Optional[bytes], base: int, offset: int, count: int,
           width: int) -> tuple[int, ...]:
    """`count` big-endian integers of `width` bytes (4 or 8) at `offset` (the caller made sure
    their box holds them)."""
    fmt = f">{count}{'Q' if width == 8 else 'I'}"
    if data is not None and base <= offset and offset + count * width <= base + len(data):
        return struct.unpack_from(fmt, data, offset - base)
    return struct.unpack(fmt, reader.read(offset, count * width))


_TO_STBL = (("trak", b"mdia"), ("mdia", b"minf"), ("minf", b"stbl"))
# Media probed for zeros (written.unwritten_media): video and sound, but not the sample
# formats whose written media may be all zeros: PCM silence, uncompressed black, and the
# codecs whose frames ffmpeg was seen to pad with zeros (DNxHD/DNxHR, Motion JPEG, MPEG-2:
# IMX, XDCAM, HDV).
_PROBED_HANDLERS = frozenset({b"vide", b"soun"})
_ZEROS_MAY_BE_MEDIA = frozenset({
    b"lpcm", b"sowt", b"twos", b"raw ", b"NONE", b"in24", b"in32", b"fl32", b"fl64", b"ipcm",
    b"fpcm", b"AVdn", b"AVdh", b"mx3p", b"mx4p", b"mx5p", b"mx3n", b"mx4n", b"mx5n", b"m2v1",
    b"mp2v", b"xdv1", b"xdv2", b"xdv3", b"xdv4", b"xdv5", b"xdv6", b"xdv7", b"xdv8", b"xdv9",
    b"xdva", b"xdvb", b"xdvc", b"xdvd", b"xdve", b"xdvf", b"xd51", b"xd54", b"xd55", b"xd59",
    b"xd5a", b"xd5b", b"xd5c", b"xd5d", b"xd5e", b"xd5f", b"hdv1", b"hdv2", b"hdv3", b"hdv4",
    b"hdv5", b"hdv6", b"hdv7", b"hdv8", b"hdv9", b"hdva", b"jpeg", b"mjpa", b"mjpb", b"AVDJ"})
SPREAD = 8              # chunk starts probed per track, spread over its chunk table
CHUNK_PROBE = 64        # bytes probed at a chunk start whose length the tables do not give


def track_extent(reader: Reader, trak: Box, data: Optional[bytes], base: int,
                 number: int = 0) -> Optional[tuple[int, int]]:
    """(start, end) of the track's chunk at the highest offset, or None for a track without
    samples. The end counts the sizes of that chunk's samples where the tables allow. The
    chunks whose media must not be zeros are noted in reader.media (track `number`)."""
    box = trak
    probed = False
    # Down to stbl, each walk stopping at the box it looks for: what follows it in its
    # parent says nothing about the tables (and is not judged).
    for parent, kind in _TO_STBL:
        _, offset, header, length = box
        boxes, data, base = walk(reader, data, base, offset + header, offset + length, parent, kind)
        if not boxes or boxes[-1][0] != kind:
            return None
        if kind == b"minf":
            probed = _handler(reader, data, base, boxes) in _PROBED_HANDLERS
        box = boxes[-1]
    _, offset, header, length = box
    boxes, data, base = walk(reader, data, base, offset + header, offset + length, "stbl")
    tables = {box[0]: box for box in boxes}          # the last of a type counts
    if _sample_entry(reader, data, base, tables.get(b"stsd")) in _ZEROS_MAY_BE_MEDIA:
        probed, reader.zeros_may_be_media = False, True
    return _extent_from_tables(reader, data, base, tables, f"track {number}" if probed else "")


def _handler(reader: Reader, data: Optional[bytes], base: int, boxes: list[Box]) -> bytes:
    """The handler type (vide, soun, text...) of the mdia whose children are `boxes`."""
    for kind, offset, header, size in boxes:
        if kind == b"hdlr" and size >= header + 12:
            return read(reader, data, base, offset + header + 8, 4)
    return b""


def _sample_entry(reader: Reader, data: Optional[bytes], base: int, stsd: Optional[Box]) -> bytes:
    """The format of the first sample entry (avc1, mp4a, lpcm...) of an stsd."""
    if stsd is None or stsd[3] < stsd[2] + 16:
        return b""
    return read(reader, data, base, stsd[1] + stsd[2] + 12, 4)


def _extent_from_tables(reader: Reader, data: Optional[bytes], base: int,
                        tables: dict[bytes, Box], track: str) -> Optional[tuple[int, int]]:
    """track_extent() from the stbl's tables: read in place from `data` where it holds them
    (a small stbl, read whole), else by reads. `track`: its name, when its media is probed."""
    chunks = tables.get(b"stco") or tables.get(b"co64")
    if chunks is None:
        return None
    kind, offset, header, length = chunks
    body = offset + header
    width = 8 if kind == b"co64" else 4
    (count,) = _full_box(reader, data, base, chunks, _U32)
    if count == 0:
        return None
    if body + 8 + count * width > offset + length:
        raise incomplete(f"{fourcc_name(kind)} at byte {n(offset)} lists more chunks "
                         f"than it holds")
    # Chunks spread over the file: for a file large enough to be downloaded in parts.
    spread = (sorted({count * i // SPREAD for i in range(SPREAD)})
              if track and reader.size >= MIN_SPLIT_FILE else [])
    if count * width <= MAX_TABLE_BYTES:
        offsets = _table(reader, data, base, body + 8, count, width)
        start = max(offsets)
        index = offsets.index(start)                 # the first of equals: 0-based chunk number
        starts = [offsets[i] for i in spread]
    else:
        index = count - 1
        (start,) = _table(reader, data, base, body + 8 + index * width, 1, width)
        starts = [_table(reader, data, base, body + 8 + i * width, 1, width)[0] for i in spread]
    length = _chunk_bytes(reader, data, base, tables, index + 1)
    if track:
        media = reader.media
        media.append((start, length or CHUNK_PROBE, f"{track}'s last chunk"))
        if length > PROBE_BYTES:        # its last page too: a range fills from its start
            tail = max(start, start + length - PROBE_BYTES)
            media.append((tail, start + length - tail, f"the end of {track}'s last chunk"))
        media.extend((at, CHUNK_PROBE, f"a chunk of {track}") for at in starts if at != start)
    return start, start + max(length, 1)


def _chunk_bytes(reader: Reader, data: Optional[bytes], base: int, tables: dict[bytes, Box],
                 chunk: int) -> int:
    """How many bytes chunk number `chunk` (1-based) holds, from stsc and stsz; 0 when the
    tables cannot say cheaply (then only the chunk's first byte is checked)."""
    stsc, stsz = tables.get(b"stsc"), tables.get(b"stsz")
    if stsc is None or stsz is None:
        return 0
    (entries,) = _full_box(reader, data, base, stsc, _U32)
    stsc_body, stsc_end = stsc[1] + stsc[2], stsc[1] + stsc[3]
    if entries == 0 or entries * 12 > MAX_TABLE_BYTES or stsc_body + 8 + entries * 12 > stsc_end:
        return 0
    runs = _table(reader, data, base, stsc_body + 8, entries * 3, 4)
    before, per_chunk = _samples_before(runs[0::3], runs[1::3], chunk)
    sample_size, sample_count = _full_box(reader, data, base, stsz, _U32_PAIR)
    if before < 0 or per_chunk <= 0 or before + per_chunk > sample_count:
        return 0
    if sample_size:
        return per_chunk * sample_size
    stsz_body, stsz_end = stsz[1] + stsz[2], stsz[1] + stsz[3]
    if per_chunk > MAX_SAMPLES_PER_CHUNK or stsz_body + 12 + sample_count * 4 > stsz_end:
        return 0
    return sum(_table(reader, data, base, stsz_body + 12 + before * 4, per_chunk, 4))


def _samples_before(firsts: tuple[int, ...], samples: tuple[int, ...], chunk: int) -> tuple[int, int]:
    """(samples before chunk number `chunk`, samples in it) by stsc's runs: run i holds
    samples[i] per chunk from chunk firsts[i] on. The run of `chunk` is the first followed by
    a run starting past it (or the last run)."""
    if len(firsts) == 1:
        return (chunk - firsts[0]) * samples[0], samples[0]
    if all(map(operator.le, firsts, firsts[1:])):
        # Runs in order, as writers write them: a long film has thousands, too many for a
        # loop in Python on every check, so the run is found by bisection and the samples of
        # the runs before it summed in C. The same numbers as the loop below.
        run = bisect.bisect_right(firsts, chunk, 1) - 1
        before = sum(map(operator.mul, map(operator.sub, firsts[1:run + 1], firsts[:run]), samples[:run]))
        return before + (chunk - firsts[run]) * samples[run], samples[run]
    before = 0
    for run, first in enumerate(firsts):
        following = firsts[run + 1] if run + 1 < len(firsts) else None
        if following is None or chunk < following:
            return before + (chunk - first) * samples[run], samples[run]
        before += (following - first) * samples[run]
    return before, 0       # no runs (the caller has at least one)

