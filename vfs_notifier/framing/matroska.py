"""Matroska (mkv, webm): the EBML header, then a Segment whose declared size ends at the end
of the file, its children tiling it. A Segment of unknown size (live muxers) is walked to the
end: an element cut short proves it incomplete, otherwise the framing cannot tell. After a
whole Segment, bytes that start no top-level element are stray (reader.Trailing). Where no
track is PCM or uncompressed, the Clusters' pages at the split points of multi-stream
downloads are noted as media that must not be zeros (written.note_split_points).

An element is read as (id, header length, size or None for unknown), from the whole file
when it was read at once (a small file), else from a 12-byte read at its offset.
"""

from __future__ import annotations

from typing import Optional

from . import written
from .reader import (MAX_ELEMENTS, Decided, Framing, Reader, Trailing, incomplete, n, not_a_type,
                     whole)

# Children of a Segment of known size walked, at most: enough for a whole small file and the
# head of a large one; past them the Segment's declared size vouches for the rest (walking
# every Cluster of a film would cost one disk seek each).
MAX_SEGMENT_CHILDREN = 64

EBML_HEADER, SEGMENT, CLUSTER, VOID, CRC32 = 0x1A45DFA3, 0x18538067, 0x1F43B675, 0xEC, 0xBF
TRACKS = 0x1654AE6B
MAX_TRACKS_BYTES = 1 << 16
_ZEROS_MAY_BE_MEDIA = (b"A_PCM/", b"V_UNCOMPRESSED", b"V_MPEG1", b"V_MPEG2", b"V_MJPEG", b"AVdn",
                       b"AVdh", b"MJPG")
SEGMENT_CHILDREN = {0x114D9B74: "SeekHead", 0x1549A966: "Info", 0x1654AE6B: "Tracks",
                    0x1C53BB6B: "Cues", 0x1941A469: "Attachments", 0x1043A770: "Chapters",
                    0x1254C367: "Tags", CLUSTER: "Cluster", VOID: "Void", CRC32: "CRC-32"}
NAMES = {**SEGMENT_CHILDREN, EBML_HEADER: "the EBML header", SEGMENT: "Segment"}
# A variable-length integer's length from its first byte (its leading zeros + 1; 9: invalid),
# and the all-ones value that means "unknown size" for each length.
_VINT_LENGTH = bytes([9] + [9 - byte.bit_length() for byte in range(1, 256)])
_UNKNOWN_SIZE = tuple((1 << (7 * length)) - 1 for length in range(9))


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
        raise incomplete(f"truncated: an element header at byte {n(offset)} is missing")
    id_length = _VINT_LENGTH[head[pos]]
    if id_length > 4:
        if head[pos:pos + 4].strip(b"\0") == b"":
            raise not_a_type(head[pos:pos + 4], offset, "element")
        raise incomplete(f"no valid element at byte {n(offset)} (bad element ID)")
    if present <= id_length:
        raise incomplete(f"truncated: the element header at byte {n(offset)} is cut short")
    size_length = _VINT_LENGTH[head[pos + id_length]]
    if size_length > 8:
        raise incomplete(f"no valid element size at byte {n(offset + id_length)}")
    header = id_length + size_length
    if present < header:
        raise incomplete(f"truncated: the element header at byte {n(offset)} is cut short")
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
            raise incomplete(f"truncated: {name} at byte {n(offset)} declares "
                              f"{n(size)} bytes, {n(max(0, end - offset - header))} present")
        raise incomplete(f"{name} at byte {n(offset)} overruns its parent")
    return stop


def _no_size(ident: int, offset: int, where: str = "") -> Decided:
    return incomplete(f"{_element_name(ident)} at byte {n(offset)}{where} has no size")


def check(reader: Reader) -> Framing:
    data = whole(reader)
    element = _element(reader, data, 0)
    if element[0] != EBML_HEADER:
        raise incomplete("not a Matroska file: no EBML header at its start")
    offset, segments, walked_all = 0, 0, True
    while offset < reader.size:
        if offset == 0:
            ident, header, size = element
        elif not segments:
            ident, header, size = _element(reader, data, offset)
        else:
            ident, header, size = _after_segment(reader, data, offset)
        if ident == SEGMENT:
            segments += 1
            if size is None:
                return _unknown_size_segment(reader, data, offset + header, [MAX_ELEMENTS])
            end = _fits(reader, ident, offset, header, size, reader.size)
            clusters: list[tuple[int, int]] = []
            stopped = _walk_segment(reader, data, offset + header, end, [MAX_SEGMENT_CHILDREN],
                                    clusters)
            if stopped < end:
                walked_all = False
                clusters.append((stopped, end))     # not walked: Clusters, as a rule
            if not reader.zeros_may_be_media:
                for start, stop in clusters:
                    written.note_split_points(reader, start, stop, "media in a Cluster")
            offset = end
        elif ident in (EBML_HEADER, VOID, CRC32):
            if size is None:
                raise _no_size(ident, offset)
            offset = _fits(reader, ident, offset, header, size, reader.size)
        else:
            raise incomplete(f"{_element_name(ident)} at byte {n(offset)} where a Segment belongs")
    if not segments:
        return Framing(False, "no Segment after the EBML header")
    walked = "" if walked_all else " (its first elements walked)"
    return Framing(True, f"complete: the Segment ends at the end of the file, {reader.size:,} "
                   f"bytes{walked}")


def _after_segment(reader: Reader, data: Optional[bytes], offset: int) -> tuple[int, int, Optional[int]]:
    """The element at `offset`, after a whole Segment: bytes that start no element of the
    top level are stray (Trailing), not a Segment cut short."""
    try:
        element = _element(reader, data, offset)
    except Decided as decided:
        raise Trailing(offset, decided.framing.reason) from None
    if element[0] not in (EBML_HEADER, SEGMENT, VOID, CRC32):
        raise Trailing(offset, f"{_element_name(element[0])} at byte {n(offset)} where a "
                       f"Segment belongs")
    return element


def _walk_segment(reader: Reader, data: Optional[bytes], start: int, end: int,
                  budget: list[int], clusters: list[tuple[int, int]]) -> int:
    """Check that the children of a known-size Segment tile it; where the walk stopped: before
    `end` if it stopped early at the budget (the Segment's own size then vouches for the
    rest). The Clusters' ranges are added to `clusters` (their media is probed:
    written.note_split_points)."""
    offset = start
    while offset < end:
        budget[0] -= 1
        if budget[0] < 0:
            return offset
        ident, header, size = _element(reader, data, offset)
        if size is None:
            if ident != CLUSTER:
                raise _no_size(ident, offset)
            stop = _walk_unknown_cluster(reader, data, offset + header, end, budget)
            if stop < 0:
                return offset
            clusters.append((offset, stop))
            offset = stop
            continue
        stop = offset + header + size
        if stop > end:
            _fits(reader, ident, offset, header, size, end)     # raises, in words
        if ident == CLUSTER:
            clusters.append((offset, stop))
        elif ident == TRACKS and size <= MAX_TRACKS_BYTES:
            # PCM sound and uncompressed video may be zeros when written: no page of
            # zeros then proves anything (their codec IDs, searched in the Tracks' bytes).
            codecs = _read(reader, data, offset + header, size)
            if any(codec in codecs for codec in _ZEROS_MAY_BE_MEDIA):
                reader.zeros_may_be_media = True
        offset = stop
    return offset


def _read(reader: Reader, data: Optional[bytes], offset: int, length: int) -> bytes:
    return data[offset:offset + length] if data is not None else reader.read(offset, length)


def _unknown_size_segment(reader: Reader, data: Optional[bytes], body: int,
                          budget: list[int]) -> Framing:
    offset = body
    first_child: Optional[int] = None
    while offset < reader.size:
        budget[0] -= 1
        if budget[0] < 0:
            return Framing(None, f"Segment of unknown size, longer than {n(MAX_ELEMENTS)} elements: "
                           f"not walked to the end")
        ident, header, size = _element(reader, data, offset)
        if first_child is None:
            first_child = ident
        if size is None:
            if ident != CLUSTER:
                raise _no_size(ident, offset)
            offset = _walk_unknown_cluster(reader, data, offset + header, reader.size, budget)
            if offset < 0:
                return Framing(None, f"Segment of unknown size, longer than {n(MAX_ELEMENTS)} "
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

