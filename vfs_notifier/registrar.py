"""The registrar: the one way rows reach the store, whoever found the file.

Candidates from events and walks queue here; `flush` writes them in batches, one
transaction and one round trip each. The registrar knows which paths the table already
holds, read once per connection, so that no file is ever inserted twice and no query is
made per file. When the store fails, rows stay queued and the registrar retries with
backoff; after it reconnects it re-reads the table (a commit may have landed just before
the connection broke) and the daemon reconciles every root.
"""

from __future__ import annotations

import logging
import time
from itertools import islice
from typing import Callable, Iterable, Iterator, Optional

from .rows import Row, printable
from .store import RowsRejected, Store, StoreUnavailable

log = logging.getLogger("vfs_notifier")

BATCH = 1000
BACKOFF_FIRST, BACKOFF_MAX = 0.5, 10.0


class RegisteredPaths:
    """Which paths the table holds, in about 80 bytes a path whatever its length.

    A set of the paths' 64-bit hashes, not the paths: 100,000 long non-ASCII paths would
    take 30 MB as strings. Two different paths sharing a hash (odds about 3 in 10^10 at
    100,000 files) would make one of them look registered. What lies below a directory
    is asked of the store, which has the paths; only counts per root are kept here.
    """

    def __init__(self, roots: Iterable[str]) -> None:
        self._hashes: set[int] = set()
        self._prefixes = tuple(root.rstrip("/") + "/" for root in roots)
        self.below: dict[str, int] = {prefix: 0 for prefix in self._prefixes}

    def __contains__(self, path: str) -> bool:
        return hash(path) in self._hashes

    def __len__(self) -> int:
        return len(self._hashes)

    def add(self, path: str) -> None:
        digest = hash(path)
        if digest not in self._hashes:
            self._hashes.add(digest)
            self._count(path, 1)

    def discard(self, path: str) -> None:
        digest = hash(path)
        if digest in self._hashes:
            self._hashes.remove(digest)
            self._count(path, -1)

    def count_below(self, root: str) -> int:
        return self.below.get(root.rstrip("/") + "/", 0)

    def _count(self, path: str, step: int) -> None:
        for prefix in self._prefixes:
            if path.startswith(prefix):
                self.below[prefix] += step
                return


class Registrar:
    def __init__(self, store: Store, forget_removed: bool, roots: Iterable[str] = (),
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.forget_removed = forget_removed
        self.roots = tuple(roots)
        self.clock = clock
        self.known: Optional[RegisteredPaths] = None   # None: not read from the table yet
        self.queue: dict[str, tuple[Row, bool]] = {}  # path -> (row, log it on its own line)
        self.to_forget: set[str] = set()
        self.trees_to_forget: set[str] = set()         # directories whose rows all go
        self.connected = False
        self.problem = ""                              # why the store is unavailable
        self.retry_at = 0.0
        self._backoff = BACKOFF_FIRST
        self._said = ""                            # the last failure logged
        # While a reconcile walks a root: the paths added meanwhile, so it can tell the rows
        # that were there before it began (and may be stale) from the ones it just caused.
        self.added_meanwhile: Optional[set[str]] = None
        self.registered = 0                            # rows inserted since start
        self.forgotten = 0
        self.rejected = 0

    # --- what the rest of the service tells the registrar -------------------------

    def offer(self, row: Row, announce: bool = True) -> bool:
        """Queue a row unless the table or the queue has its path. True if queued."""
        path = row.path
        if path in self.to_forget:
            # Gone and back before its deletion was written: the row it has stays.
            self.to_forget.discard(path)
            return False
        if path in self.queue or (self.known is not None and path in self.known):
            return False
        self.queue[path] = (row, announce)
        return True

    def is_registered(self, path: str) -> bool:
        """True when the path has (or is about to have) a row that stays."""
        if path in self.queue:
            return True
        return self.known is not None and path in self.known and path not in self.to_forget

    def was_registered_before(self, path: str) -> bool:
        """Registered before the current reconcile began (see `added_meanwhile`)."""
        return (self.known is not None and path in self.known
                and not (self.added_meanwhile is not None and path in self.added_meanwhile))

    def withdraw(self, path: str) -> None:
        """A file went away: drop it from the queue and, if so configured, from the table."""
        self.queue.pop(path, None)
        if self.forget_removed and self.known is not None and path in self.known:
            self.to_forget.add(path)

    def withdraw_tree(self, directory: str) -> None:
        """A directory went away: the same for every file below it."""
        prefix = directory.rstrip("/") + "/"
        for path in [p for p in self.queue if p.startswith(prefix)]:
            del self.queue[path]
        if self.forget_removed:
            self.trees_to_forget.add(directory.rstrip("/"))

    def count_below(self, root: str) -> int:
        return self.known.count_below(root) if self.known is not None else 0

    def registered_below(self, directory: str) -> Iterator[str]:
        """The registered paths below a directory, streamed from the store."""
        return self.store.paths_below(directory.rstrip("/"))

    @property
    def pending(self) -> int:
        return len(self.queue) + len(self.to_forget) + len(self.trees_to_forget)

    # --- talking to the store -------------------------------------------------------

    def connect(self) -> bool:
        """(Re)connect and read the registered paths. True when newly connected."""
        if self.connected or self.clock() < self.retry_at:
            return False
        try:
            self.store.open()
            known = RegisteredPaths(self.roots)
            for path in self.store.registered_paths():
                known.add(path)
        except StoreUnavailable as err:
            self._failed(str(err))
            return False
        self.known = known
        for path in [p for p in self.queue if p in known]:
            del self.queue[path]
        self.to_forget = {p for p in self.to_forget if p in known}
        # The backoff is reset by a write that works, not by connecting: a store that
        # accepts connections but no rows (a full disk) must not be retried every 0.5 s,
        # each time with a reconcile of every root.
        self.connected, self.problem = True, ""
        log.info("database %s: connected, %d rows registered", self.store.description, len(known))
        return True

    def flush(self, limit: int = BATCH) -> int:
        """Write up to `limit` queued rows (one batch) and pending deletions. Rows written."""
        if not self.connected:
            return 0
        try:
            if self.trees_to_forget:
                self._collect_trees()
            if self.to_forget:
                self._forget_now()
            if not self.queue:
                self._worked()
                return 0
            batch = list(islice(self.queue.values(), limit))
            try:
                self.store.insert([row for row, _ in batch])
            except RowsRejected:
                batch = self._insert_one_by_one(batch)
        except StoreUnavailable as err:
            self._failed(str(err))
            return 0
        self._worked()
        self._registered(batch)
        return len(batch)

    def _worked(self) -> None:
        self._backoff, self._said = BACKOFF_FIRST, ""

    def _collect_trees(self) -> None:
        assert self.known is not None
        for directory in sorted(self.trees_to_forget):
            self.to_forget.update(p for p in self.store.paths_below(directory) if p not in self.queue)
        self.trees_to_forget.clear()

    def _insert_one_by_one(self, batch: list[tuple[Row, bool]]) -> list[tuple[Row, bool]]:
        """A batch the database refused: find the rows at fault, skip them, keep the rest."""
        stored = []
        for row, announce in batch:
            try:
                self.store.insert([row])
                stored.append((row, announce))
            except RowsRejected as err:
                del self.queue[row.path]
                self.rejected += 1
                log.warning("skipped %s: the database refused its row (%s)", printable(row.path), err)
        return stored

    def _registered(self, batch: Iterable[tuple[Row, bool]]) -> None:
        assert self.known is not None
        quiet = 0
        for row, announce in batch:
            del self.queue[row.path]
            self.known.add(row.path)
            if self.added_meanwhile is not None:
                self.added_meanwhile.add(row.path)
            self.registered += 1
            if announce:
                log.info("registered %s as %s", printable(row.path), row.url,
                         extra={"VIDEO_PATH": row.path, "VIDEO_URL": row.url, "MAIN_DIR": row.main_dir})
            else:
                quiet += 1
        if quiet:
            log.info("registered %d files found by a directory walk", quiet)

    def _forget_now(self) -> None:
        assert self.known is not None
        paths = sorted(self.to_forget)
        removed = self.store.delete(paths)
        for path in paths:
            self.known.discard(path)
            log.info("forgot %s: the file is gone", printable(path), extra={"VIDEO_PATH": path})
        self.to_forget.clear()
        self.forgotten += removed

    def _failed(self, problem: str) -> None:
        if problem != self._said:   # once per problem, until a write works again
            self._said = problem
            log.warning("database %s unavailable: %s; %d changes wait, retrying in %.1f s",
                        self.store.description, problem, self.pending, self._backoff)
        self.store.close()
        self.connected, self.problem = False, problem
        self.retry_at = self.clock() + self._backoff
        self._backoff = min(self._backoff * 2, BACKOFF_MAX)

    def close(self) -> None:
        self.store.close()
        self.connected = False
