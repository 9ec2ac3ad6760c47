"""Container framing: can a video file's own structure prove it complete?

A file's inotify events and timestamps cannot tell a finished upload from an interrupted one
(an interrupted `rsync --partial` renames its half file into place; aria2c preallocates the
full size). The container can: every format we register declares its own length. This module
walks only that framing, with a handful of small positioned reads (never the whole file):

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

import os
import struct
from typing import Iterator, NamedTuple, Optional

BLOCK = 4096                   # reads are served from 4 KB blocks: a small file costs one pread
MAX_TABLE_BYTES = 1 << 20      # a chunk-offset table larger than this: only its last entry is read
MAX_ELEMENTS = 20_000          # boxes / elements / chunks walked per file, at most
MAX_SAMPLES_PER_CHUNK = 1 << 16
# Children of a Segment of known size walked, at most: enough for a whole small file and the
# head of a large one; past them the Segment's declared size vouches for the rest (walking
# every Cluster of a film would cost one disk seek each).
MAX_SEGMENT_CHILDREN = 64


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
        end = min(offset + length, self.size)
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


def _n(number: int) -> str:
    return f"{number:,}"


# --- ISO BMFF: MP4, MOV -----------------------------------------------------------------

class _Box(NamedTuple):
    type: bytes
    offset: int
    header: int
    size: int

    @property
    def end(self) -> int:
        return self.offset + self.size

    @property
    def body(self) -> int:
        return self.offset + self.header


TOP_LEVEL_BOXES = {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"uuid", b"pnot", b"PICT",
                   b"meta", b"moof", b"mfra", b"sidx", b"styp", b"emsg", b"prft", b"pdin", b"ssix",
                   b"junk", b"jP  ", b"udta"}


def _box_name(kind: bytes) -> str:
    return kind.decode("latin-1")


_PRINTABLE = bytes(range(0x20, 0x7F))


def _printable_fourcc(kind: bytes, extra: bytes = b"") -> bool:
    return len(kind) == 4 and not kind.translate(None, _PRINTABLE + extra)


def _not_a_type(kind: bytes, offset: int, what: str) -> _Decided:
    if kind.strip(b"\0") == b"":
        return _incomplete(f"zero-filled at byte {_n(offset)}: space preallocated and not yet "
                           f"written (an unfinished download?)")
    return _incomplete(f"no valid {what} at byte {_n(offset)} ({kind!r} is not a type)")


def _boxes(reader: Reader, start: int, end: int, parent: str) -> Iterator[_Box]:
    """The boxes tiling [start, end); a box that is cut short or malformed decides the walk."""
    offset, count = start, 0
    while offset < end:
        count += 1
        if count > MAX_ELEMENTS:
            raise _Decided(None, f"more than {_n(MAX_ELEMENTS)} boxes in {parent}: not walked to the end")
        head = reader.read(offset, 16)
        if len(head) < 8 or offset + 8 > end:
            raise _incomplete(f"truncated: a box header at byte {_n(offset)} is cut short")
        size, kind = struct.unpack(">I4s", head[:8])
        # © (0xA9) starts Apple's metadata box types.
        if not _printable_fourcc(kind, b"\xa9"):
            raise _not_a_type(kind, offset, "box")
        header = 8
        if size == 1:
            if len(head) < 16 or offset + 16 > end:
                raise _incomplete(f"truncated: the 64-bit size of {_box_name(kind)} at byte "
                                  f"{_n(offset)} is cut short")
            size, header = struct.unpack(">Q", head[8:16])[0], 16
        elif size == 0:
            size = end - offset          # "to the end of the file" (or of the parent)
        if size < header:
            raise _incomplete(f"{_box_name(kind)} at byte {_n(offset)} declares an impossible size "
                              f"of {_n(size)} bytes")
        if offset + size > end:
            if end == reader.size:
                raise _incomplete(f"truncated: {_box_name(kind)} declares {_n(size)} bytes, "
                                  f"{_n(end - offset)} present")
            raise _incomplete(f"{_box_name(kind)} at byte {_n(offset)} overruns its parent {parent}")
        yield _Box(kind, offset, header, size)
        offset += size


def _bmff(reader: Reader) -> Framing:
    top = list(_boxes(reader, 0, reader.size, "the file"))
    if top[0].type not in TOP_LEVEL_BOXES:
        raise _incomplete(f"not an MP4/QuickTime file: it starts with {top[0].type!r}")
    moovs = [b for b in top if b.type == b"moov"]
    mdats = [b for b in top if b.type == b"mdat"]
    if not moovs:
        return Framing(False, "no moov box (the index a writer adds at its end)")
    moov = moovs[0]
    children = list(_boxes(reader, moov.body, moov.end, "moov"))
    fragmented = any(b.type == b"moof" for b in top) or any(b.type == b"mvex" for b in children)
    if fragmented:
        return _fragmented(reader, top)
    if not mdats:
        return Framing(False, "no mdat box (no media data)")
    tracks = 0
    for number, trak in enumerate((b for b in children if b.type == b"trak"), start=1):
        extent = _track_extent(reader, trak)
        if extent is None:
            continue
        tracks += 1
        first, end = extent
        if end > reader.size:
            return Framing(False, f"truncated: track {number}'s media data reaches byte {_n(end)}, "
                           f"the file has {_n(reader.size)}")
        if not any(m.body <= first and end <= m.end for m in mdats):
            return Framing(False, f"track {number}'s last chunk (bytes {_n(first)} to {_n(end)}) "
                           f"lies outside every mdat box")
    if not tracks:
        return Framing(False, "moov lists no samples (nothing was recorded)")
    return Framing(True, f"complete: {len(top)} boxes tile {_n(reader.size)} bytes; moov and the "
                   f"media data of {tracks} track(s) present")


def _fragmented(reader: Reader, top: list[_Box]) -> Framing:
    last = top[-1]
    if last.type == b"mfra" and last.size >= 24:
        # The closing index ends with mfro, which repeats mfra's size: a writer's last words.
        tail = reader.read(last.end - 16, 16)
        if len(tail) == 16:
            size, kind, _, mfra_size = struct.unpack(">I4sII", tail)
            if size == 16 and kind == b"mfro" and mfra_size == last.size:
                return Framing(True, f"complete: fragmented MP4, {len(top)} boxes tile "
                               f"{_n(reader.size)} bytes and end with its mfra index")
    return Framing(None, f"fragmented MP4: {len(top)} boxes tile {_n(reader.size)} bytes but "
                   f"nothing marks the last fragment")


def _child(reader: Reader, parent: _Box, kind: bytes) -> Optional[_Box]:
    for box in _boxes(reader, parent.body, parent.end, _box_name(parent.type)):
        if box.type == kind:
            return box
    return None


def _full_box(reader: Reader, box: _Box, length: int) -> bytes:
    """`length` bytes after a full box's version and flags; malformed if the box is shorter."""
    data = reader.read(box.body + 4, length)
    if len(data) < length or box.body + 4 + length > box.end:
        raise _incomplete(f"{_box_name(box.type)} at byte {_n(box.offset)} is too short")
    return data


def _track_extent(reader: Reader, trak: _Box) -> Optional[tuple[int, int]]:
    """(start, end) of the track's chunk at the highest offset, or None for a track without
    samples. The end counts the sizes of that chunk's samples where the tables allow."""
    box: Optional[_Box] = trak
    for kind in (b"mdia", b"minf", b"stbl"):
        box = _child(reader, box, kind) if box else None
    if box is None:
        return None
    tables = {b.type: b for b in _boxes(reader, box.body, box.end, "stbl")}
    chunks = tables.get(b"stco") or tables.get(b"co64")
    if chunks is None:
        return None
    width = 8 if chunks.type == b"co64" else 4
    (count,) = struct.unpack(">I", _full_box(reader, chunks, 4))
    if count == 0:
        return None
    if chunks.body + 8 + count * width > chunks.end:
        raise _incomplete(f"{_box_name(chunks.type)} at byte {_n(chunks.offset)} lists more chunks "
                          f"than it holds")
    fmt = ">Q" if width == 8 else ">I"
    if count * width <= MAX_TABLE_BYTES:
        table = reader.read(chunks.body + 8, count * width)
        offsets = [v for (v,) in struct.iter_unpack(fmt, table)]
        index = max(range(count), key=offsets.__getitem__)     # 0-based chunk number
        start = offsets[index]
    else:
        index = count - 1
        (start,) = struct.unpack(fmt, reader.read(chunks.body + 8 + index * width, width))
    length = _chunk_bytes(reader, tables, index + 1)
    return start, start + max(length, 1)


def _chunk_bytes(reader: Reader, tables: dict[bytes, _Box], chunk: int) -> int:
    """How many bytes chunk number `chunk` (1-based) holds, from stsc and stsz; 0 when the
    tables cannot say cheaply (then only the chunk's first byte is checked)."""
    stsc, stsz = tables.get(b"stsc"), tables.get(b"stsz")
    if stsc is None or stsz is None:
        return 0
    (entries,) = struct.unpack(">I", _full_box(reader, stsc, 4))
    if entries == 0 or entries * 12 > MAX_TABLE_BYTES or stsc.body + 8 + entries * 12 > stsc.end:
        return 0
    runs = list(struct.iter_unpack(">III", reader.read(stsc.body + 8, entries * 12)))
    before = per_chunk = 0
    for position, (first, samples, _) in enumerate(runs):
        following = runs[position + 1][0] if position + 1 < len(runs) else None
        if following is None or chunk < following:
            before += (chunk - first) * samples
            per_chunk = samples
            break
        before += (following - first) * samples
    sample_size, sample_count = struct.unpack(">II", _full_box(reader, stsz, 8))
    if before < 0 or per_chunk <= 0 or before + per_chunk > sample_count:
        return 0
    if sample_size:
        return per_chunk * sample_size
    if per_chunk > MAX_SAMPLES_PER_CHUNK or stsz.body + 12 + sample_count * 4 > stsz.end:
        return 0
    sizes = reader.read(stsz.body + 12 + before * 4, per_chunk * 4)
    return sum(v for (v,) in struct.iter_unpack(">I", sizes))


# --- Matroska / WebM (EBML) -------------------------------------------------------------

EBML_HEADER, SEGMENT, CLUSTER, VOID, CRC32 = 0x1A45DFA3, 0x18538067, 0x1F43B675, 0xEC, 0xBF
SEGMENT_CHILDREN = {0x114D9B74: "SeekHead", 0x1549A966: "Info", 0x1654AE6B: "Tracks",
                    0x1C53BB6B: "Cues", 0x1941A469: "Attachments", 0x1043A770: "Chapters",
                    0x1254C367: "Tags", CLUSTER: "Cluster", VOID: "Void", CRC32: "CRC-32"}
NAMES = {**SEGMENT_CHILDREN, EBML_HEADER: "the EBML header", SEGMENT: "Segment"}


class _Element(NamedTuple):
    id: int
    offset: int
    header: int
    size: Optional[int]     # None: unknown size

    @property
    def body(self) -> int:
        return self.offset + self.header

    @property
    def name(self) -> str:
        return NAMES.get(self.id, f"element 0x{self.id:X}")


def _element(reader: Reader, offset: int) -> _Element:
    head = reader.read(offset, 12)
    if not head:
        raise _incomplete(f"truncated: an element header at byte {_n(offset)} is missing")
    first = head[0]
    id_length = 9 - first.bit_length() if first else 9
    if id_length > 4:
        if head[:4].strip(b"\0") == b"":
            raise _not_a_type(head[:4], offset, "element")
        raise _incomplete(f"no valid element at byte {_n(offset)} (bad element ID)")
    if len(head) < id_length + 1:
        raise _incomplete(f"truncated: the element header at byte {_n(offset)} is cut short")
    ident = int.from_bytes(head[:id_length], "big")
    lead = head[id_length]
    size_length = 9 - lead.bit_length() if lead else 9
    if size_length > 8:
        raise _incomplete(f"no valid element size at byte {_n(offset + id_length)}")
    if len(head) < id_length + size_length:
        raise _incomplete(f"truncated: the element header at byte {_n(offset)} is cut short")
    value = lead & (0xFF >> size_length)
    for byte in head[id_length + 1:id_length + size_length]:
        value = (value << 8) | byte
    unknown = value == (1 << (7 * size_length)) - 1
    return _Element(ident, offset, id_length + size_length, None if unknown else value)


def _fits(reader: Reader, element: _Element, end: int) -> int:
    """The end of a known-size element, which must lie within `end`."""
    assert element.size is not None
    stop = element.body + element.size
    if stop > end:
        if end == reader.size:
            raise _incomplete(f"truncated: {element.name} at byte {_n(element.offset)} declares "
                              f"{_n(element.size)} bytes, {_n(max(0, end - element.body))} present")
        raise _incomplete(f"{element.name} at byte {_n(element.offset)} overruns its parent")
    return stop


def _matroska(reader: Reader) -> Framing:
    header = _element(reader, 0)
    if header.id != EBML_HEADER:
        raise _incomplete("not a Matroska file: no EBML header at its start")
    offset, segments, walked_all = 0, 0, True
    while offset < reader.size:
        element = _element(reader, offset)
        if element.id == SEGMENT:
            segments += 1
            if element.size is None:
                return _unknown_size_segment(reader, element, [MAX_ELEMENTS])
            end = _fits(reader, element, reader.size)
            walked_all &= _walk_segment(reader, element.body, end, [MAX_SEGMENT_CHILDREN])
            offset = end
        elif element.id in (EBML_HEADER, VOID, CRC32):
            if element.size is None:
                raise _incomplete(f"{element.name} at byte {_n(offset)} has no size")
            offset = _fits(reader, element, reader.size)
        else:
            raise _incomplete(f"{element.name} at byte {_n(offset)} where a Segment belongs")
    if not segments:
        return Framing(False, "no Segment after the EBML header")
    walked = "" if walked_all else " (its first elements walked)"
    return Framing(True, f"complete: the Segment ends at the end of the file, {_n(reader.size)} "
                   f"bytes{walked}")


def _walk_segment(reader: Reader, start: int, end: int, budget: list[int]) -> bool:
    """Check that the children of a known-size Segment tile it; False if the walk stopped
    early at the budget (the Segment's own size then vouches for the rest)."""
    offset = start
    while offset < end:
        budget[0] -= 1
        if budget[0] < 0:
            return False
        child = _element(reader, offset)
        if child.size is None:
            if child.id != CLUSTER:
                raise _incomplete(f"{child.name} at byte {_n(offset)} has no size")
            offset = _walk_unknown_cluster(reader, child, end, budget)
            if offset < 0:
                return False
            continue
        offset = _fits(reader, child, end)
    return True


def _unknown_size_segment(reader: Reader, segment: _Element, budget: list[int]) -> Framing:
    offset = segment.body
    first_child: Optional[int] = None
    while offset < reader.size:
        budget[0] -= 1
        if budget[0] < 0:
            return Framing(None, f"Segment of unknown size, longer than {_n(MAX_ELEMENTS)} elements: "
                           f"not walked to the end")
        child = _element(reader, offset)
        if first_child is None:
            first_child = child.id
        if child.size is None:
            if child.id != CLUSTER:
                raise _incomplete(f"{child.name} at byte {_n(offset)} has no size")
            offset = _walk_unknown_cluster(reader, child, reader.size, budget)
            if offset < 0:
                return Framing(None, f"Segment of unknown size, longer than {_n(MAX_ELEMENTS)} "
                               f"elements: not walked to the end")
            continue
        offset = _fits(reader, child, reader.size)
    if first_child == VOID:
        # ffmpeg writing to a file reserves the SeekHead's place with a Void and fills it in,
        # with the Segment's size, when it finishes: both still missing means it never did.
        return Framing(False, "unfinished: the Segment's size and its SeekHead were never "
                       "written (the writer stopped before its end)")
    return Framing(None, "Matroska Segment of unknown size (a live muxer): the framing "
                   "cannot tell whether more was to come")


def _walk_unknown_cluster(reader: Reader, cluster: _Element, end: int, budget: list[int]) -> int:
    """Walk a Cluster of unknown size up to the next Segment-level element; its end, or -1
    when the budget ran out."""
    offset = cluster.body
    while offset < end:
        budget[0] -= 1
        if budget[0] < 0:
            return -1
        child = _element(reader, offset)
        if child.id in SEGMENT_CHILDREN and child.id not in (VOID, CRC32):
            return offset
        if child.size is None:
            raise _incomplete(f"{child.name} at byte {_n(offset)} inside a Cluster has no size")
        offset = _fits(reader, child, end)
    return offset


# --- AVI (RIFF, OpenDML) ----------------------------------------------------------------

def _avi(reader: Reader) -> Framing:
    offset, riffs, chunks = 0, 0, 0
    while offset < reader.size:
        head = reader.read(offset, 12)
        if len(head) < 12:
            raise _incomplete(f"truncated: a RIFF header at byte {_n(offset)} is cut short")
        tag, length, form = struct.unpack("<4sI4s", head)
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
        lists = _riff_children(reader, offset + 12, end, chunks)
        chunks += len(lists)
        if riffs == 0 and b"movi" not in lists and len(lists) < MAX_ELEMENTS:
            raise _incomplete("no movi list (no media data)")
        riffs += 1
        offset = end + (length & 1 if end < reader.size else 0)   # chunks are padded to even
    return Framing(True, f"complete: {riffs} RIFF chunk(s) tile {_n(reader.size)} bytes")


def _riff_children(reader: Reader, start: int, end: int, walked: int) -> list[bytes]:
    """The chunks inside one RIFF: each must be a real chunk that fits; returns their LIST
    types (and tags) so the caller can ask for 'movi'."""
    names: list[bytes] = []
    offset = start
    while offset < end:
        if walked + len(names) >= MAX_ELEMENTS:
            break
        head = reader.read(offset, 12)
        if len(head) < 8 or offset + 8 > end:
            raise _incomplete(f"truncated: a chunk header at byte {_n(offset)} is cut short")
        tag, length = struct.unpack("<4sI", head[:8])
        if not _printable_fourcc(tag):
            raise _not_a_type(tag, offset, "chunk")
        if offset + 8 + length > end:
            raise _incomplete(f"{_box_name(tag)!r} chunk at byte {_n(offset)} declares {_n(length)} "
                              f"bytes, past the end of its RIFF")
        names.append(head[8:12] if tag == b"LIST" else tag)
        offset += 8 + length + (length & 1)
    return names


_WALKERS = {
    "mp4": _bmff, "m4v": _bmff, "mov": _bmff, "qt": _bmff, "3gp": _bmff, "3g2": _bmff,
    "m4a": _bmff, "f4v": _bmff, "mkv": _matroska, "webm": _matroska, "mk3d": _matroska,
    "avi": _avi,
}
