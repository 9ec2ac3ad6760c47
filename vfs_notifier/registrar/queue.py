"""What waits for a write: finished files' rows (offers), renames (moves), and files and
directories that left (withdrawals). The gate adds to it through the registrar; the
writes take from it."""

from __future__ import annotations

from typing import Callable, Iterable, NamedTuple

from ..rows import Row
from ..store import Version


class Offer(NamedTuple):
    row: Row
    version: Version
    announce: bool


class Move(NamedTuple):
    old: str
    new: str
    main_dir: str
    old_url: str
    new_url: str
    is_dir: bool


class Waiting:
    def __init__(self) -> None:
        self.offers: dict[str, Offer] = {}
        self.moves: list[Move] = []
        self.withdrawals: dict[str, bool] = {}         # stored path -> is a directory

    def __len__(self) -> int:
        return len(self.offers) + len(self.moves) + len(self.withdrawals)

    def origin(self, path: str) -> str:
        """Where the path's row is in the store now: before the renames not yet written."""
        if not self.moves:
            return path
        for move in reversed(self.moves):
            if path == move.new or (move.is_dir and path.startswith(move.new + "/")):
                path = move.old + path[len(move.new):]
        return path

    def drop(self, path: str, is_dir: bool) -> None:
        """The offers of a path (and, for a directory, of every path below it)."""
        self.offers.pop(path, None)
        if is_dir:
            prefix = path + "/"
            for queued in [p for p in self.offers if p.startswith(prefix)]:
                del self.offers[queued]

    def written(self, offer: Offer) -> None:
        """Off the queue, unless a newer version of the path was offered meanwhile."""
        if self.offers.get(offer.row.path) is offer:
            del self.offers[offer.row.path]

    def drop_roots(self, roots: Iterable[str], root_of: Callable[[str], str]) -> None:
        """Everything waiting below roots this instance no longer writes."""
        dropped = set(roots)
        for path in [p for p in self.offers if root_of(p) in dropped]:
            del self.offers[path]
        self.moves = [m for m in self.moves if root_of(m.old) not in dropped and root_of(m.new) not in dropped]
        for path in [p for p in self.withdrawals if root_of(p) in dropped]:
            del self.withdrawals[path]
