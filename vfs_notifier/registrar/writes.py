"""Rows written: a batch of offers becomes one transaction (inserts of new videos, re-signals
of files overwritten in place, companion entries of the same bytes under a new inode), and
the memory of registered versions learns what landed. The insert may still be under way
when write() returns (MySQL: on the store's thread); settle() meets its end."""

from __future__ import annotations

import logging
import time
from typing import Callable, Iterable, NamedTuple, Optional

from ..memory import Entry, VersionMemory, content_of, identity_of
from ..rows import printable
from ..store import Fence, NewVideo, Remembered, RowsRejected, Store
from .queue import Offer, Waiting

log = logging.getLogger("vfs_notifier")

LOG_EACH_REGISTRATION = 10 # more files registered by one write are logged as one line
STALL_SECONDS = 1.0        # an insert under way this long: the store is stalled (see `stalled`)

FenceOf = Callable[[Iterable[str]], Fence]


class _Writing(NamedTuple):
    """New rows whose insert is under way. Until it is settled they stay queued, so that
    is_current() still sees them."""
    offers: list[Offer]
    paths: frozenset[str]
    ids: Callable[[], list[int]]
    since: float                # when it began, on the writer's clock


class RowWriter:
    def __init__(self, store: Store, clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.clock = clock
        self.writing: Optional[_Writing] = None
        # A write failed midway, or was rolled back after the memory counted it: the memory
        # must be read again from the store before it is trusted.
        self.uncertain = False
        self.registered = self.signalled = self.rejected = 0

    def under_way(self, path: str) -> bool:
        return self.writing is not None and path in self.writing.paths

    @property
    def stalled(self) -> bool:
        """An insert has been under way for over STALL_SECONDS (a server that stopped
        answering, or is far behind): rows will not be written soon."""
        writing = self.writing
        return writing is not None and self.clock() - writing.since > STALL_SECONDS

    def abandon(self) -> None:
        """The store failed: the insert under way is forgotten; its rows stay queued, to be
        written again or found written when the memory is read again."""
        self.writing = None
        self.uncertain = True

    def write(self, batch: list[Offer], memory: VersionMemory, lookup: Callable[[str], Optional[Entry]],
              fence_of: FenceOf, waiting: Waiting) -> int:
        """Write one batch (the insert may go on after the call). Offers handled."""
        changed = {}
        for offer in batch:
            entry = lookup(offer.row.path)
            if entry is not None:
                changed[offer.row.path] = entry
        alive = self.store.existing([e.video_id for e in changed.values()]) if changed else set()
        new, signal, silent = [], [], []
        for offer in batch:
            entry = changed.get(offer.row.path)
            if entry is None or entry.video_id not in alive:
                new.append(offer)       # never registered, or a new video where a row was deleted
            elif entry.content != content_of(offer.version):
                signal.append((offer, entry))
            elif entry.identity != identity_of(offer.version):
                silent.append((offer, entry))   # the same bytes under another inode (a replaced copy)
        self.uncertain = True
        if signal:
            self.store.resignal([Remembered(e.video_id, o.row.path, o.version) for o, e in signal],
                                fence_of(o.row.path for o, _ in signal))
            for offer, entry in signal:
                memory.put(offer.row.path, offer.version, entry.video_id)
                log.info("%s changed (re-uploaded): its row %d is signalled again (status 1)",
                         printable(offer.row.path), entry.video_id,
                         extra={"VIDEO_PATH": offer.row.path, "VIDEO_URL": offer.row.url})
            self.signalled += len(signal)
        if silent:
            self.store.remember([Remembered(e.video_id, o.row.path, o.version) for o, e in silent],
                                fence_of(o.row.path for o, _ in silent))
            for offer, entry in silent:
                memory.put(offer.row.path, offer.version, entry.video_id)
        writing = set(id(o) for o in new)
        for offer in batch:
            if id(offer) not in writing:
                waiting.written(offer)
        if new:
            # Only paths remembered before (a row a consumer deleted) have an entry to replace.
            replaces = [o.row.path for o in new if o.row.path in changed]
            try:
                ids = self.store.start_insert([_video(o) for o in new], fence_of(o.row.path for o in new),
                                              replaces)
            except RowsRejected:
                self._registered(new, self._insert_one_by_one(new, fence_of), memory, waiting)
            else:
                # Applied by the next settle(), before any other write; at once if it is done
                # already (SQLite writes in this thread).
                self.writing = _Writing(new, frozenset(o.row.path for o in new), ids, self.clock())
                if not self.store.busy:
                    self.settle(memory, fence_of, waiting)
                return len(batch)
        self.uncertain = False
        return len(batch)

    def settle(self, memory: Optional[VersionMemory], fence_of: FenceOf, waiting: Waiting) -> None:
        """Meet the end of the write under way; rows of an insert are registered now."""
        writing, self.writing = self.writing, None
        if writing is None:
            self.store.sync()
            return
        try:
            self.store.sync()
            ids = writing.ids()
        except RowsRejected:
            ids = self._insert_one_by_one(writing.offers, fence_of)
        assert memory is not None
        self._registered(writing.offers, ids, memory, waiting)
        self.uncertain = False

    def _registered(self, offers: list[Offer], ids: list[Optional[int]], memory: VersionMemory,
                    waiting: Waiting) -> None:
        announced, quiet = [], 0
        for offer, video_id in zip(offers, ids):
            waiting.written(offer)
            if video_id is not None:
                memory.put(offer.row.path, offer.version, video_id)
                self.registered += 1
                if offer.announce:
                    announced.append(offer)
                else:
                    quiet += 1
        # Each file by name, with its URL, when a few arrived; a burst (20,000 files copied in
        # at once) is said in one line a write, each file at DEBUG: a line a file cost a sixth
        # of the loop's time in a burst. The same rule as for withdrawals.
        one_by_one = len(announced) <= LOG_EACH_REGISTRATION
        level = logging.INFO if one_by_one else logging.DEBUG
        if announced and log.isEnabledFor(level):
            for offer in announced:
                row = offer.row
                log.log(level, "registered %s as %s", printable(row.path), row.url,
                        extra={"VIDEO_PATH": row.path, "VIDEO_URL": row.url, "MAIN_DIR": row.main_dir})
        if not one_by_one:
            log.info("registered %d new files (%s, ...)", len(announced), printable(announced[0].row.path))
        if quiet:
            log.info("registered %d files found by a directory walk", quiet)

    def _insert_one_by_one(self, offers: list[Offer], fence_of: FenceOf) -> list[Optional[int]]:
        """A batch the database refused: find the rows at fault, skip them, keep the rest."""
        ids: list[Optional[int]] = []
        for offer in offers:
            try:
                ids.extend(self.store.insert([_video(offer)], fence_of((offer.row.path,))))
            except RowsRejected as err:
                ids.append(None)
                self.rejected += 1
                log.warning("skipped %s: the database refused its row (%s)", printable(offer.row.path), err)
        return ids


def _video(offer: Offer) -> NewVideo:
    row = offer.row
    return NewVideo(row.main_dir, row.path, row.url, offer.version)
