"""The kernel's side, as one object: watch directories, and read what changed below them.

Four parts, each in its own module: the watches (inotify_watches), the thread that keeps the
kernel's queue from filling (inotify_queue), the parser that turns raw events into changes
(inotify_events), and the pairing of a rename's two halves (rename_pairs). Deciding what a
change means for the table is the gate's job. Nothing here calls upward: watch failures are
return values and the `refused` / `limit_reached` state the service reads.
"""

from __future__ import annotations

import time
from typing import Optional

from .inotify_events import (DIR_ARRIVED, DIR_ATTRIB, DIR_LEFT, DIR_MOVED, FILE_ATTRIB, FILE_DONE,
                             FILE_GONE, FILE_LINKED, FILE_MOVED, OVERFLOW, ROOT_GONE, ROOT_UNMOUNTED,
                             Change, EventParser)
from .inotify_queue import BUFFER_LIMIT, KernelQueue
from .inotify_watches import MASK, Watches
from .rename_pairs import HOLD_SECONDS, RenamePairs

__all__ = [
    "BUFFER_LIMIT", "DIR_ARRIVED", "DIR_ATTRIB", "DIR_LEFT", "DIR_MOVED", "FILE_ATTRIB", "FILE_DONE",
    "FILE_GONE", "FILE_LINKED", "FILE_MOVED", "HOLD_SECONDS", "MASK", "OVERFLOW", "READ_BUDGET",
    "ROOT_GONE", "ROOT_UNMOUNTED", "Change", "Watcher",
]

# One read() parses about this many bytes of events (~1,200 events, 5-15 ms measured during an
# rm -rf; 128 KB took up to 38 ms) and leaves the rest for the next, so that a loop turn stays
# short whatever piled up (rm -rf of 30,000 directories queues 90,000 events).
READ_BUDGET = 48 << 10


class Watcher:
    """Watches directories, one at a time, and reports what changed below them."""

    def __init__(self, buffer_limit: int = BUFFER_LIMIT) -> None:
        self._watches = Watches()
        self._pairs = RenamePairs()
        self._events = EventParser(self._watches, self._pairs)
        self._queue = KernelQueue(self._watches.fd(), buffer_limit)
        # pyinotify's WatchManager and the chunks waiting to be parsed, under the names
        # tests look at them by.
        self._wm = self._watches.manager
        self._chunks = self._queue.chunks

    @property
    def refused(self) -> set[str]:
        """Directories the kernel refused a watch for lack of watches (ENOSPC), changed in
        place: the service covers them by walking."""
        return self._watches.refused

    @property
    def limit_reached(self) -> bool:
        """The watch limit was reached once (and may be again)."""
        return self._watches.limit_reached

    def fileno(self) -> int:
        """Readable when changes are waiting for read()."""
        return self._queue.fileno()

    def watch(self, directory: str, is_root: bool = False) -> Optional[int]:
        """Watch one directory (not its subdirectories). None, or the errno of the failure."""
        return self._watches.watch(directory, is_root)

    def unwatch_tree(self, directory: str) -> None:
        """Stop watching a directory that left and everything below it (linear in that subtree)."""
        self._watches.unwatch_tree(directory)

    def watch_count(self) -> int:
        return len(self._watches)

    @property
    def backlog(self) -> bool:
        """Events are waiting to be read (or a rename to be paired): what a walk would see
        now may already have changed in ways these events will report."""
        return self._queue.pending or bool(self._pairs)

    def read(self, budget: int = READ_BUDGET) -> list[Change]:
        """The changes the kernel has reported since the last call, about `budget` bytes of
        events' worth; fileno() stays readable while more are waiting."""
        events = self._events
        changes = events.begin(time.monotonic())
        for data in self._queue.take(budget):
            if data is None:
                events.overflow(changes)
            else:
                events.parse(data, changes)
        done, wake_at = events.end(changes, self._queue.pending)
        if wake_at is not None:
            # Not yet: the reader thread wakes the loop when it is, if nothing else does.
            self._queue.wake_at(wake_at)
        return done

    def close(self) -> None:
        self._queue.stop()
        self._watches.close()
        self._queue.close()
