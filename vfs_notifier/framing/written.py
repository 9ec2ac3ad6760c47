"""Is the media a file's framing describes actually written?

Some download tools make the file its full size first and fill it from several places at
once (`rclone` with --multi-thread-streams, `lftp pget -n`, aria2c): cut midway, the header,
the index and every declared size are in place while ranges of media were never written.
Three ways to see it, all bounded:

- the file system's own word: a range it holds no data for (a hole, or space reserved by
  fallocate and never written: ext4, xfs, btrfs and tmpfs report both through SEEK_HOLE,
  measured). One lseek. A file system that cannot
  tell (NFS before 4.2, some FUSE) answers "no hole";
- a few positioned reads of media the framing says must be there (walkers note them in
  Reader.media: each track's last chunk and chunks spread over the file), which must not be
  all zeros. Only media that is never all zeros when written is noted (not PCM audio, whose
  silence is zeros, nor subtitles);
- where the media is all compressed (no PCM, no uncompressed video), the page before each
  place a multi-stream tool splits a file at (1/2, 1/3 ... 7/8 of it, as lftp splits; the
  same rounded up to 64 KiB parts, as rclone does): a stream stopped early leaves the end of
  its part unwritten, and compressed media has no page of zeros.
"""

from __future__ import annotations

import errno
import functools
import os
from typing import Optional

from .reader import Reader, n

SEEK_HOLE = getattr(os, "SEEK_HOLE", 4)
SEEK_DATA = getattr(os, "SEEK_DATA", 3)
PROBE_BYTES = 4096      # at most this much of each noted range is read: a page
STREAMS = (2, 3, 4, 5, 6, 8)    # the parts multi-stream tools commonly split a file into
PART_ROUNDING = 64 << 10        # rclone's parts are multiples of this
# No tool splits a smaller file by default (lftp's pget:min-chunk-size is 1 MiB, rclone's
# --multi-thread-cutoff 250 MiB, aria2c's --min-split-size 20 MiB), and most files of a large
# tree are small: their split points are not probed.
MIN_SPLIT_FILE = 1 << 20


@functools.lru_cache(maxsize=64)
def split_points(size: int) -> tuple[int, ...]:
    """The offsets where a multi-stream download of `size` bytes may have split it, and its end."""
    points = {size}
    for streams in STREAMS:
        rounded = -(-size // streams // PART_ROUNDING) * PART_ROUNDING or PART_ROUNDING
        for part in range(1, streams):
            points.add(size * part // streams)
            points.add(rounded * part)
    return tuple(sorted(point for point in points if point <= size))


def note_split_points(reader: Reader, start: int, end: int, what: str) -> None:
    """Note the page before each split point inside [start, end), a range of compressed
    media only, as media that must not be zeros."""
    if reader.size < MIN_SPLIT_FILE:
        return
    for point in split_points(reader.size):
        if start + PROBE_BYTES <= point <= end:
            reader.media.append((point - PROBE_BYTES, PROBE_BYTES, what))


def all_zeros(data: bytes) -> bool:
    """Are all of `data` zeros? Media starts with a non-zero byte within its first few, so
    its first 16 decide at once, almost always."""
    return not data[:16].strip(b"\0") and data.count(0) == len(data)


def first_hole(fd: int, size: int) -> Optional[tuple[int, int]]:
    """(start, end) of the first range of the file's `size` bytes that the file system holds
    no data for, or None (none, or the file system cannot tell)."""
    try:
        hole = os.lseek(fd, 0, SEEK_HOLE)
    except OSError:
        return None             # no SEEK_HOLE here (EINVAL), or the file shrank (ENXIO)
    if hole >= size:
        return None
    try:
        data = os.lseek(fd, hole, SEEK_DATA)
    except OSError as err:
        if err.errno != errno.ENXIO:
            return None
        data = size             # no data after the hole: it runs to the end
    return hole, min(data, size)


def hole_reason(hole: tuple[int, int], size: int) -> str:
    start, end = hole
    return (f"unwritten: bytes {n(start)} to {n(end)} of {n(size)} are a hole (space reserved "
            f"and never written: an unfinished download?)")


def unwritten_media(reader: Reader) -> Optional[str]:
    """Why the media the walk noted is not written (a range of it all zeros), or None."""
    for offset, length, what in reader.media:
        data = reader.read(offset, min(length, PROBE_BYTES))
        if data and all_zeros(data):
            return (f"unwritten: {what} at byte {n(offset)} is zeros ({n(len(data))} bytes read) "
                    f"where the framing says media lies (not yet written: an unfinished download?)")
    return None
