"""ISO BMFF boxes (MP4, MOV): walking the boxes that tile a parent, each cut or malformed
box deciding the walk in words.

A box is a plain tuple, walked in a plain loop: a small clip has ~25 boxes on the way to its
chunk tables and a cold start judges 100,000 files, so per-box objects, generators and
properties would cost more than the parsing. A parent read whole (a small file, or a box of
at most SMALL_PARENT bytes) is kept as a buffer `data`, the file's bytes from offset `base`:
the walks below it and their tables are served from it, so each byte is read once.
"""

from __future__ import annotations

import struct
from typing import Optional

from . import reader as limits
from .reader import MAX_ELEMENTS, Decided, Reader, fourcc_name, incomplete, n, not_a_type

Box = tuple[bytes, int, int, int]      # (type, offset, header length, size)

TOP_LEVEL_BOXES = {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"uuid", b"pnot", b"PICT",
                   b"meta", b"moof", b"mfra", b"sidx", b"styp", b"emsg", b"prft", b"pdin", b"ssix",
                   b"junk", b"jP  ", b"udta"}


_PRINTABLE = bytes(range(0x20, 0x7F))
_BOX_TYPE_BYTES = _PRINTABLE + b"\xa9"      # © (0xA9) starts Apple's metadata box types
BOX_HEAD = struct.Struct(">I4s")
LARGE_SIZE = struct.Struct(">Q")
# The types of every clip, valid by the rule above (filtered so): a set lookup is cheaper
# than the translate() that judges any other type.
_COMMON_TYPES = frozenset(kind for kind in (
    b"ftyp", b"free", b"mdat", b"moov", b"mvhd", b"trak", b"tkhd", b"edts", b"elst", b"mdia",
    b"mdhd", b"hdlr", b"minf", b"vmhd", b"smhd", b"dinf", b"stbl", b"stsd", b"stts", b"stss",
    b"ctts", b"stsc", b"stsz", b"stco", b"co64", b"sgpd", b"sbgp", b"udta", b"meta", b"wide",
    b"gmhd", b"tref", b"mvex", b"moof", b"mfra") if not kind.translate(None, _BOX_TYPE_BYTES))
# A buffer is at most SMALL_PARENT bytes and a box at least 8: a walk in memory cannot reach
# MAX_ELEMENTS, so only the walk by reads counts its boxes.
assert limits.SMALL_PARENT // 8 < MAX_ELEMENTS


def printable_type(kind: bytes) -> bool:
    """Could `kind` be a box type at all (printable, or Apple's ©)?"""
    return not kind.translate(None, _BOX_TYPE_BYTES)


def _header_cut(offset: int) -> Decided:
    return incomplete(f"truncated: a box header at byte {n(offset)} is cut short")


def _large_size_cut(kind: bytes, offset: int) -> Decided:
    return incomplete(f"truncated: the 64-bit size of {fourcc_name(kind)} at byte {n(offset)} "
                       f"is cut short")


def _impossible_size(kind: bytes, offset: int, size: int) -> Decided:
    return incomplete(f"{fourcc_name(kind)} at byte {n(offset)} declares an impossible size "
                       f"of {n(size)} bytes")


def _overrun(kind: bytes, offset: int, size: int, end: int, file_size: int, parent: str) -> Decided:
    if end == file_size:
        return incomplete(f"truncated: {fourcc_name(kind)} declares {n(size)} bytes, "
                           f"{n(end - offset)} present")
    return incomplete(f"{fourcc_name(kind)} at byte {n(offset)} overruns its parent {parent}")


def read(reader: Reader, data: Optional[bytes], base: int, offset: int, length: int) -> bytes:
    """reader.read(offset, length), from the buffer when it holds all of those bytes."""
    if data is not None and base <= offset and offset + length <= base + len(data):
        return data[offset - base:offset - base + length]
    return reader.read(offset, length)


def walk(reader: Reader, data: Optional[bytes], base: int, start: int, end: int, parent: str,
          stop: bytes = b"") -> tuple[list[Box], Optional[bytes], int]:
    """The boxes tiling [start, end), or up to the first of type `stop`; a box that is cut
    short or malformed decides the walk. Also the buffer they were walked in (None: read box
    by box), for the walks below them."""
    if data is not None and base <= start and end <= base + len(data):
        limit = end
    elif end - start > limits.SMALL_PARENT:
        return _walk_reads(reader, start, end, parent, stop), None, 0
    else:
        # A small parent (a moov of a short clip) is read once and walked in memory.
        data, base = reader.read(start, end - start), start
        # The read comes back short only if the file shrank since its size was taken: the
        # headers past it are then cut short, as reading them one by one would find.
        limit = min(end, start + len(data))
    boxes: list[Box] = []
    append, unpack_head = boxes.append, BOX_HEAD.unpack_from
    last_header = limit - 8          # the last offset where a whole header can be read
    offset = start
    while offset <= last_header:
        size, kind = unpack_head(data, offset - base)
        if kind not in _COMMON_TYPES and kind.translate(None, _BOX_TYPE_BYTES):
            raise not_a_type(kind, offset, "box")
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
        size, header = LARGE_SIZE.unpack_from(data, offset - base + 8)[0], 16
        if size < header:
            raise _impossible_size(kind, offset, size)
        return size, header
    if size == 0:
        return end - offset, 8           # "to the end of the file" (or of the parent)
    raise _impossible_size(kind, offset, size)


def _walk_reads(reader: Reader, start: int, end: int, parent: str, stop: bytes) -> list[Box]:
    """walk() for a parent too large to read whole: one 16-byte read per header,
    served from the reader's cached blocks; at most MAX_ELEMENTS boxes."""
    boxes: list[Box] = []
    offset = start
    while offset < end:
        if len(boxes) >= MAX_ELEMENTS:
            raise Decided(None, f"more than {n(MAX_ELEMENTS)} boxes in {parent}: not walked to the end")
        head = reader.read(offset, 16)
        if len(head) < 8 or offset + 8 > end:
            raise _header_cut(offset)
        size, kind = BOX_HEAD.unpack_from(head)
        if kind.translate(None, _BOX_TYPE_BYTES):
            raise not_a_type(kind, offset, "box")
        header = 8
        if size == 1:
            if len(head) < 16 or offset + 16 > end:
                raise _large_size_cut(kind, offset)
            size, header = LARGE_SIZE.unpack_from(head, 8)[0], 16
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

