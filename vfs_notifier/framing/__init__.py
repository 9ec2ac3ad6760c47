"""Container framing: can a video file's own structure prove it complete?

A file's inotify events and timestamps cannot tell a finished upload from an interrupted one
(an interrupted `rsync --partial` renames its half file into place; aria2c preallocates the
full size). The container can: every format we register declares its own length. This
package walks only that framing, one module per container family behind check(), with a
handful of small positioned reads (a file of at most SMALL_FILE bytes in one read, walked in
memory; never the whole of a larger one):

- ISO BMFF (mp4, m4v, mov): the top-level boxes tile the file exactly; a `moov` and an `mdat`
  are present; the last chunk of every track (its offset from stco/co64 plus its samples'
  sizes from stsc/stsz) lies inside an mdat. Fragmented files (moof/mvex) are complete only
  with their closing `mfra` index; otherwise the framing cannot tell.
- Matroska (mkv, webm): the EBML header, then a Segment whose declared size ends at the end
  of the file, its children tiling it. A Segment of unknown size (live muxers) is walked to
  the end: an element cut short proves it incomplete, otherwise the framing cannot tell.
- AVI: RIFF 'AVI ' then OpenDML 'AVIX' chunks tile the file; each declares a real size.

Bytes after complete framing that start no element of the container are stray: the file is
complete, unless they are zeros (reader.Trailing, _before_stray_bytes). A complete file must
also be written where its framing places media (written.py: holes, and zeros at probed
pages).

Pure but for check()'s one question to the file system (holes): the answer depends only on
the bytes read. `complete` is True (proven complete), False
(proven incomplete, with the reason in words) or None (cannot tell: fall back to stability).
"""

from __future__ import annotations

import struct
from typing import Callable

from . import bmff, matroska, riff, written
from .reader import (BLOCK, MAX_ELEMENTS, SHRANK, SMALL_FILE, SMALL_PARENT, Decided, Framing,
                     Reader, Trailing, n)

__all__ = ["BLOCK", "MAX_ELEMENTS", "SHRANK", "SMALL_FILE", "SMALL_PARENT", "Framing", "Reader",
           "check", "inspect"]


def check(fd: int, size: int, extension: str) -> Framing:
    """Judge the container of the open file `fd` (`size` bytes, from its fstat/lstat) by the
    rules of `extension` (lower case, no dot: mp4/mov/mkv/avi; m4v and the like: mp4 rules),
    and whether the file system holds data for all of it (written.first_hole)."""
    found = inspect(Reader(fd, size), extension)
    if found.complete is not False:
        hole = written.first_hole(fd, size)
        if hole is not None:
            return Framing(False, written.hole_reason(hole, size))
    return found


def inspect(reader: Reader, extension: str) -> Framing:
    """check() on a given Reader (tests count its reads), without asking the file system
    for holes: the framing, and zeros where it says media lies."""
    walker = _WALKERS.get(extension.lower().lstrip("."))
    if reader.size <= 0:
        return Framing(False, "empty")
    if walker is None:
        return Framing(None, f"no framing rules for .{extension} files")
    try:
        try:
            found = walker(reader)
        except Trailing as stray:
            found = _before_stray_bytes(reader, walker, stray)
        if found.complete is True:
            unwritten = written.unwritten_media(reader)
            if unwritten:
                return Framing(False, unwritten)
        return found
    except Decided as decided:
        return decided.framing
    except OSError as err:
        return Framing(None, f"cannot read: {err.strerror or err}")
    except struct.error:   # a table cut short by a shrinking file, met before its read was
        return Framing(None, SHRANK)


def _before_stray_bytes(reader: Reader, walker: Callable[[Reader], Framing],
                        stray: Trailing) -> Framing:
    """The verdict on a file whose top level ends in bytes that start no element: complete
    if the framing before them is, unless those bytes are zeros (the space a preallocating
    download has not written yet). Trailing bytes alone prove nothing (README: stray bytes)."""
    reader.media.clear()                # noted again by the walk of the bytes before
    before = reader.limited(stray.offset)
    try:
        found = walker(before)
    except (Decided, Trailing):
        found = None
    finally:
        reader.preads, reader.bytes_read = before.preads, before.bytes_read
    if found is None or found.complete is not True:
        return Framing(False, stray.reason)
    extra = reader.size - stray.offset
    head = reader.read(stray.offset, min(extra, written.PROBE_BYTES))
    if written.all_zeros(head):
        return Framing(False, f"zero-filled after its end: the framing ends at byte "
                       f"{n(stray.offset)} and the {n(len(head))} bytes read of the {n(extra)} "
                       f"after it are zeros (space preallocated and not yet written: an "
                       f"unfinished download?)")
    return Framing(True, f"{found.reason}; {n(extra)} stray bytes after its end (at byte "
                   f"{n(stray.offset)}, starting {head[:8]!r}) are no part of it: ignored")


_WALKERS = {
    **dict.fromkeys(("mp4", "m4v", "mov", "qt", "3gp", "3g2", "m4a", "f4v"), bmff.check),
    **dict.fromkeys(("mkv", "webm", "mk3d"), matroska.check),
    "avi": riff.check,
}
