"""Container framing: can a video file's own structure prove it complete?

A file's inotify events and timestamps cannot tell a finished upload from an interrupted one
(an interrupted `rsync --partial` renames its half file into place; aria2c preallocates the
full size). The container can: every format we register declares its own length. This module
walks only that framing, with a handful of small positioned reads (a file of at most
SMALL_FILE bytes in one read, walked in memory; never the whole of a larger one):

- ISO BMFF (mp4, m4v, mov): the top-level boxes tile the file exactly; a `moov` and an `mdat`
  are present; the last chunk of every track (its offset from stco/co64 plus its samples'
  sizes from stsc/stsz) lies inside an mdat. Fragmented files (moof/mvex) are complete only
  with their closing `mfra` index; otherwise the framing cannot tell.
- Matroska (mkv, webm): the EBML header, then a Segment whose declared size ends at the end
  of the file, its children tiling it. A Segment of unknown size (live muxers) is walked to
  the end: an element cut short proves it incomplete, otherwise the framing cannot tell.
- AVI: RIFF 'AVI ' then OpenDML 'AVIX' chunks tile the file; each declares a real size.

Pure: the answer depends only on the bytes read. `complete` is True (proven complete), False
(proven incomplete, with the reason in words) or None (cannot tell: fall back to stability).
"""

from __future__ import annotations

import bisect
import operator
import os
import struct
from typing import NamedTuple, Optional

BLOCK = 4096                   # reads are served from 4 KB blocks: a small file costs one pread
MAX_TABLE_BYTES = 1 << 20      # a chunk-offset table larger than this: only its last entry is read
MAX_ELEMENTS = 20_000          # boxes / elements / chunks walked per file, at most
MAX_SAMPLES_PER_CHUNK = 1 << 16
SMALL_PARENT = 16384           # a box this small is read whole and walked in memory
SMALL_FILE = SMALL_PARENT      # a file this small is read whole, in one pread, and walked in memory
# Children of a Segment of known size walked, at most: enough for a whole small file and the
# head of a large one; past them the Segment's declared size vouches for the rest (walking
# every Cluster of a film would cost one disk seek each).
MAX_SEGMENT_CHILDREN = 64


SHRANK = "shrank while its framing was read (rewritten in place?)"


class Framing(NamedTuple):
    complete: Optional[bool]   # True: proven complete; False: proven incomplete; None: cannot tell
    reason: str


class _Decided(Exception):
    """Unwinds a walk with its answer."""

    def __init__(self, complete: Optional[bool], reason: str) -> None:
        super().__init__(reason)
        self.framing = Framing(complete, reason)


def _incomplete(reason: str) -> _Decided:
    return _Decided(False, reason)


class Reader:
    """Positioned reads of one open file, served from a few cached 4 KB blocks and counted
    (tests hold the module to "a handful of small reads")."""

    def __init__(self, fd: int, size: int) -> None:
        self.fd, self.size = fd, size
        self.preads = 0
        self.bytes_read = 0
        self._blocks: dict[int, bytes] = {}

    def read(self, offset: int, length: int) -> bytes:
        """Up to `length` bytes at `offset`; fewer at the end of the file."""
        end = offset + length
        if end > self.size:
            end = self.size
        if end <= offset:
            return b""
        if end - offset > BLOCK:
            return self._pread(offset, end - offset)
        first, last = offset // BLOCK, (end - 1) // BLOCK
        if first == last:
            start = offset - first * BLOCK
            return self._block(first)[start:start + end - offset]
        data = self._block(first) + self._block(last)
        start = offset - first * BLOCK
        return data[start:start + end - offset]

    def _block(self, index: int) -> bytes:
        block = self._blocks.get(index)
        if block is None:
            if len(self._blocks) >= 16:
                self._blocks.clear()
            block = self._blocks[index] = self._pread(index * BLOCK, BLOCK)
        return block

    def _pread(self, offset: int, length: int) -> bytes:
        self.preads += 1
        data = os.pread(self.fd, length, offset)
        self.bytes_read += len(data)
        if len(data) < min(length, self.size - offset):
            # Shorter than the size taken a moment ago: truncated since (rewritten in place).
            # What was read no longer describes the file: no answer, stability decides.
            raise _Decided(None, SHRANK)
        return data


def check(fd: int, size: int, extension: str) -> Framing:
    """Judge the container of the open file `fd` (`size` bytes, from its fstat/lstat) by the
    rules of `extension` (lower case, no dot: mp4/mov/mkv/avi; m4v and the like: mp4 rules)."""
    return inspect(Reader(fd, size), extension)


def inspect(reader: Reader, extension: str) -> Framing:
    """check() on a given Reader (tests count its reads)."""
    walker = _WALKERS.get(extension.lower().lstrip("."))
    if reader.size <= 0:
        return Framing(False, "empty")
    if walker is None:
        return Framing(None, f"no framing rules for .{extension} files")
    try:
        return walker(reader)
    except _Decided as decided:
        return decided.framing
    except OSError as err:
        return Framing(None, f"cannot read: {err.strerror or err}")
    except struct.error:   # a table cut short by a shrinking file, met before its read was
        return Framing(None, SHRANK)


def _n(number: int) -> str:
    return f"{number:,}"


# --- ISO BMFF: MP4, MOV -----------------------------------------------------------------
#
# A box is a plain tuple, walked in a plain loop: a small clip has ~25 boxes on the way to its
# chunk tables and a cold start judges 100,000 files, so per-box objects, generators and
# properties would cost more than the parsing. A parent read whole (a small file, or a box of
# at most SMALL_PARENT bytes) is kept as a buffer `data`, the file's bytes from offset `base`:
# the walks below it and their tables are served from it, so each byte is read once.

_Box = tuple[bytes, int, int, int]      # (type, offset, header length, size)

TOP_LEVEL_BOXES = {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"uuid", b"pnot", b"PICT",
                   b"meta", b"moof", b"mfra", b"sidx", b"styp", b"emsg", b"prft", b"pdin", b"ssix",
                   b"junk", b"jP  ", b"udta"}


def _box_name(kind: bytes) -> str:
    return kind.decode("latin-1")


_PRINTABLE = bytes(range(0x20, 0x7F))
_BOX_TYPE_BYTES = _PRINTABLE + b"\xa9"      # © (0xA9) starts Apple's metadata box types
_BOX_HEAD = struct.Struct(">I4s")
_LARGE_SIZE = struct.Struct(">Q")
_U32 = struct.Struct(">I")
_U32_PAIR = struct.Struct(">II")
_MFRO = struct.Struct(">I4sII")
# The types of every clip, valid by the rule above (filtered so): a set lookup is cheaper
# than the translate() that judges any other type.
_COMMON_TYPES = frozenset(kind for kind in (
    b"ftyp", b"free", b"mdat", b"moov", b"mvhd", b"trak", b"tkhd", b"edts", b"elst", b"mdia",
    b"mdhd", b"hdlr", b"minf", b"vmhd", b"smhd", b"dinf", b"stbl", b"stsd", b"stts", b"stss",
    b"ctts", b"stsc", b"stsz", b"stco", b"co64", b"sgpd", b"sbgp", b"udta", b"meta", b"wide",
    b"gmhd", b"tref", b"mvex", b"moof", b"mfra") if not kind.translate(None, _BOX_TYPE_BYTES))
# A buffer is at most SMALL_PARENT bytes and a box at least 8: a walk in memory cannot reach
# MAX_ELEMENTS, so only the walk by reads counts its boxes.
assert SMALL_PARENT // 8 < MAX_ELEMENTS


def _printable_fourcc(kind: bytes) -> bool:
    return len(kind) == 4 and not kind.translate(None, _PRINTABLE)


def _not_a_type(kind: bytes, offset: int, what: str) -> _Decided:
    if kind.strip(b"\0") == b"":
        return _incomplete(f"zero-filled at byte {_n(offset)}: space preallocated and not yet "
                           f"written (an unfinished download?)")
    return _incomplete(f"no valid {what} at byte {_n(offset)} ({kind!r} is not a type)")


def _header_cut(offset: int) -> _Decided:
    return _incomplete(f"truncated: a box header at byte {_n(offset)} is cut short")


def _large_size_cut(kind: bytes, offset: int) -> _Decided:
    return _incomplete(f"truncated: the 64-bit size of {_box_name(kind)} at byte {_n(offset)} "
                       f"is cut short")


def _impossible_size(kind: bytes, offset: int, size: int) -> _Decided:
    return _incomplete(f"{_box_name(kind)} at byte {_n(offset)} declares an impossible size "
                       f"of {_n(size)} bytes")


def _overrun(kind: bytes, offset: int, size: int, end: int, file_size: int, parent: str) -> _Decided:
    if end == file_size:
        return _incomplete(f"truncated: {_box_name(kind)} declares {_n(size)} bytes, "
                           f"{_n(end - offset)} present")
    return _incomplete(f"{_box_name(kind)} at byte {_n(offset)} overruns its parent {parent}")


def _read(reader: Reader, data: Optional[bytes], base: int, offset: int, length: int) -> bytes:
    """reader.read(offset, length), from the buffer when it holds all of those bytes."""
    if data is not None and base <= offset and offset + length <= base + len(data):
        return data[offset - base:offset - base + length]
    return reader.read(offset, length)


def _walk(reader: Reader, data: Optional[bytes], base: int, start: int, end: int, parent: str,
          stop: bytes = b"") -> tuple[list[_Box], Optional[bytes], int]:
    """The boxes tiling [start, end), or up to the first of type `stop`; a box that is cut
    short or malformed decides the walk. Also the buffer they were walked in (None: read box
    by box), for the walks below them."""
    if data is not None and base <= start and end <= base + len(data):
        limit = end
    elif end - start > SMALL_PARENT:
        return _walk_reads(reader, start, end, parent, stop), None, 0
    else:
        # A small parent (a moov of a short clip) is read once and walked in memory.
        data, base = reader.read(start, end - start), start
        # The read comes back short only if the file shrank since its size was taken: the
        # headers past it are then cut short, as reading them one by one would find.
        limit = min(end, start + len(data))
    boxes: list[_Box] = []
    append, unpack_head = boxes.append, _BOX_HEAD.unpack_from
    last_header = limit - 8          # the last offset where a whole header can be read
    offset = start
    while offset <= last_header:
        size, kind = unpack_head(data, offset - base)
        if kind not in _COMMON_TYPES and kind.translate(None, _BOX_TYPE_BYTES):
            raise _not_a_type(kind, offset, "box")
        if size >= 8:
            append((kind, offset, 8, size))
        else:               # rare: a 64-bit size, "to the end", or no size at all
            size, header = _odd_size(data, base, offset, limit, end, kind, size)
            append((kind, offset, header, size))
        offset += size
        if offset > end:
            raise _overrun(kind, offset - size, size, end, reader.size, parent)
        if kind == stop:
            break
    else:
        if offset < end:
            raise _header_cut(offset)
    return boxes, data, base


def _odd_size(data: bytes, base: int, offset: int, limit: int, end: int, kind: bytes,
              size: int) -> tuple[int, int]:
    """(size, header length) of a box whose 32-bit size field is below 8."""
    if size == 1:
        if offset + 16 > limit:
            raise _large_size_cut(kind, offset)
        size, header = _LARGE_SIZE.unpack_from(data, offset - base + 8)[0], 16
        if size < header:
            raise _impossible_size(kind, offset, size)
        return size, header
    if size == 0:
        return end - offset, 8           # "to the end of the file" (or of the parent)
    raise _impossible_size(kind, offset, size)


def _walk_reads(reader: Reader, start: int, end: int, parent: str, stop: bytes) -> list[_Box]:
    """_walk for a parent too large to read whole: one 16-byte read per header,
    served from the reader's cached blocks; at most MAX_ELEMENTS boxes."""
    boxes: list[_Box] = []
    offset = start
    while offset < end:
        if len(boxes) >= MAX_ELEMENTS:
            raise _Decided(None, f"more than {_n(MAX_ELEMENTS)} boxes in {parent}: not walked to the end")
        head = reader.read(offset, 16)
        if len(head) < 8 or offset + 8 > end:
            raise _header_cut(offset)
        size, kind = _BOX_HEAD.unpack_from(head)
        if kind.translate(None, _BOX_TYPE_BYTES):
            raise _not_a_type(kind, offset, "box")
        header = 8
        if size == 1:
            if len(head) < 16 or offset + 16 > end:
                raise _large_size_cut(kind, offset)
            size, header = _LARGE_SIZE.unpack_from(head, 8)[0], 16
        elif size == 0:
            size = end - offset
        if size < header:
            raise _impossible_size(kind, offset, size)
        if offset + size > end:
            raise _overrun(kind, offset, size, end, reader.size, parent)
        boxes.append((kind, offset, header, size))
        if kind == stop:
            break
        offset += size
    return boxes


def _bmff(reader: Reader) -> Framing:
    size = reader.size
    top, top_data, top_base = _walk(reader, None, 0, 0, size, "the file")
    if top[0][0] not in TOP_LEVEL_BOXES:
        raise _incomplete(f"not an MP4/QuickTime file: it starts with {top[0][0]!r}")
    moov: Optional[_Box] = None
    mdats: list[_Box] = []
    fragmented = False
    for box in top:
        kind = box[0]
        if kind == b"moov":
            if moov is None:
                moov = box
        elif kind == b"mdat":
            mdats.append(box)
        elif kind == b"moof":
            fragmented = True
    if moov is None:
        return Framing(False, "no moov box (the index a writer adds at its end)")
    _, offset, header, length = moov
    children, data, base = _walk(reader, top_data, top_base, offset + header, offset + length, "moov")
    traks = []
    for box in children:
        if box[0] == b"trak":
            traks.append(box)
        elif box[0] == b"mvex":
            fragmented = True
    if fragmented:
        return _fragmented(reader, top, top_data, top_base)
    if not mdats:
        return Framing(False, "no mdat box (no media data)")
    tracks = 0
    for number, trak in enumerate(traks, start=1):
        extent = _track_extent(reader, trak, data, base)
        if extent is None:
            continue
        tracks += 1
        first, end = extent
        if end > size:
            return Framing(False, f"truncated: track {number}'s media data reaches byte {_n(end)}, "
                           f"the file has {_n(size)}")
        for _, at, head, length in mdats:
            if at + head <= first and end <= at + length:
                break
        else:
            return Framing(False, f"track {number}'s last chunk (bytes {_n(first)} to {_n(end)}) "
                           f"lies outside every mdat box")
    if not tracks:
        return Framing(False, "moov lists no samples (nothing was recorded)")
    return Framing(True, f"complete: {len(top)} boxes tile {size:,} bytes; moov and the "
                   f"media data of {tracks} track(s) present")


def _fragmented(reader: Reader, top: list[_Box], data: Optional[bytes], base: int) -> Framing:
    kind, offset, _, size = top[-1]
    if kind == b"mfra" and size >= 24:
        # The closing index ends with mfro, which repeats mfra's size: a writer's last words.
        tail = _read(reader, data, base, offset + size - 16, 16)
        if len(tail) == 16:
            mfro_size, mfro, _, mfra_size = _MFRO.unpack(tail)
            if mfro_size == 16 and mfro == b"mfro" and mfra_size == size:
                return Framing(True, f"complete: fragmented MP4, {len(top)} boxes tile "
                               f"{_n(reader.size)} bytes and end with its mfra index")
    return Framing(None, f"fragmented MP4: {len(top)} boxes tile {_n(reader.size)} bytes but "
                   f"nothing marks the last fragment")


def _full_box(reader: Reader, data: Optional[bytes], base: int, box: _Box,
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


def _too_short(kind: bytes, offset: int) -> _Decided:
    return _incomplete(f"{_box_name(kind)} at byte {_n(offset)} is too short")


def _table(reader: Reader, data: Optional[bytes], base: int, offset: int, count: int,
           width: int) -> tuple[int, ...]:
    """`count` big-endian integers of `width` bytes (4 or 8) at `offset` (the caller made sure
    their box holds them)."""
    fmt = f">{count}{'Q' if width == 8 else 'I'}"
    if data is not None and base <= offset and offset + count * width <= base + len(data):
        return struct.unpack_from(fmt, data, offset - base)
    return struct.unpack(fmt, reader.read(offset, count * width))


_TO_STBL = (("trak", b"mdia"), ("mdia", b"minf"), ("minf", b"stbl"))


def _track_extent(reader: Reader, trak: _Box, data: Optional[bytes],
                  base: int) -> Optional[tuple[int, int]]:
    """(start, end) of the track's chunk at the highest offset, or None for a track without
    samples. The end counts the sizes of that chunk's samples where the tables allow."""
    box = trak
    # Down to stbl, each walk stopping at the box it looks for: what follows it in its
    # parent says nothing about the tables (and is not judged).
    for parent, kind in _TO_STBL:
        _, offset, header, length = box
        boxes, data, base = _walk(reader, data, base, offset + header, offset + length, parent, kind)
        if not boxes or boxes[-1][0] != kind:
            return None
        box = boxes[-1]
    _, offset, header, length = box
    boxes, data, base = _walk(reader, data, base, offset + header, offset + length, "stbl")
    tables = {box[0]: box for box in boxes}          # the last of a type counts
    return _extent_from_tables(reader, data, base, tables)


def _extent_from_tables(reader: Reader, data: Optional[bytes], base: int,
                        tables: dict[bytes, _Box]) -> Optional[tuple[int, int]]:
    """_track_extent from the stbl's tables: read in place from `data` where it holds them
    (a small stbl, read whole), else by reads."""
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
        raise _incomplete(f"{_box_name(kind)} at byte {_n(offset)} lists more chunks "
                          f"than it holds")
    if count * width <= MAX_TABLE_BYTES:
        offsets = _table(reader, data, base, body + 8, count, width)
        start = max(offsets)
        index = offsets.index(start)                 # the first of equals: 0-based chunk number
    else:
        index = count - 1
        (start,) = _table(reader, data, base, body + 8 + index * width, 1, width)
    length = _chunk_bytes(reader, data, base, tables, index + 1)
    return start, start + max(length, 1)


def _chunk_bytes(reader: Reader, data: Optional[bytes], base: int, tables: dict[bytes, _Box],
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


# --- Matroska / WebM (EBML) -------------------------------------------------------------
#
# An element is read as (id, header length, size or None for unknown), from the whole file
# when it was read at once (a small file), else from a 12-byte read at its offset.

EBML_HEADER, SEGMENT, CLUSTER, VOID, CRC32 = 0x1A45DFA3, 0x18538067, 0x1F43B675, 0xEC, 0xBF
SEGMENT_CHILDREN = {0x114D9B74: "SeekHead", 0x1549A966: "Info", 0x1654AE6B: "Tracks",
                    0x1C53BB6B: "Cues", 0x1941A469: "Attachments", 0x1043A770: "Chapters",
                    0x1254C367: "Tags", CLUSTER: "Cluster", VOID: "Void", CRC32: "CRC-32"}
NAMES = {**SEGMENT_CHILDREN, EBML_HEADER: "the EBML header", SEGMENT: "Segment"}
# A variable-length integer's length from its first byte (its leading zeros + 1; 9: invalid),
# and the all-ones value that means "unknown size" for each length.
_VINT_LENGTH = bytes([9] + [9 - byte.bit_length() for byte in range(1, 256)])
_UNKNOWN_SIZE = tuple((1 << (7 * length)) - 1 for length in range(9))


def _whole(reader: Reader) -> Optional[bytes]:
    """The whole file, in one pread, when it is small (walked in memory, rather than one
    pread per 4 KB block its elements lie in); None for a larger one."""
    return reader.read(0, reader.size) if reader.size <= SMALL_FILE else None


def _element_name(ident: int) -> str:
    return NAMES.get(ident, f"element 0x{ident:X}")


def _element(reader: Reader, data: Optional[bytes], offset: int) -> tuple[int, int, Optional[int]]:
    """(id, header length, size; None: unknown size) of the element at `offset`."""
    if data is None:
        head, pos = reader.read(offset, 12), 0
    else:
        head, pos = data, offset
    present = len(head) - pos        # the checks below ask for at most 12 bytes
    if present <= 0:
        raise _incomplete(f"truncated: an element header at byte {_n(offset)} is missing")
    id_length = _VINT_LENGTH[head[pos]]
    if id_length > 4:
        if head[pos:pos + 4].strip(b"\0") == b"":
            raise _not_a_type(head[pos:pos + 4], offset, "element")
        raise _incomplete(f"no valid element at byte {_n(offset)} (bad element ID)")
    if present <= id_length:
        raise _incomplete(f"truncated: the element header at byte {_n(offset)} is cut short")
    size_length = _VINT_LENGTH[head[pos + id_length]]
    if size_length > 8:
        raise _incomplete(f"no valid element size at byte {_n(offset + id_length)}")
    header = id_length + size_length
    if present < header:
        raise _incomplete(f"truncated: the element header at byte {_n(offset)} is cut short")
    # The ID keeps its length marker; the size drops it: its 7 bits a byte are the mask.
    whole = int.from_bytes(head[pos:pos + header], "big")
    mask = _UNKNOWN_SIZE[size_length]
    size = whole & mask
    return whole >> (size_length << 3), header, None if size == mask else size


def _fits(reader: Reader, ident: int, offset: int, header: int, size: int, end: int) -> int:
    """The end of a known-size element, which must lie within `end`."""
    stop = offset + header + size
    if stop > end:
        name = _element_name(ident)
        if end == reader.size:
            raise _incomplete(f"truncated: {name} at byte {_n(offset)} declares "
                              f"{_n(size)} bytes, {_n(max(0, end - offset - header))} present")
        raise _incomplete(f"{name} at byte {_n(offset)} overruns its parent")
    return stop


def _no_size(ident: int, offset: int, where: str = "") -> _Decided:
    return _incomplete(f"{_element_name(ident)} at byte {_n(offset)}{where} has no size")


def _matroska(reader: Reader) -> Framing:
    data = _whole(reader)
    element = _element(reader, data, 0)
    if element[0] != EBML_HEADER:
        raise _incomplete("not a Matroska file: no EBML header at its start")
    offset, segments, walked_all = 0, 0, True
    while offset < reader.size:
        ident, header, size = element if offset == 0 else _element(reader, data, offset)
        if ident == SEGMENT:
            segments += 1
            if size is None:
                return _unknown_size_segment(reader, data, offset + header, [MAX_ELEMENTS])
            end = _fits(reader, ident, offset, header, size, reader.size)
            walked_all &= _walk_segment(reader, data, offset + header, end, [MAX_SEGMENT_CHILDREN])
            offset = end
        elif ident in (EBML_HEADER, VOID, CRC32):
            if size is None:
                raise _no_size(ident, offset)
            offset = _fits(reader, ident, offset, header, size, reader.size)
        else:
            raise _incomplete(f"{_element_name(ident)} at byte {_n(offset)} where a Segment belongs")
    if not segments:
        return Framing(False, "no Segment after the EBML header")
    walked = "" if walked_all else " (its first elements walked)"
    return Framing(True, f"complete: the Segment ends at the end of the file, {reader.size:,} "
                   f"bytes{walked}")


def _walk_segment(reader: Reader, data: Optional[bytes], start: int, end: int,
                  budget: list[int]) -> bool:
    """Check that the children of a known-size Segment tile it; False if the walk stopped
    early at the budget (the Segment's own size then vouches for the rest)."""
    offset = start
    while offset < end:
        budget[0] -= 1
        if budget[0] < 0:
            return False
        ident, header, size = _element(reader, data, offset)
        if size is None:
            if ident != CLUSTER:
                raise _no_size(ident, offset)
            offset = _walk_unknown_cluster(reader, data, offset + header, end, budget)
            if offset < 0:
                return False
            continue
        stop = offset + header + size
        if stop > end:
            _fits(reader, ident, offset, header, size, end)     # raises, in words
        offset = stop
    return True


def _unknown_size_segment(reader: Reader, data: Optional[bytes], body: int,
                          budget: list[int]) -> Framing:
    offset = body
    first_child: Optional[int] = None
    while offset < reader.size:
        budget[0] -= 1
        if budget[0] < 0:
            return Framing(None, f"Segment of unknown size, longer than {_n(MAX_ELEMENTS)} elements: "
                           f"not walked to the end")
        ident, header, size = _element(reader, data, offset)
        if first_child is None:
            first_child = ident
        if size is None:
            if ident != CLUSTER:
                raise _no_size(ident, offset)
            offset = _walk_unknown_cluster(reader, data, offset + header, reader.size, budget)
            if offset < 0:
                return Framing(None, f"Segment of unknown size, longer than {_n(MAX_ELEMENTS)} "
                               f"elements: not walked to the end")
            continue
        offset = _fits(reader, ident, offset, header, size, reader.size)
    if first_child == VOID:
        # ffmpeg writing to a file reserves the SeekHead's place with a Void and fills it in,
        # with the Segment's size, when it finishes: both still missing means it never did.
        return Framing(False, "unfinished: the Segment's size and its SeekHead were never "
                       "written (the writer stopped before its end)")
    return Framing(None, "Matroska Segment of unknown size (a live muxer): the framing "
                   "cannot tell whether more was to come")


def _walk_unknown_cluster(reader: Reader, data: Optional[bytes], body: int, end: int,
                          budget: list[int]) -> int:
    """Walk a Cluster of unknown size up to the next Segment-level element; its end, or -1
    when the budget ran out."""
    offset = body
    while offset < end:
        budget[0] -= 1
        if budget[0] < 0:
            return -1
        ident, header, size = _element(reader, data, offset)
        if ident in SEGMENT_CHILDREN and ident not in (VOID, CRC32):
            return offset
        if size is None:
            raise _no_size(ident, offset, " inside a Cluster")
        offset = _fits(reader, ident, offset, header, size, end)
    return offset


# --- AVI (RIFF, OpenDML) ----------------------------------------------------------------

_RIFF_HEAD = struct.Struct("<4sI4s")
_CHUNK_HEAD = struct.Struct("<4sI")


def _avi(reader: Reader) -> Framing:
    data = _whole(reader)
    offset, riffs, chunks = 0, 0, 0
    while offset < reader.size:
        if data is None:
            head, pos = reader.read(offset, 12), 0
        else:
            head, pos = data, offset
        if len(head) - pos < 12:
            raise _incomplete(f"truncated: a RIFF header at byte {_n(offset)} is cut short")
        tag, length, form = _RIFF_HEAD.unpack_from(head, pos)
        if not _printable_fourcc(tag):
            raise _not_a_type(tag, offset, "chunk")
        if tag != b"RIFF":
            if riffs == 0:
                raise _incomplete("not an AVI file: no RIFF header at its start")
            raise _incomplete(f"a {_box_name(tag)!r} chunk at byte {_n(offset)} where a RIFF chunk belongs")
        expected = b"AVI " if riffs == 0 else b"AVIX"
        if form != expected:
            raise _incomplete(f"RIFF chunk at byte {_n(offset)} holds {form!r}, not {expected!r}")
        if length in (0, 0xFFFFFFFF):
            raise _incomplete(f"unfinished: the size of RIFF {_box_name(form)!r} at byte {_n(offset)} "
                              f"was never written (the writer stopped before its end)")
        end = offset + 8 + length
        if end > reader.size:
            raise _incomplete(f"truncated: RIFF {_box_name(form)!r} declares {_n(length)} bytes, "
                              f"{_n(reader.size - offset - 8)} present")
        lists = _riff_children(reader, data, offset + 12, end, chunks)
        chunks += len(lists)
        if riffs == 0 and b"movi" not in lists and len(lists) < MAX_ELEMENTS:
            raise _incomplete("no movi list (no media data)")
        riffs += 1
        offset = end + (length & 1 if end < reader.size else 0)   # chunks are padded to even
    return Framing(True, f"complete: {riffs} RIFF chunk(s) tile {reader.size:,} bytes")


def _riff_children(reader: Reader, data: Optional[bytes], start: int, end: int,
                   walked: int) -> list[bytes]:
    """The chunks inside one RIFF: each must be a real chunk that fits; returns their LIST
    types (and tags) so the caller can ask for 'movi'."""
    names: list[bytes] = []
    offset = start
    while offset < end:
        if walked + len(names) >= MAX_ELEMENTS:
            break
        if data is None:
            head, pos = reader.read(offset, 12), 0
        else:
            head, pos = data, offset
        if len(head) - pos < 8 or offset + 8 > end:
            raise _incomplete(f"truncated: a chunk header at byte {_n(offset)} is cut short")
        tag, length = _CHUNK_HEAD.unpack_from(head, pos)
        if not _printable_fourcc(tag):
            raise _not_a_type(tag, offset, "chunk")
        if offset + 8 + length > end:
            raise _incomplete(f"{_box_name(tag)!r} chunk at byte {_n(offset)} declares {_n(length)} "
                              f"bytes, past the end of its RIFF")
        # A LIST's type follows its header; the 12 bytes a chunk's read asks for end there.
        names.append(head[pos + 8:pos + 12] if tag == b"LIST" else tag)
        offset += 8 + length + (length & 1)
    return names


_WALKERS = {
    "mp4": _bmff, "m4v": _bmff, "mov": _bmff, "qt": _bmff, "3gp": _bmff, "3g2": _bmff,
    "m4a": _bmff, "f4v": _bmff, "mkv": _matroska, "webm": _matroska, "mk3d": _matroska,
    "avi": _avi,
}
