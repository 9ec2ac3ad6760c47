"""Reading a container's framing: counted positioned reads, and the answer a walk unwinds with.

Every container family (bmff, matroska, riff) walks its framing through one Reader and
decides by raising Decided; the words shared by all of them live here.
"""

from __future__ import annotations

import copy
import os
from typing import NamedTuple, Optional

BLOCK = 4096                   # reads are served from 4 KB blocks: a small file costs one pread
MAX_ELEMENTS = 20_000          # boxes / elements / chunks walked per file, at most
SMALL_PARENT = 16384           # a box this small is read whole and walked in memory
SMALL_FILE = SMALL_PARENT      # a file this small is read whole, in one pread, and walked in memory

SHRANK = "shrank while its framing was read (rewritten in place?)"


class Framing(NamedTuple):
    complete: Optional[bool]   # True: proven complete; False: proven incomplete; None: cannot tell
    reason: str


class Decided(Exception):
    """Unwinds a walk with its answer."""

    def __init__(self, complete: Optional[bool], reason: str) -> None:
        super().__init__(reason)
        self.framing = Framing(complete, reason)


def incomplete(reason: str) -> Decided:
    return Decided(False, reason)


class Trailing(Exception):
    """Unwinds a walk that met, at the top level of the file, bytes that start no element of
    its container: stray bytes after the framing, or the framing broken there. `reason` is
    what the walk would have said; the caller judges the bytes before `offset` on their own."""

    def __init__(self, offset: int, reason: str) -> None:
        super().__init__(reason)
        self.offset, self.reason = offset, reason


class Reader:
    """Positioned reads of one open file, served from a few cached 4 KB blocks and counted
    (tests hold the module to "a handful of small reads")."""

    def __init__(self, fd: int, size: int) -> None:
        self.fd, self.size = fd, size
        self.preads = 0
        self.bytes_read = 0
        self._blocks: dict[int, bytes] = {}
        self._whole: Optional[bytes] = None      # the file, once it was read in one pread
        # Where the walk found that media must lie: (offset, bytes, what), each checked for
        # zeros once the framing is complete (written.unwritten_media).
        self.media: list[tuple[int, int, str]] = []
        self.zeros_may_be_media = False         # a track is PCM or uncompressed video

    def read(self, offset: int, length: int) -> bytes:
        """Up to `length` bytes at `offset`; fewer at the end of the file."""
        end = offset + length
        if end > self.size:
            end = self.size
        if end <= offset:
            return b""
        if self._whole is not None:
            return self._whole[offset:end]
        if end - offset > BLOCK:
            return self._pread(offset, end - offset)
        first, last = offset // BLOCK, (end - 1) // BLOCK
        if first == last:
            start = offset - first * BLOCK
            return self._block(first)[start:start + end - offset]
        data = self._block(first) + self._block(last)
        start = offset - first * BLOCK
        return data[start:start + end - offset]

    def limited(self, size: int) -> "Reader":
        """A reader of the same file that sees only its first `size` bytes (sharing the
        blocks read and the media noted)."""
        other = copy.copy(self)
        other.size = size
        return other

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
            raise Decided(None, SHRANK)
        if offset == 0 and len(data) == self.size:
            self._whole = data
        return data


def n(number: int) -> str:
    return f"{number:,}"

def fourcc_name(kind: bytes) -> str:
    return kind.decode("latin-1")


_PRINTABLE = bytes(range(0x20, 0x7F))


def printable_fourcc(kind: bytes) -> bool:
    return len(kind) == 4 and not kind.translate(None, _PRINTABLE)


def not_a_type(kind: bytes, offset: int, what: str) -> Decided:
    if kind.strip(b"\0") == b"":
        article = "an" if what[0] in "aeiou" else "a"
        return incomplete(f"zero-filled at byte {n(offset)}: four zero bytes where {article} {what} "
                          f"begins (space preallocated and not yet written: an unfinished download?)")
    return incomplete(f"no valid {what} at byte {n(offset)} ({kind!r} is not a type)")


def whole(reader: Reader) -> Optional[bytes]:
    """The whole file, in one pread, when it is small (walked in memory, rather than one
    pread per 4 KB block its elements lie in); None for a larger one."""
    return reader.read(0, reader.size) if reader.size <= SMALL_FILE else None

