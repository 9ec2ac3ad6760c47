"""Rename pairing: a MOVED_FROM held until its MOVED_TO, or released as gone.

The kernel reports a rename as two events sharing a cookie. They are adjacent in its queue,
but a read may end between them, so a MOVED_FROM waits (at least until the next chunk is
parsed, and HOLD_SECONDS) for its other half; one whose MOVED_TO never comes left the
watched trees. Pure bookkeeping: the event parser turns what this returns into changes.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple, Optional

# A MOVED_FROM waits this long (and at least until the next read) for its MOVED_TO: the two
# are adjacent in the kernel's queue, but a read may end between them.
HOLD_SECONDS = 0.005


class Held(NamedTuple):
    path: str
    is_dir: bool
    until: float
    chunk: int                 # the number of the chunk it came in


class RenamePairs:
    """MOVED_FROM events awaiting their MOVED_TO, oldest first."""

    def __init__(self) -> None:
        self._held: OrderedDict[int, Held] = OrderedDict()   # cookie -> a MOVED_FROM
        # path -> cookie of the MOVED_FROM that named it; one dict for the life of this
        # object, so that the parser may keep a reference to it.
        self.paths: dict[str, int] = {}

    def __bool__(self) -> bool:
        return bool(self._held)

    def hold(self, cookie: int, path: str, is_dir: bool, now: float, chunk: int) -> None:
        self._held[cookie] = Held(path, is_dir, now + HOLD_SECONDS, chunk)
        self.paths[path] = cookie

    def take(self, cookie: int) -> Optional[Held]:
        """The MOVED_FROM of this cookie, no longer held; None if none is held."""
        held = self._held.pop(cookie, None)
        if held is not None:
            del self.paths[held.path]
        return held

    def take_all(self) -> list[Held]:
        """Every held MOVED_FROM, oldest first (their other halves may have been dropped)."""
        held = list(self._held.values())
        self._held.clear()
        self.paths.clear()
        return held

    def expired(self, now: float, chunk_no: int, more_waiting: bool) -> tuple[list[Held], Optional[float]]:
        """The held ones whose MOVED_TO can no longer come, oldest first, no longer held; and
        when the oldest still held expires (None if none is, or its pair may be in a chunk
        not parsed yet, `more_waiting`, which will be read anyway)."""
        gone: list[Held] = []
        held = self._held
        while held:
            cookie, first = next(iter(held.items()))
            if more_waiting and first.chunk >= chunk_no:
                return gone, None      # its pair may be in the next chunk, not parsed yet
            if first.until > now:
                return gone, first.until
            del held[cookie]
            del self.paths[first.path]
            gone.append(first)
        return gone, None
