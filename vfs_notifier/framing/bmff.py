"""ISO BMFF (mp4, m4v, mov): the top-level boxes tile the file exactly (or up to stray bytes
that start no box: reader.Trailing); a `moov` is present, and an `mdat` if a track has
samples; the last chunk of every track lies inside an mdat. A moov listing no samples is
complete too: it is written when the writer finishes. Fragmented files (moof/mvex) are
complete only with their closing `mfra` index; otherwise the framing cannot tell.
"""

from __future__ import annotations

import struct
from typing import Optional

from . import written
from .bmff_boxes import BOX_HEAD, LARGE_SIZE, TOP_LEVEL_BOXES, Box, printable_type, read, walk
from .bmff_tracks import track_extent
from .reader import Decided, Framing, Reader, Trailing, incomplete, n

_MFRO = struct.Struct(">I4sII")


def check(reader: Reader) -> Framing:
    size = reader.size
    try:
        top, top_data, top_base = walk(reader, None, 0, 0, size, "the file")
    except Decided as decided:
        stray = _stray_bytes(reader)
        if stray:
            raise Trailing(stray, decided.framing.reason) from None
        raise
    if top[0][0] not in TOP_LEVEL_BOXES:
        raise incomplete(f"not an MP4/QuickTime file: it starts with {top[0][0]!r}")
    moov: Optional[Box] = None
    mdats: list[Box] = []
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
    children, data, base = walk(reader, top_data, top_base, offset + header, offset + length, "moov")
    traks = []
    for box in children:
        if box[0] == b"trak":
            traks.append(box)
        elif box[0] == b"mvex":
            fragmented = True
    if fragmented:
        return _fragmented(reader, top, top_data, top_base)
    tracks = 0
    for number, trak in enumerate(traks, start=1):
        extent = track_extent(reader, trak, data, base, number)
        if extent is None:
            continue
        tracks += 1
        if not mdats:
            return Framing(False, "no mdat box (no media data)")
        first, end = extent
        if end > size:
            return Framing(False, f"truncated: track {number}'s media data reaches byte {n(end)}, "
                           f"the file has {n(size)}")
        for _, at, head, length in mdats:
            if at + head <= first and end <= at + length:
                break
        else:
            return Framing(False, f"track {number}'s last chunk (bytes {n(first)} to {n(end)}) "
                           f"lies outside every mdat box")
    if tracks and not reader.zeros_may_be_media:
        for _, at, head, length in mdats:
            written.note_split_points(reader, at + head, at + length, "media in mdat")
    if not tracks:
        # A file without media, as ffmpeg leaves it when it recorded nothing: its moov,
        # written when the writer finished, proves it finished like any other (README: files
        # without media).
        return Framing(True, f"complete: {len(top)} boxes tile {size:,} bytes; its moov lists "
                       f"no samples (a file without media)")
    return Framing(True, f"complete: {len(top)} boxes tile {size:,} bytes; moov and the "
                   f"media data of {tracks} track(s) present")


def _stray_bytes(reader: Reader) -> int:
    """Where bytes that start no top-level box begin (not a type, or an unknown type whose
    size runs past the end), after at least one box; 0 when the boxes are real up to a
    known box cut short (a truncated file) or no box is real."""
    offset = 0
    while offset < reader.size:
        head = reader.read(offset, 16)
        if len(head) < 8:
            return offset
        size, kind = BOX_HEAD.unpack_from(head)
        if not printable_type(kind):
            return offset
        if size == 1 and len(head) == 16:
            size = LARGE_SIZE.unpack_from(head, 8)[0]
        elif size == 0:
            size = reader.size - offset
        if size < 8 or offset + size > reader.size:
            return 0 if kind in TOP_LEVEL_BOXES and size >= 8 else offset
        offset += size
    return 0


def _fragmented(reader: Reader, top: list[Box], data: Optional[bytes], base: int) -> Framing:
    kind, offset, _, size = top[-1]
    if kind == b"mfra" and size >= 24:
        # The closing index ends with mfro, which repeats mfra's size: a writer's last words.
        tail = read(reader, data, base, offset + size - 16, 16)
        if len(tail) == 16:
            mfro_size, mfro, _, mfra_size = _MFRO.unpack(tail)
            if mfro_size == 16 and mfro == b"mfro" and mfra_size == size:
                return Framing(True, f"complete: fragmented MP4, {len(top)} boxes tile "
                               f"{n(reader.size)} bytes and end with its mfra index")
    return Framing(None, f"fragmented MP4: {len(top)} boxes tile {n(reader.size)} bytes but "
                   f"nothing marks the last fragment")
