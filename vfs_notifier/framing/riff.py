"""AVI (RIFF, OpenDML): RIFF 'AVI ' then OpenDML 'AVIX' chunks tile the file; each declares a
real size, and the first holds a movi list.
"""

from __future__ import annotations

import struct
from typing import Optional

from . import written
from .reader import (MAX_ELEMENTS, Framing, Reader, Trailing, fourcc_name, incomplete, n,
                     not_a_type, printable_fourcc, whole)

_RIFF_HEAD = struct.Struct("<4sI4s")
_CHUNK_HEAD = struct.Struct("<4sI")


def check(reader: Reader) -> Framing:
    data = whole(reader)
    offset, riffs, chunks = 0, 0, 0
    while offset < reader.size:
        if data is None:
            head, pos = reader.read(offset, 12), 0
        else:
            head, pos = data, offset
        present = head[pos:pos + 12]
        if len(present) < 12:
            reason = f"truncated: a RIFF header at byte {n(offset)} is cut short"
            if riffs and not b"RIFF".startswith(present[:4]):
                raise Trailing(offset, reason)
            raise incomplete(reason)
        tag, length, form = _RIFF_HEAD.unpack_from(head, pos)
        if riffs and (tag != b"RIFF" or form != b"AVIX"):
            # After a whole RIFF, only another (OpenDML's AVIX) belongs: these bytes are stray.
            raise Trailing(offset, _misplaced(tag, form, offset))
        if not printable_fourcc(tag):
            raise not_a_type(tag, offset, "chunk")
        if tag != b"RIFF":
            raise incomplete("not an AVI file: no RIFF header at its start")
        if not riffs and form != b"AVI ":
            raise incomplete(f"RIFF chunk at byte {n(offset)} holds {form!r}, not {b'AVI '!r}")
        if length in (0, 0xFFFFFFFF):
            raise incomplete(f"unfinished: the size of RIFF {fourcc_name(form)!r} at byte {n(offset)} "
                              f"was never written (the writer stopped before its end)")
        end = offset + 8 + length
        if end > reader.size:
            raise incomplete(f"truncated: RIFF {fourcc_name(form)!r} declares {n(length)} bytes, "
                              f"{n(reader.size - offset - 8)} present")
        children = _riff_children(reader, data, offset + 12, end, chunks)
        chunks += len(children)
        lists = [name for name, _, _ in children]
        if riffs == 0 and b"movi" not in lists and len(lists) < MAX_ELEMENTS:
            raise incomplete("no movi list (no media data)")
        if riffs == 0 and b"hdrl" in lists and reader.size >= written.MIN_SPLIT_FILE:
            _, at, size = children[lists.index(b"hdrl")]
            reader.zeros_may_be_media = _zeros_may_be_media(reader, data, at + 12, at + 8 + size)
        if not reader.zeros_may_be_media:
            for name, at, size in children:
                if name == b"movi":
                    written.note_split_points(reader, at + 12, at + 8 + size, "media in movi")
        riffs += 1
        offset = end + (length & 1 if end < reader.size else 0)   # chunks are padded to even
    return Framing(True, f"complete: {riffs} RIFF chunk(s) tile {reader.size:,} bytes")


def _misplaced(tag: bytes, form: bytes, offset: int) -> str:
    if not printable_fourcc(tag):
        return not_a_type(tag, offset, "chunk").framing.reason
    if tag != b"RIFF":
        return f"a {fourcc_name(tag)!r} chunk at byte {n(offset)} where a RIFF chunk belongs"
    return f"RIFF chunk at byte {n(offset)} holds {form!r}, not {b'AVIX'!r}"


def _riff_children(reader: Reader, data: Optional[bytes], start: int, end: int,
                   walked: int) -> list[tuple[bytes, int, int]]:
    """The chunks inside one RIFF: each must be a real chunk that fits; returns their LIST
    types (and tags) so the caller can ask for 'movi', with their offsets and lengths."""
    names: list[tuple[bytes, int, int]] = []
    offset = start
    while offset < end:
        if walked + len(names) >= MAX_ELEMENTS:
            break
        if data is None:
            head, pos = reader.read(offset, 12), 0
        else:
            head, pos = data, offset
        if len(head) - pos < 8 or offset + 8 > end:
            raise incomplete(f"truncated: a chunk header at byte {n(offset)} is cut short")
        tag, length = _CHUNK_HEAD.unpack_from(head, pos)
        if not printable_fourcc(tag):
            raise not_a_type(tag, offset, "chunk")
        if offset + 8 + length > end:
            raise incomplete(f"{fourcc_name(tag)!r} chunk at byte {n(offset)} declares {n(length)} "
                              f"bytes, past the end of its RIFF")
        # A LIST's type follows its header; the 12 bytes a chunk's read asks for end there.
        names.append((head[pos + 8:pos + 12] if tag == b"LIST" else tag, offset, length))
        offset += 8 + length + (length & 1)
    return names


# Sound formats (WAVEFORMATEX wFormatTag) whose silence is zeros: PCM, IEEE float, and the
# extensible header that usually wraps them; video stored uncompressed (biCompression 0) or
# in a codec whose frames ffmpeg was seen to pad with zeros (DNxHD, Motion JPEG, MPEG-2).
_ZERO_SILENCE_FORMATS = frozenset({0x0001, 0x0003, 0xFFFE})
_ZERO_PADDED_VIDEO = frozenset({0, *(int.from_bytes(code, "little") for code in (
    b"AVdn", b"AVdh", b"mpg2", b"MPG2", b"mpg1", b"MPG1", b"mx5p", b"mx3p", b"MJPG", b"mjpg"))})
MAX_HEADER_BYTES = 1 << 16


def _zeros_may_be_media(reader: Reader, data: Optional[bytes], start: int, end: int) -> bool:
    """Does the hdrl list in [start, end) declare a stream whose written media may be all
    zeros (PCM sound, uncompressed video)? True also when it cannot be read cheaply."""
    if end - start > MAX_HEADER_BYTES:
        return True
    body = data[start:end] if data is not None else reader.read(start, end - start)
    kind = b""
    for tag, at, length in _chunks(body, 0, len(body)):
        if tag == b"LIST" and body[at:at + 4] == b"strl":
            for inner, place, size in _chunks(body, at + 4, at + length):
                if inner == b"strh" and size >= 4:
                    kind = body[place:place + 4]
                elif inner == b"strf" and kind == b"auds" and size >= 2:
                    if struct.unpack_from("<H", body, place)[0] in _ZERO_SILENCE_FORMATS:
                        return True
                elif inner == b"strf" and kind == b"vids" and size >= 20:
                    if struct.unpack_from("<I", body, place + 16)[0] in _ZERO_PADDED_VIDEO:
                        return True
    return False


def _chunks(body: bytes, start: int, end: int) -> list[tuple[bytes, int, int]]:
    """(tag, offset of its data, length) of the chunks tiling body[start:end], as far as they do."""
    found, offset = [], start
    while offset + 8 <= end:
        tag, length = _CHUNK_HEAD.unpack_from(body, offset)
        if offset + 8 + length > end:
            break
        found.append((tag, offset + 8, length))
        offset += 8 + length + (length & 1)
    return found

